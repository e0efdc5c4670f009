"""The lab's sample apps: what the images of Istio's samples stand for (see lab/images.py)."""
