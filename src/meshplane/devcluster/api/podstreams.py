"""The pod subresources served by the pod's node: `pods/log`, `pods/exec`, `pods/attach` and
`pods/portforward`, checked here as kube-apiserver checks them and then proxied to the
node's kubelet (`kubeletproxy`).

kube-apiserver's rules (pkg/registry/core/pod/strategy.go `LogLocation`, `streamLocation`;
pkg/apis/core/validation `ValidatePodLogOptions`): the container defaults to the pod's only one,
else 400 naming the choices; a container that is not the pod's is 400; exec needs a command and
one of stdin/stdout/stderr, and is refused for a completed pod; log options out of range are 422
naming the field. RBAC: `get` on pods/log; `create` on pods/exec, pods/attach and
pods/portforward for a WebSocket GET as for a POST (kube-apiserver authorizes a GET upgrade as
`get` up to 1.34; 1.35's AuthorizePodWebsocketUpgradeCreatePermission requires `create`, which is
what the dev cluster always does, so a role that may only `get` cannot exec).

Only the WebSocket protocols are served (`v5.channel.k8s.io`, `v4.channel.k8s.io` for exec and
attach, which kubectl 1.30+ tries first; `SPDY/3.1+portforward.k8s.io` for port forwarding, which
kubectl 1.31+ tries first); a bare SPDY/3.1 upgrade (a POST, kubectl's fallback) is refused with
400 and a message naming what is served.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from meshplane.devcluster import errors
from meshplane.devcluster.api import context, kubeletproxy, routing
from meshplane.devcluster.schema import resources
from meshplane.runtime.jsonobj import Obj

SUBRESOURCES = ("log", "exec", "attach", "portforward")
# discovery: kube-apiserver lists these verbs and kinds for them
_DISCOVERY = {
    "log": ("Pod", ("get",)),
    "exec": ("PodExecOptions", ("create", "get")),
    "attach": ("PodAttachOptions", ("create", "get")),
    "portforward": ("PodPortForwardOptions", ("create", "get")),
}
WEBSOCKET_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
# port forwarding: SPDY tunnelled in a WebSocket (client-go tools/portforward/tunneling_dialer.go)
PORTFORWARD_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
_LOG_INTS = {"tailLines": 0, "limitBytes": 1, "sinceSeconds": 1}
_LOG_FLAGS = ("follow", "previous", "timestamps", "insecureSkipTLSVerifyBackend")
_LOG_PARAMS = {"container", "sinceTime", "pretty", "stream", *_LOG_INTS, *_LOG_FLAGS}
_EXEC_PARAMS = {"container", "command", "stdin", "stdout", "stderr", "tty", "pretty"}


def served(t: routing.Target) -> bool:
    return t.group == "" and t.plural == "pods" and t.subresource in SUBRESOURCES and bool(t.name)


def verb(t: routing.Target, verb: str) -> str:
    """The RBAC verb: `create` for the streaming subresources whatever the method (see above)."""
    return "create" if t.subresource in ("exec", "attach", "portforward") and verb == "get" else verb


async def _refuse(req: resources.HandlerRequest) -> tuple[int, Obj]:  # dispatch serves them
    raise errors.method_not_allowed()


def register(registry: resources.Registry) -> None:
    """List the subresources in discovery (dispatch serves them through `serve`)."""
    for sub, (kind, verbs) in _DISCOVERY.items():
        registry.add_subresource("", "pods", sub, kind, _refuse, verbs=verbs)


def _flag(value: str) -> bool:
    return value in ("1", "true", "True")


def _pod(ctx: context.ApiContext, t: routing.Target) -> Obj:
    pod = ctx.store.get("pods", t.namespace, t.name)
    if pod is None:
        raise errors.not_found("pods", "", t.name)
    return pod


def _names(pod: Obj, key: str) -> list[str]:
    return [str(c.get("name")) for c in (pod.get("spec") or {}).get(key) or []]


def container(pod: Obj, requested: str) -> str:
    name = str(pod["metadata"]["name"])
    containers, inits = _names(pod, "containers"), _names(pod, "initContainers")
    if not requested:
        if len(containers) == 1:
            return containers[0]
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        raise errors.bad_request(msg)
    if requested not in containers and requested not in inits:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _unknown(query: dict[str, list[str]], allowed: set[str], kind: str) -> None:
    extra = sorted(k for k in query if k not in allowed)
    if extra:
        raise errors.bad_request(f"{kind}: unsupported query parameter(s): {', '.join(extra)}")


def log_query(name: str, query: dict[str, list[str]]) -> dict[str, str]:
    """Validated PodLogOptions → the kubelet's containerLogs query."""
    _unknown(query, _LOG_PARAMS, "PodLogOptions")
    out: dict[str, str] = {}
    causes: list[tuple[str, str, str]] = []
    for key, minimum in _LOG_INTS.items():
        if key not in query:
            continue
        raw = query[key][-1]
        try:
            v = int(raw)
        except ValueError:
            causes.append(("FieldValueInvalid", key, f"Invalid value: {raw!r}: must be an integer"))
            continue
        if v < minimum:
            what = "greater than or equal to 0" if minimum == 0 else "greater than 0"
            causes.append(("FieldValueInvalid", key, f"Invalid value: {v}: must be {what}"))
        out[key] = str(v)
    if "sinceSeconds" in query and "sinceTime" in query:
        causes.append(
            ("FieldValueForbidden", "", "at most one of `sinceTime` or `sinceSeconds` may be specified")
        )
    if "stream" in query:
        causes.append(("FieldValueForbidden", "stream", "Forbidden: not supported by this dev cluster"))
    if causes:
        raise errors.invalid("PodLogOptions", "", name, causes)
    if "sinceTime" in query:
        out["sinceTime"] = query["sinceTime"][-1]
    for key in ("follow", "previous", "timestamps"):
        if key in query and _flag(query[key][-1]):
            out[key] = "true"
    return out


async def serve(ctx: context.ApiContext, request: web.Request, t: routing.Target) -> web.StreamResponse:
    pod = _pod(ctx, t)
    query = {k: request.query.getall(k) for k in request.query}
    if t.subresource == "log":
        if request.method != "GET":
            raise errors.method_not_allowed()
        lq = log_query(t.name, query)
        c = container(pod, (query.get("container") or [""])[-1])
        base = kubeletproxy.endpoint(ctx, pod)
        target = kubeletproxy.url(base, "/containerLogs", t.namespace, t.name, c)
        return await kubeletproxy.stream_get(ctx, request, target + ("?" + urlencode(lq) if lq else ""))
    if t.subresource == "portforward":
        return await _port_forward(ctx, request, t, pod, query)
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    _unknown(query, _EXEC_PARAMS, "PodExecOptions" if t.subresource == "exec" else "PodAttachOptions")
    c = container(pod, (query.get("container") or [""])[-1])
    stdin, stdout, stderr, tty = (
        _flag((query.get(k) or [""])[-1]) for k in ("stdin", "stdout", "stderr", "tty")
    )
    if not (stdin or stdout or stderr):
        raise errors.bad_request("you must specify at least one of stdin, stdout, stderr")
    kq: list[tuple[str, str]] = []
    if t.subresource == "exec":
        command = query.get("command") or []
        if not command:
            raise errors.bad_request("you must specify at least 1 command")
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise errors.bad_request(
                f"cannot exec into a container in a completed pod; current phase is {phase}"
            )
        kq += [("command", cmd) for cmd in command]
    kq += [
        (k, "1") for k, on in (("input", stdin), ("output", stdout), ("error", stderr), ("tty", tty)) if on
    ]
    base = kubeletproxy.endpoint(ctx, pod)
    target = kubeletproxy.url(base, "/" + t.subresource, t.namespace, t.name, c) + "?" + urlencode(kq)
    if request.headers.get("Upgrade", "").lower() != "websocket" or request.method != "GET":
        # kubectl falls back to SPDY after any refused WebSocket upgrade: the kubelet's reason first
        await kubeletproxy.probe(ctx, target)
        raise errors.bad_request(
            f"Upgrade {request.headers.get('Upgrade', '(none)')!r} is not supported: the dev cluster "
            f"serves pods/{t.subresource} over the WebSocket protocols {', '.join(WEBSOCKET_PROTOCOLS)} "
            "(kubectl 1.30 and later), not SPDY/3.1"
        )
    if not any(p in WEBSOCKET_PROTOCOLS for p in kubeletproxy.offered_protocols(request)):
        raise errors.bad_request(
            f"no supported WebSocket subprotocol offered; supported: {', '.join(WEBSOCKET_PROTOCOLS)}"
        )
    return await kubeletproxy.relay_websocket(ctx, request, target)


async def _port_forward(
    ctx: context.ApiContext,
    request: web.Request,
    t: routing.Target,
    pod: Obj,
    query: dict[str, list[str]],
) -> web.StreamResponse:
    """PodPortForwardOptions (`ports`, each 1-65535) checked; the tunnel relayed to the kubelet."""
    _unknown(query, {"ports", "pretty"}, "PodPortForwardOptions")
    ports = [p for raw in query.get("ports") or [] for p in raw.split(",") if p]
    for p in ports:
        if not p.isdigit() or not 0 < int(p) < 65536:
            raise errors.bad_request(f'invalid port "{p}": must be between 1 and 65535, inclusive')
    target = kubeletproxy.url(kubeletproxy.endpoint(ctx, pod), "/portForward", t.namespace, t.name)
    if ports:
        target += "?" + urlencode([("port", p) for p in ports])
    if request.headers.get("Upgrade", "").lower() != "websocket" or request.method != "GET":
        await kubeletproxy.probe(ctx, target)
        raise errors.bad_request(
            f"Upgrade {request.headers.get('Upgrade', '(none)')!r} is not supported: the dev cluster "
            f"serves pods/portforward as {PORTFORWARD_PROTOCOL} (SPDY tunnelled in a WebSocket, "
            "kubectl 1.31 and later), not a bare SPDY/3.1 upgrade"
        )
    if PORTFORWARD_PROTOCOL not in kubeletproxy.offered_protocols(request):
        raise errors.bad_request(
            f"no supported WebSocket subprotocol offered; supported: {PORTFORWARD_PROTOCOL}"
        )
    return await kubeletproxy.relay_websocket(ctx, request, target)
