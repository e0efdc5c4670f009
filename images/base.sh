#!/usr/bin/env bash
# Build (or reuse) the local base image the Containerfile builds FROM: Debian bookworm minbase
# (debootstrap) with Debian's python3.11 and python3-venv. Prints the image name on stdout.
#
#   images/base.sh                 # localhost/meshplane-base:bookworm-<recipe hash>
#   MIRROR=http://... images/base.sh
#
# Reuse is safe: the tag carries a hash of this script, the suite and the mirror, so a changed
# recipe makes a new image; `podman image exists` finds an earlier build of the same recipe.
# A machine without one (a clean CI machine) builds it fresh (about 45 s).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$("$here"/containers-conf.sh)}"
SUITE="${SUITE:-bookworm}"
PACKAGES="python3,python3-venv,ca-certificates"

configured_mirror() {
  # the first Debian (not security) archive the host's apt is configured with
  local uri
  uri="$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
           /etc/apt/sources.list.d/*.list 2>/dev/null \
         | grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')"
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${MIRROR:-$(configured_mirror)}"

recipe="$(printf '%s\n%s\n%s\n' "$SUITE" "$MIRROR" "$PACKAGES" | cat - "$0" | sha256sum | cut -c1-12)"
# IMAGE= names the result instead (and always builds: bench/bench_images.py times a fresh base)
image="${IMAGE:-localhost/meshplane-base:${SUITE}-${recipe}}"
if [ -z "${IMAGE:-}" ] && podman image exists "$image"; then
  echo "$image"
  exit 0
fi

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "base.sh: $tool not found (apt-get install $tool)" >&2; exit 1; }
done
root="$(mktemp -d /var/tmp/meshplane-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "base.sh: debootstrap --variant=minbase $SUITE from $MIRROR" >&2
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1; then
  tail -n 30 "$root.log" >&2; echo "base.sh: debootstrap failed (log: $root.log)" >&2; exit 1
fi
rm -f "$root.log"
# Slim it like Debian's -slim images: no downloaded .debs, apt lists, docs, man pages, locales.
# (dpkg's status stays, so `apt-get update && apt-get install` works in derived images.)
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/log/* "$root"/debootstrap "$root"/tmp/* "$root"/root/.cache
# no test suites (as python:3.11-slim's Dockerfile removes test, tests and idle_test directories)
find "$root"/usr/lib/python3* -depth -type d \( -name test -o -name tests -o -name idle_test \) -exec rm -rf {} +
find "$root"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
  > "$root"/etc/dpkg/dpkg.cfg.d/slim
tar --numeric-owner -C "$root" -c . \
  | podman import --quiet --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null
echo "$image"
