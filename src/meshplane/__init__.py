"""meshplane: a small multicluster service-mesh control plane following Istio's primary-remote model."""

__version__ = "0.1.0"
