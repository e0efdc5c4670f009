#!/usr/bin/env bash
# Write the containers.conf `make images` and tests/images run podman/buildah with, print its path.
# Point CONTAINERS_CONF at it (base.sh and build.sh do, unless CONTAINERS_CONF is already set):
#   export CONTAINERS_CONF="$(images/containers-conf.sh)"
# - default_ulimits: podman asks runc for nofile=1048576 (and nproc=the caller's limit); on these
#   machines the hard open-files limit is 20000 and nproc above kernel.pid_max is refused, so ask
#   for the host's own hard limits instead (nproc capped at pid_max).
# - runtime: crun 1.8 refuses the hybrid cgroup layout here; runc works. RUNTIME= overrides.
# Nothing of this ends up in an image: it only configures the engine on this machine.
set -euo pipefail
nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
pid_max="$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)"
[ "$nofile" = unlimited ] && nofile=1048576
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc="$pid_max"; fi
dir="${TMPDIR:-/tmp}/meshplane-images-$(id -u)"
mkdir -p "$dir"
text="[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]

[engine]
runtime = \"${RUNTIME:-runc}\"
"
# named by its content: concurrent callers with other settings never rewrite each other's file
conf="$dir/containers-$(printf '%s' "$text" | sha256sum | cut -c1-12).conf"
if [ ! -f "$conf" ]; then
  printf '%s' "$text" >"$conf.$$"
  mv "$conf.$$" "$conf"
fi
echo "$conf"
