"""Pure readings of a Pod spec, as the kubelet makes them: env, `$(VAR)` expansion, downward-API
fields, container ports, probes, and which init containers only set up traffic capture.

Everything here works on the Pod as a JSON dict and raises PodSpecError/ContainerConfigError with
Kubernetes' wording for what is missing, so the node runtime can show it in the Pod's status.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshplane.lab import errors
from meshplane.runtime import jsonobj
from meshplane.runtime.jsonobj import Obj

# (namespace, name) -> the ConfigMap or Secret, or None when it does not exist
Lookup = Callable[[str, str], Obj | None]

PROXY_CONTAINER = "istio-proxy"
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def meta(pod: Obj) -> Obj:
    return jsonobj.as_obj(pod.get("metadata"))


def spec(pod: Obj) -> Obj:
    return jsonobj.as_obj(pod.get("spec"))


def containers(pod: Obj, group: str = "containers") -> list[Obj]:
    return [
        c
        for c in jsonobj.as_list(spec(pod).get(group))
        if isinstance(c, dict) and isinstance(c.get("name"), str)
    ]


def has_sidecar(pod: Obj) -> bool:
    """The pod was injected: its app listens on the pod-local address and the sidecar on the pod IP."""
    return any(c.get("name") == PROXY_CONTAINER for c in containers(pod))


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$` is a literal `$`,
    anything else is left as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR.sub(sub, text)


def field_value(pod: Obj, path: str) -> str:
    """A `fieldRef.fieldPath` as the downward API answers it for env variables."""
    m, s, st = meta(pod), spec(pod), jsonobj.as_obj(pod.get("status"))
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "[") and path.endswith("]"):
            key = path[len(prefix) + 1 : -1].strip("'\"")
            return str(jsonobj.as_obj(m.get(source)).get(key, ""))
        if path == prefix:
            return format_map(jsonobj.as_obj(m.get(source)))
    simple = {
        "metadata.name": m.get("name"),
        "metadata.namespace": m.get("namespace"),
        "metadata.uid": m.get("uid"),
        "spec.nodeName": s.get("nodeName"),
        "spec.serviceAccountName": s.get("serviceAccountName"),
        "status.hostIP": st.get("hostIP"),
        "status.podIP": st.get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("status.podIPs", "status.hostIPs"):
        key = path.split(".", 1)[1]
        return ",".join(str(jsonobj.as_obj(x).get("ip", "")) for x in jsonobj.as_list(st.get(key)))
    raise errors.PodSpecError(f'unsupported fieldRef fieldPath "{path}"')


def format_map(values: Mapping[str, Any]) -> str:
    """The downward API's `key="value"` lines, sorted by key."""
    return "\n".join(f'{k}="{_escape(str(values[k]))}"' for k in sorted(values))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_SUFFIX = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def quantity(text: Any) -> float:
    """A resource quantity (`100m`, `2`, `128Mi`) as a number."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise errors.PodSpecError(f'invalid quantity "{text}"')
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


def resource_value(container: Obj, ref: Obj, capacity: Mapping[str, float]) -> str:
    """A `resourceFieldRef` (limits/requests of cpu or memory), rounded up to the divisor as the
    kubelet does; an unset limit is the node's capacity."""
    res = str(ref.get("resource") or "")
    kind, _, name = res.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise errors.PodSpecError(f'unsupported resourceFieldRef resource "{res}"')
    resources = jsonobj.as_obj(container.get("resources"))
    raw = jsonobj.as_obj(resources.get(kind)).get(name)
    if raw is None and kind == "requests":
        raw = jsonobj.as_obj(resources.get("limits")).get(name)
    value = quantity(raw) if raw is not None else (capacity.get(name, 0.0) if kind == "limits" else 0.0)
    divisor = quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        raise errors.PodSpecError(f'invalid resourceFieldRef divisor "{ref.get("divisor")}"')
    return str(max(1, math.ceil(value / divisor)) if value else 0)


def _data_value(kind: str, obj: Obj, key: str) -> str | None:
    if kind == "secret":
        for source in ("data", "stringData"):
            raw = jsonobj.as_obj(obj.get(source)).get(key)
            if raw is None:
                continue
            if source == "stringData":
                return str(raw)
            try:
                return base64.b64decode(str(raw), validate=True).decode("utf-8", errors="replace")
            except (binascii.Error, ValueError) as e:
                raise errors.ContainerConfigError(f'secret key "{key}" is not valid base64') from e
        return None
    raw = jsonobj.as_obj(obj.get("data")).get(key)
    return None if raw is None else str(raw)


def data_items(kind: str, obj: Obj) -> dict[str, bytes]:
    """Every key of a ConfigMap (data and binaryData) or Secret (data), decoded."""
    out: dict[str, bytes] = {}
    if kind == "secret":
        for k, v in jsonobj.as_obj(obj.get("data")).items():
            try:
                out[str(k)] = base64.b64decode(str(v), validate=True)
            except (binascii.Error, ValueError) as e:
                raise errors.ContainerConfigError(f'secret key "{k}" is not valid base64') from e
        for k, v in jsonobj.as_obj(obj.get("stringData")).items():
            out[str(k)] = str(v).encode()
        return out
    for k, v in jsonobj.as_obj(obj.get("data")).items():
        out[str(k)] = str(v).encode()
    for k, v in jsonobj.as_obj(obj.get("binaryData")).items():
        try:
            out[str(k)] = base64.b64decode(str(v), validate=True)
        except (binascii.Error, ValueError) as e:
            raise errors.ContainerConfigError(f'configmap key "{k}" is not valid base64') from e
    return out


def _key_ref(kind: str, ref: Obj, namespace: str, lookup: Lookup) -> str | None:
    name, key, optional = str(ref.get("name") or ""), str(ref.get("key") or ""), bool(ref.get("optional"))
    obj = lookup(namespace, name) if name else None
    if obj is None:
        if optional:
            return None
        raise errors.ContainerConfigError(f'{kind} "{name}" not found')
    value = _data_value(kind, obj, key)
    if value is None and not optional:
        raise errors.ContainerConfigError(
            f"couldn't find key {key} in {kind.capitalize()} {namespace}/{name}"
        )
    return value


@dataclass(frozen=True, slots=True)
class EnvSources:
    configmaps: Lookup
    secrets: Lookup
    capacity: Mapping[str, float] = field(default_factory=dict)


def container_env(pod: Obj, container: Obj, sources: EnvSources, base: Mapping[str, str]) -> dict[str, str]:
    """The container's env as the kubelet builds it: `base` (image and lab defaults), then envFrom,
    then env in order, each value `$(VAR)`-expanded against what is defined so far."""
    namespace = str(meta(pod).get("namespace") or "default")
    env: dict[str, str] = dict(base)
    for src in jsonobj.as_list(container.get("envFrom")):
        src = jsonobj.as_obj(src)
        prefix = str(src.get("prefix") or "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = src.get(key)
            if not isinstance(ref, dict):
                continue
            name, optional = str(ref.get("name") or ""), bool(ref.get("optional"))
            lookup = sources.configmaps if kind == "configmap" else sources.secrets
            obj = lookup(namespace, name) if name else None
            if obj is None:
                if optional:
                    continue
                raise errors.ContainerConfigError(f'{kind} "{name}" not found')
            for k, v in data_items(kind, obj).items():
                env[prefix + k] = v.decode("utf-8", errors="replace")
    for raw in jsonobj.as_list(container.get("env")):
        item = jsonobj.as_obj(raw)
        var = item.get("name")
        if not isinstance(var, str) or not var:
            raise errors.PodSpecError("an env entry has no name")
        value = _env_value(pod, container, item, namespace, sources, env)
        if value is not None:
            env[var] = value
    return env


def _env_value(
    pod: Obj, container: Obj, item: Obj, namespace: str, sources: EnvSources, env: Mapping[str, str]
) -> str | None:
    if "value" in item or "valueFrom" not in item:
        return expand(str(item.get("value") or ""), env)
    vf = jsonobj.as_obj(item.get("valueFrom"))
    if "fieldRef" in vf:
        return field_value(pod, str(jsonobj.as_obj(vf["fieldRef"]).get("fieldPath") or ""))
    if "resourceFieldRef" in vf:
        return resource_value(container, jsonobj.as_obj(vf["resourceFieldRef"]), sources.capacity)
    if "configMapKeyRef" in vf:
        return _key_ref("configmap", jsonobj.as_obj(vf["configMapKeyRef"]), namespace, sources.configmaps)
    if "secretKeyRef" in vf:
        return _key_ref("secret", jsonobj.as_obj(vf["secretKeyRef"]), namespace, sources.secrets)
    raise errors.PodSpecError(f'env "{item.get("name")}": unsupported valueFrom {sorted(vf)}')


def args_of(container: Obj, env: Mapping[str, str]) -> list[str]:
    """The container's args with `$(VAR)` expanded (the command is the image table's business)."""
    return [expand(str(a), env) for a in jsonobj.as_list(container.get("args"))]


def is_traffic_capture(container: Obj) -> bool:
    """Init containers that would rewrite the host's iptables (istio-init, istio-iptables, anything
    that runs iptables) are never run in the lab."""
    if container.get("name") in ("istio-init", "istio-validation"):
        return True
    words = [
        str(w) for w in jsonobj.as_list(container.get("command")) + jsonobj.as_list(container.get("args"))
    ]
    return any("iptables" in w for w in words)


def container_port(container: Obj, port: Any) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) and not isinstance(port, bool):
        if 0 < port < 65536:
            return port
        raise errors.PodSpecError(f"port {port} is out of range")
    if isinstance(port, str):
        if port.isdigit():
            return container_port(container, int(port))
        for p in jsonobj.as_list(container.get("ports")):
            p = jsonobj.as_obj(p)
            if p.get("name") == port and isinstance(p.get("containerPort"), int):
                return int(p["containerPort"])
        raise errors.PodSpecError(f'container "{container.get("name")}" has no port named "{port}"')
    raise errors.PodSpecError(f"invalid port {port!r}")


@dataclass(frozen=True, slots=True)
class Probe:
    kind: str  # "http", "tcp", or "unsupported" (message says why)
    port: int = 0
    path: str = "/"
    scheme: str = "HTTP"
    host: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    message: str = ""


def _num(v: Any, default: float, minimum: float) -> float:
    return max(minimum, float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else default


def probe(container: Obj, key: str = "readinessProbe") -> Probe | None:
    """The container's probe of that kind, or None when it has none."""
    raw = container.get(key)
    if not isinstance(raw, dict):
        return None
    timing = {
        "initial_delay": _num(raw.get("initialDelaySeconds"), 0.0, 0.0),
        "period": _num(raw.get("periodSeconds"), 10.0, 1.0),
        "timeout": _num(raw.get("timeoutSeconds"), 1.0, 1.0),
        "success_threshold": int(_num(raw.get("successThreshold"), 1, 1)),
        "failure_threshold": int(_num(raw.get("failureThreshold"), 3, 1)),
    }
    name = container.get("name")
    try:
        if isinstance(raw.get("httpGet"), dict):
            h = raw["httpGet"]
            headers = tuple(
                (str(jsonobj.as_obj(x).get("name")), str(jsonobj.as_obj(x).get("value", "")))
                for x in jsonobj.as_list(h.get("httpHeaders"))
                if jsonobj.as_obj(x).get("name")
            )
            return Probe(
                "http",
                port=container_port(container, h.get("port")),
                path=str(h.get("path") or "/"),
                scheme=str(h.get("scheme") or "HTTP").upper(),
                host=str(h.get("host") or ""),
                headers=headers,
                **timing,  # type: ignore[arg-type]
            )
        if isinstance(raw.get("tcpSocket"), dict):
            t = raw["tcpSocket"]
            port = container_port(container, t.get("port"))
            return Probe("tcp", port=port, host=str(t.get("host") or ""), **timing)  # type: ignore[arg-type]
    except errors.PodSpecError as e:
        return Probe("unsupported", message=f"{key} of container {name}: {e}", **timing)  # type: ignore[arg-type]
    kinds = [k for k in ("exec", "grpc") if k in raw] or ["(no handler)"]
    return Probe(
        "unsupported",
        message=f"{key} of container {name} uses {kinds[0]}, which the lab does not run "
        "(only httpGet and tcpSocket probes)",
        **timing,  # type: ignore[arg-type]
    )
