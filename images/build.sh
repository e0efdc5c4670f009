#!/usr/bin/env bash
# `make images`: build the pilot and proxyv2 images from the Containerfile with podman.
#
#   HUB=registry.example/me images/build.sh     # default hub: the one `meshplane install` renders
#   TAG=...   (default: the project version from pyproject.toml, which install renders as the tag)
#   BASE=...  (default: a Debian bookworm base made by images/base.sh)
#   NO_CACHE=1 (build every step again; the base image is still reused)
#   SOURCE_URL=... (the org.opencontainers.image.source label; default: git remote origin)
#
# Prints the `--set values.global.hub=... --set values.global.tag=...` line that makes
# `meshplane install` use them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$("$here"/containers-conf.sh)}"
command -v podman >/dev/null || { echo "images: podman not found (apt-get install podman buildah runc)" >&2; exit 1; }

py() { "${PYTHON:-python3}" "$@"; }
version="$(py -c 'import tomllib,sys; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')"
# the hub `meshplane install` renders by default (installer/profiles.py DEFAULT_HUB)
default_hub="$(sed -n 's/^DEFAULT_HUB = "\(.*\)"$/\1/p' src/meshplane/installer/profiles.py)"
HUB="${HUB:-$default_hub}"
TAG="${TAG:-$version}"
BASE="${BASE:-$("$here"/base.sh)}"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# org.opencontainers.image.source: SOURCE_URL, else the git remote the tree was cloned from
source_url="${SOURCE_URL:-$(git remote get-url origin 2>/dev/null || echo unknown)}"

args=(--build-arg "BASE=$BASE" --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
      --build-arg "SOURCE=$source_url" --network host --layers --file Containerfile)
if [ -n "${NO_CACHE:-}" ]; then args+=(--no-cache); fi
# pip inside the build trusts the host's CA bundle (networks that re-sign TLS): a build secret,
# mounted for the one pip RUN only, so neither the file nor PIP_CERT is in an image or its history
HOST_CA="${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}"
if [ -r "$HOST_CA" ]; then
  args+=(--secret "id=host-ca,src=$HOST_CA")
fi
for target in pilot proxyv2; do
  echo "images: building $HUB/$target:$TAG (FROM $BASE)" >&2
  podman build "${args[@]}" --target "$target" --tag "$HUB/$target:$TAG" . >&2
done
echo "images: built $HUB/pilot:$TAG and $HUB/proxyv2:$TAG; install with:" >&2
echo "--set values.global.hub=$HUB --set values.global.tag=$TAG"
