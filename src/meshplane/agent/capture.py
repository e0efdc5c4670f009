"""Apply and remove Istio's capture rules in the current network namespace (istio-iptables,
istio-clean-iptables): pick the iptables backend, read the state, run `iptables-restore`.

A one-shot command run by the pod's init container, so it runs its few iptables processes
synchronously (there is no event loop). Rules are built and validated by `iptables.py` first;
nothing here runs unless every flag was valid.

Backend: `iptables-restore --version` says `(nf_tables)` or `(legacy)`, i.e. what the system's
`iptables` alternative points to; the matching `iptables-nft-*` or `iptables-legacy-*` binaries
are then used for save, restore and single rules alike. `--force-iptables-binary nft|legacy`
(as Istio's) overrides the detection.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from meshplane.agent import dnstable, iptables

log = logging.getLogger(__name__)

DEFAULT_PROXY_UID = "1337"
RESOLV_CONF = Path("/etc/resolv.conf")


@dataclasses.dataclass(frozen=True, slots=True)
class Backend:
    name: str  # "nft" or "legacy"
    iptables: str
    save: str
    restore: str


def _backend(name: str) -> Backend:
    return Backend(name, f"iptables-{name}", f"iptables-{name}-save", f"iptables-{name}-restore")


def detect_backend(force: str = "") -> Backend:
    """The backend named by `force`, else the one `iptables-restore --version` reports."""
    if force:
        if force not in ("nft", "legacy"):
            raise iptables.IptablesError(f"--force-iptables-binary: {force!r} is not nft or legacy")
        backend = _backend(force)
    else:
        if shutil.which("iptables-restore") is None:
            raise iptables.IptablesError("iptables-restore not found: install the iptables package")
        version = _run(["iptables-restore", "--version"]).stdout
        if "nf_tables" in version:
            backend = _backend("nft")
        elif "legacy" in version:
            backend = _backend("legacy")
        else:
            raise iptables.IptablesError(f"cannot tell the iptables backend from {version.strip()!r}")
    if shutil.which(backend.restore) is None:
        raise iptables.IptablesError(f"{backend.restore} not found: install the iptables package")
    return backend


def default_proxy_uid(env: Mapping[str, str]) -> str:
    """Istio's default for -u: the uid of ENVOY_USER (istio-proxy), else 1337."""
    try:
        return str(pwd.getpwnam(env.get("ENVOY_USER", "istio-proxy")).pw_uid)
    except KeyError:
        return DEFAULT_PROXY_UID


def dns_servers(path: Path | None = None) -> tuple[str, ...]:
    """The `nameserver` addresses of resolv.conf (what Istio's DNS capture redirects)."""
    path = RESOLV_CONF if path is None else path
    try:
        text = path.read_text()
    except OSError as e:
        raise iptables.IptablesError(f"failed to load {path}: {e}") from e
    return tuple(dnstable.nameservers(text))


def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except OSError as e:
        raise iptables.IptablesError(f"{argv[0]}: {e}") from e
    if check and done.returncode != 0:
        raise iptables.IptablesError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def save(backend: Backend) -> str:
    return _run([backend.save]).stdout


def has_istio_chains(backend: Backend) -> bool:
    return any(t.istio_chains for t in iptables.parse_save(save(backend)))


def apply(capture: iptables.Capture, backend: Backend, *, reconcile: bool = False) -> str:
    """Program the rules with one `iptables-restore --noflush`; return the input applied.
    Istio's chains already present: cleaned first with `reconcile`, else an error (nothing changed)."""
    text = iptables.restore_input(iptables.build(capture))
    if has_istio_chains(backend):
        if not reconcile:
            raise iptables.IptablesError(
                "Istio's chains already exist in this network namespace; run istio-clean-iptables "
                "first or pass --reconcile"
            )
        clean(backend, capture)
    log.info("applying with %s --noflush:\n%s", backend.restore, text.strip())
    _run([backend.restore, "--noflush"], stdin=text)
    return text


def clean(backend: Backend, capture: iptables.Capture | None = None) -> str:
    """Remove every jump into an ISTIO_* chain and every ISTIO_* chain (from the current state,
    in one restore); with `capture`, also the RETURN rules its interface flags put in built-in
    chains. Returns the restore input used ("" when there was nothing to remove)."""
    if capture is not None:
        for argv in iptables.undo(iptables.build(capture)):
            if argv[-1].startswith("ISTIO_"):
                continue  # jumps come from the saved state below
            check = [backend.iptables, *argv[:2], "-C", *argv[3:]]
            if _run(check, check=False).returncode == 0:
                _run([backend.iptables, *argv])
    text = iptables.cleanup_from_save(iptables.parse_save(save(backend)))
    if text:
        log.info("cleaning with %s --noflush:\n%s", backend.restore, text.strip())
        _run([backend.restore, "--noflush"], stdin=text)
    return text


def resolve(flags: iptables.Flags, env: Mapping[str, str]) -> iptables.Capture:
    """Fill what Istio takes from the environment (default uid, owner groups, loopback CIDR,
    resolv.conf's DNS servers), then validate every value."""
    changes: dict[str, object] = {}
    if not flags.proxy_uid:
        changes["proxy_uid"] = default_proxy_uid(env)
    if "ISTIO_OUTBOUND_OWNER_GROUPS" in env:
        changes["owner_groups_include"] = env["ISTIO_OUTBOUND_OWNER_GROUPS"]
    if "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE" in env:
        changes["owner_groups_exclude"] = env["ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE"]
    if "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR" in env:
        changes["host_ipv4_loopback_cidr"] = env["ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR"]
    if flags.redirect_dns and not flags.capture_all_dns and not flags.dns_servers:
        changes["dns_servers"] = dns_servers()
    return iptables.validate(dataclasses.replace(flags, **changes))  # type: ignore[arg-type]


def istio_iptables(
    flags: iptables.Flags,
    *,
    dry_run: bool = False,
    cleanup_only: bool = False,
    reconcile: bool = False,
    force_binary: str = "",
    env: Mapping[str, str] | None = None,
) -> str:
    """`istio-iptables`: validate everything, then print (dry run), apply, or clean up.
    Returns the iptables-restore input it used (or would use)."""
    capture = resolve(flags, os.environ if env is None else env)
    if dry_run:
        rules = iptables.build(capture)
        return "" if cleanup_only else iptables.restore_input(rules)
    backend = detect_backend(force_binary)
    if cleanup_only:
        return clean(backend, capture)
    return apply(capture, backend, reconcile=reconcile)


def istio_clean_iptables(
    flags: iptables.Flags, *, force_binary: str = "", env: Mapping[str, str] | None = None
) -> str:
    """`istio-clean-iptables` (Istio's older command; `istio-iptables --cleanup-only` today)."""
    return istio_iptables(flags, cleanup_only=True, force_binary=force_binary, env=env)
