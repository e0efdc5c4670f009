"""A lab pod's folder: its volumes, and each container's root where the volumes appear at their
mountPath.

    DIR/pods/<namespace>/<pod>/
      uid                    the Pod's uid (a recreated Pod of the same name starts clean)
      volumes/<volume>/      emptyDir, configMap, secret, downwardAPI, projected (tokens included)
      c/<container>/         the container's root: MESHPLANE_POD_ROOT for its processes;
                             <mountPath> → symlink to volumes/<volume>[/<subPath>],
                             etc/hosts → the cluster's hosts file (service names)
      logs/<container>.log   the container's output, all restarts appended
      pids/<container>.pid   `PID STARTTIME` of the running process

Volumes are written like the kubelet's AtomicWriter: files live in a timestamped folder, `..data`
points at it, and every top-level name is a symlink through `..data`, so a reader sees the old or
the new contents, never a mix. ConfigMaps and Secrets are rewritten when they change; projected
service-account tokens come from a TokenRequest bound to the Pod, with the requested audience and
expiry, and are renewed at 80% of their lifetime. All file work here is blocking: call it in a
thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meshplane.lab import errors
from meshplane.lab.node import podspec
from meshplane.runtime import jsonobj
from meshplane.runtime.jsonobj import Obj

log = logging.getLogger(__name__)

DATA = "..data"
DEFAULT_MODE = 0o644
TOKEN_REFRESH = 0.8  # of the token's lifetime


@dataclass(frozen=True, slots=True)
class PodPaths:
    base: Path

    @staticmethod
    def of(root: Path, namespace: str, name: str) -> PodPaths:
        return PodPaths(root / "pods" / namespace / name)

    def volume(self, name: str) -> Path:
        return self.base / "volumes" / name

    def root(self, container: str) -> Path:
        return self.base / "c" / container

    def log(self, container: str) -> Path:
        return self.base / "logs" / f"{container}.log"

    def pid(self, container: str) -> Path:
        return self.base / "pids" / f"{container}.pid"


def prepare(paths: PodPaths, uid: str) -> None:
    """Create the pod folder; a folder left by an older Pod of the same name is cleared."""
    marker = paths.base / "uid"
    try:
        old = marker.read_text().strip()
    except OSError:
        old = None
    if old is not None and old != uid:
        shutil.rmtree(paths.base, ignore_errors=True)
    paths.base.mkdir(parents=True, exist_ok=True)
    paths.base.chmod(0o700)
    marker.write_text(uid + "\n")


def remove(paths: PodPaths) -> None:
    """Drop volumes and container roots of a deleted Pod (its logs stay for inspection)."""
    for sub in ("volumes", "c", "pids"):
        shutil.rmtree(paths.base / sub, ignore_errors=True)


def _safe_rel(path: str) -> Path:
    rel = Path(path)
    if not path or rel.is_absolute() or ".." in rel.parts:
        raise errors.PodSpecError(f'invalid volume path "{path}": must be relative without ".."')
    return rel


def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make `target` hold exactly `files` (relative path → (data, mode)); False when unchanged."""
    target.mkdir(parents=True, exist_ok=True)
    current = target / DATA
    if current.is_dir() and _same(current, files):
        return False
    stamp = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9}"
    stamp.mkdir()
    for rel, (data, mode) in files.items():
        p = stamp / _safe_rel(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
    old_stamp = os.readlink(current) if current.is_symlink() else None
    tmp = target / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(stamp.name, tmp)
    os.replace(tmp, current)
    tops = {_safe_rel(rel).parts[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA}/{top}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old_stamp and old_stamp != stamp.name:
        shutil.rmtree(target / old_stamp, ignore_errors=True)
    return True


def _same(current: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    existing = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
    if existing != set(files):
        return False
    for rel, (data, mode) in files.items():
        p = current / rel
        try:
            if p.read_bytes() != data or (p.stat().st_mode & 0o777) != mode:
                return False
        except OSError:
            return False
    return True


# (namespace, name) → object or None
Lookup = Callable[[str, str], Obj | None]


@dataclass(slots=True)
class Token:
    token: str
    issued: float
    expires: float

    def due(self, now: float) -> bool:
        return now >= self.issued + TOKEN_REFRESH * (self.expires - self.issued)


@dataclass(slots=True)
class Sources:
    configmaps: Lookup
    secrets: Lookup
    # (volume, path, audience, seconds) → the pod's current token for that projection
    tokens: dict[tuple[str, str, str, int], Token] = field(default_factory=dict)


def _keyed(
    kind: str, src: Obj, namespace: str, lookup: Lookup, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    name = str(src.get("name") or src.get("secretName") or "")
    optional = bool(src.get("optional"))
    obj = lookup(namespace, name) if name else None
    if obj is None:
        if optional:
            return {}
        raise errors.VolumeNotReady(f'{kind} "{name}" not found')
    data = podspec.data_items(kind, obj)
    items = src.get("items")
    out: dict[str, tuple[bytes, int]] = {}
    if isinstance(items, list) and items:
        for item in items:
            item = item if isinstance(item, dict) else {}
            key = str(item.get("key") or "")
            if key not in data:
                if optional:
                    continue
                raise errors.VolumeNotReady(f"{kind} {namespace}/{name} has no key {key}")
            mode = item.get("mode")
            out[str(item.get("path") or key)] = (
                data[key],
                int(mode) if isinstance(mode, int) else default_mode,
            )
        return out
    return {k: (v, default_mode) for k, v in data.items()}


def _downward(
    pod: Obj, container_of: Callable[[str], Obj], src: Obj, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    for item in jsonobj.as_list(src.get("items")):
        item = item if isinstance(item, dict) else {}
        path = str(item.get("path") or "")
        raw_mode = item.get("mode")
        mode = raw_mode if isinstance(raw_mode, int) else default_mode
        if isinstance(item.get("fieldRef"), dict):
            value = podspec.field_value(pod, str(item["fieldRef"].get("fieldPath") or ""))
        elif isinstance(item.get("resourceFieldRef"), dict):
            ref = item["resourceFieldRef"]
            value = podspec.resource_value(container_of(str(ref.get("containerName") or "")), ref, {})
        else:
            raise errors.PodSpecError(f'downwardAPI item "{path}" has neither fieldRef nor resourceFieldRef')
        out[path] = (value.encode(), mode)
    return out


@dataclass(frozen=True, slots=True)
class TokenWant:
    """A projected token the pod needs (fetched by the caller through the API)."""

    volume: str
    path: str
    audience: str
    seconds: int


def token_wants(pod: Obj) -> list[TokenWant]:
    out: list[TokenWant] = []
    for vol in jsonobj.as_list(podspec.spec(pod).get("volumes")):
        if not isinstance(vol, dict) or not isinstance(vol.get("projected"), dict):
            continue
        for s in jsonobj.as_list(vol["projected"].get("sources")):
            sat = s.get("serviceAccountToken") if isinstance(s, dict) else None
            if isinstance(sat, dict):
                seconds = sat.get("expirationSeconds")
                out.append(
                    TokenWant(
                        str(vol.get("name")),
                        str(sat.get("path") or "token"),
                        str(sat.get("audience") or ""),
                        max(600, int(seconds)) if isinstance(seconds, int) else 3600,
                    )
                )
    return out


def render(pod: Obj, sources: Sources) -> dict[str, dict[str, tuple[bytes, int]] | None]:
    """Each volume's files (None for an emptyDir); VolumeNotReady while a source is missing."""
    ns = str(podspec.meta(pod).get("namespace") or "default")
    by_name = {c.get("name"): c for c in podspec.containers(pod) + podspec.containers(pod, "initContainers")}

    def container_of(name: str) -> Obj:
        return by_name.get(name) or next(iter(by_name.values()), {})

    out: dict[str, dict[str, tuple[bytes, int]] | None] = {}
    for vol in jsonobj.as_list(podspec.spec(pod).get("volumes")):
        if not isinstance(vol, dict) or not isinstance(vol.get("name"), str):
            raise errors.PodSpecError("a volume has no name")
        name = vol["name"]
        if "emptyDir" in vol:
            out[name] = None
        elif isinstance(vol.get("configMap"), dict):
            src = vol["configMap"]
            out[name] = _keyed("configmap", src, ns, sources.configmaps, _mode(src))
        elif isinstance(vol.get("secret"), dict):
            src = vol["secret"]
            out[name] = _keyed("secret", src, ns, sources.secrets, _mode(src))
        elif isinstance(vol.get("downwardAPI"), dict):
            src = vol["downwardAPI"]
            out[name] = _downward(pod, container_of, src, _mode(src))
        elif isinstance(vol.get("projected"), dict):
            out[name] = _projected(pod, name, vol["projected"], ns, sources, container_of)
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise errors.PodSpecError(
                f'volume "{name}": {", ".join(kinds) or "no source"} is not supported in the lab'
            )
    return out


def _mode(src: Obj) -> int:
    mode = src.get("defaultMode")
    return int(mode) if isinstance(mode, int) and 0 <= mode <= 0o777 else DEFAULT_MODE


def _projected(
    pod: Obj, name: str, proj: Obj, ns: str, sources: Sources, container_of: Callable[[str], Obj]
) -> dict[str, tuple[bytes, int]]:
    mode = _mode(proj)
    files: dict[str, tuple[bytes, int]] = {}
    for s in jsonobj.as_list(proj.get("sources")):
        s = s if isinstance(s, dict) else {}
        if isinstance(s.get("configMap"), dict):
            files.update(_keyed("configmap", s["configMap"], ns, sources.configmaps, mode))
        elif isinstance(s.get("secret"), dict):
            files.update(_keyed("secret", s["secret"], ns, sources.secrets, mode))
        elif isinstance(s.get("downwardAPI"), dict):
            files.update(_downward(pod, container_of, s["downwardAPI"], mode))
        elif isinstance(s.get("serviceAccountToken"), dict):
            want = next(
                w for w in token_wants({"spec": {"volumes": [{"name": name, "projected": {"sources": [s]}}]}})
            )
            tok = sources.tokens.get((want.volume, want.path, want.audience, want.seconds))
            if tok is None:
                raise errors.VolumeNotReady(f'token for volume "{name}" not issued yet')
            files[want.path] = (tok.token.encode(), 0o600 if mode == DEFAULT_MODE else mode)
        else:
            raise errors.PodSpecError(f'projected volume "{name}": unsupported source {sorted(s)}')
    return files


def write_all(paths: PodPaths, rendered: dict[str, dict[str, tuple[bytes, int]] | None]) -> list[str]:
    """Write every volume; the names of those that changed."""
    changed = []
    for name, files in rendered.items():
        target = paths.volume(_safe_rel(name).name)
        if files is None:
            target.mkdir(parents=True, exist_ok=True)
            continue
        if atomic_write(target, files):
            changed.append(name)
    return changed


def mount(paths: PodPaths, container: Obj, hosts_file: Path) -> Path:
    """The container's root, with its volume mounts and etc/hosts in place."""
    root = paths.root(str(container.get("name")))
    root.mkdir(parents=True, exist_ok=True)
    mounts = [m for m in jsonobj.as_list(container.get("volumeMounts")) if isinstance(m, dict)]
    for m in sorted(mounts, key=lambda m: len(str(m.get("mountPath") or ""))):
        mount_path = str(m.get("mountPath") or "")
        if not mount_path.startswith("/") or ".." in Path(mount_path).parts or mount_path == "/etc/hosts":
            log.warning("skipping mount path=%s container=%s", mount_path, container.get("name"))
            continue
        source = paths.volume(str(m.get("name")))
        if m.get("subPath"):
            source = source / _safe_rel(str(m["subPath"]))
            if not source.exists():
                source.mkdir(parents=True, exist_ok=True)
        link = root / mount_path.lstrip("/")
        if any(p.is_symlink() for p in link.parents if root in p.parents):
            log.warning("nested mount not supported path=%s container=%s", mount_path, container.get("name"))
            continue
        _symlink(link, source)
    _symlink(root / "etc" / "hosts", hosts_file)
    return root


def _symlink(link: Path, source: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        if os.readlink(link) == str(source):
            return
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    elif link.exists():
        link.unlink()
    os.symlink(source, link)
