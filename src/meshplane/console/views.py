"""What each console view shows, as plain JSON values (the API under /console/api/ serves these).

Pure functions of the control plane's state (`State`) and the traffic the collector scraped from
the proxies' Envoys (`scrape.Traffic`). Nothing here invents a figure: a rate the collector could
not compute yet is `None`, and every view says where its numbers come from (`source`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshplane.console import scrape
from meshplane.model import endpoint as ep_mod
from meshplane.networking import hosts
from meshplane.push import context
from meshplane.registry import multicluster
from meshplane.runtime import rfc3339
from meshplane.server import connection

SYNCZ_SOURCE = "the control plane's ADS streams (/debug/syncz): what was sent, ACKed and NACKed"
TRAFFIC_SOURCE = (
    "each proxy's Envoy, scraped by the control plane from the agent's /stats/upstreams: per-host "
    "rq_total and rq_error (5xx and connection failures) of the source proxies, rated over the last "
    "minute; p99 from the source proxies' upstream_rq_time histogram of the destination service"
)
REGISTRY_SOURCE = "the control plane's service registry (the latest push's snapshot, /debug/configz)"
CLUSTERS_SOURCE = (
    "remote secrets and informers (/debug/clusterz); propagation from meshplane_config_propagation_seconds"
)
CONFIG_SOURCE = "the Istio objects the control plane's config watch read from the config cluster"


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigObject:
    kind: str
    namespace: str
    name: str
    message: str = ""  # the validation error; "" when valid

    @property
    def valid(self) -> bool:
        return not self.message


@dataclasses.dataclass
class State:
    """Where the console reads from; the composition root (discovery) fills it in."""

    connections: Callable[[], Sequence[connection.Connection]]
    push_context: Callable[[], context.PushContext | None]
    propagation: Callable[[], Mapping[str, Mapping[str, Any]]]
    multicluster: Callable[[], multicluster.Multicluster | None] = lambda: None
    config: Callable[[], Sequence[ConfigObject]] = lambda: ()


# --- workloads -----------------------------------------------------------------------------------


def workload_of(cluster: str, namespace: str, labels: Mapping[str, str], pod: str) -> str:
    """Workload id as Kiali's versioned-app graph names it: cluster/namespace/app[-version]."""
    app = labels.get("app") or labels.get("app.kubernetes.io/name") or pod or "unknown"
    version = labels.get("version") or labels.get("app.kubernetes.io/version") or ""
    return f"{cluster}/{namespace}/{app}-{version}" if version else f"{cluster}/{namespace}/{app}"


def _endpoint_workload(e: ep_mod.Endpoint, host: str = "") -> str:
    # an endpoint with no pod behind it (the API server's, a remote istiod's): named after its service
    fallback = e.workload_name or (host.split(".", 1)[0] + "-endpoints" if host else e.address)
    return workload_of(e.cluster_id, e.namespace, e.labels, fallback)


def _proxy_workload(c: connection.Connection) -> str:
    p = c.proxy
    return workload_of(p.cluster_id, p.namespace, p.labels, p.pod_name)


def _service_of(envoy_cluster: str) -> tuple[str, int] | None:
    """`outbound|5000||helloworld.sample.svc.cluster.local` → (hostname, port)."""
    parts = envoy_cluster.split("|")
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        return None
    return parts[3], int(parts[1])


# --- graph ---------------------------------------------------------------------------------------


def graph(state: State, traffic: scrape.Traffic) -> dict[str, Any]:
    """Clusters as groups; workloads and services as nodes; observed traffic as edges."""
    ctx = state.push_context()
    conns = state.connections()
    nodes: dict[str, dict[str, Any]] = {}
    by_address: dict[str, str] = {}
    service_edges: set[tuple[str, str]] = set()

    def add_workload(wid: str, cluster: str, namespace: str, proxied: bool) -> None:
        n = nodes.setdefault(
            wid,
            {"id": wid, "kind": "workload", "cluster": cluster, "namespace": namespace,
             "name": wid.split("/", 2)[2], "proxies": 0, "endpoints": 0},
        )  # fmt: skip
        if proxied:
            n["proxies"] += 1

    if ctx is not None:
        for host, svc in ctx.services.items():
            nodes[f"svc/{host}"] = {
                "id": f"svc/{host}", "kind": "service", "cluster": "", "namespace": svc.namespace,
                "name": host, "clusters": sorted(ctx.endpoints.get(host, {})),
            }  # fmt: skip
        for host, shards in ctx.endpoints.items():
            for cid, eps in shards.items():
                for e in eps:
                    wid = _endpoint_workload(e, host)
                    add_workload(wid, cid, e.namespace, False)
                    nodes[wid]["endpoints"] += 1
                    by_address[e.address] = wid
                    if f"svc/{host}" in nodes:
                        service_edges.add((f"svc/{host}", wid))
    for c in conns:
        add_workload(_proxy_workload(c), c.proxy.cluster_id, c.proxy.namespace, True)

    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    errors: dict[tuple[str, str, str], float] = {}
    for c in conns:
        src = _proxy_workload(c)
        for t in traffic.for_proxy(c.proxy.id):
            dest = _service_of(t.envoy_cluster)
            dst = by_address.get(t.address)
            if dest is None or dst is None:
                continue
            key = (src, dst, dest[0])
            edge = edges.get(key)
            if edge is None:
                edge = edges[key] = {
                    "source": src, "target": dst, "service": dest[0],
                    "cross_cluster": nodes[src]["cluster"] != nodes[dst]["cluster"],
                    "rps": None, "error_rate": None, "p99_ms": None, "mtls": False, "requests": 0,
                }  # fmt: skip
            edge["requests"] += t.requests
            if t.rps is not None:
                edge["rps"] = (edge["rps"] or 0.0) + t.rps
                errors[key] = errors.get(key, 0.0) + (t.eps or 0.0)
            if t.p99_ms is not None:
                edge["p99_ms"] = max(edge["p99_ms"] or 0.0, t.p99_ms)
            edge["mtls"] = edge["mtls"] or t.mtls
    for key, edge in edges.items():
        if edge["rps"] is not None:
            edge["error_rate"] = errors.get(key, 0.0) / edge["rps"] if edge["rps"] > 0 else 0.0
    out_edges = list(edges.values())
    clusters = sorted({n["cluster"] for n in nodes.values() if n["cluster"]})
    return {
        "version": ctx.version if ctx is not None else None,
        "clusters": clusters,
        "nodes": sorted(nodes.values(), key=lambda n: (n["kind"] != "service", n["cluster"], n["id"])),
        "edges": sorted(out_edges, key=lambda e: (e["source"], e["target"], e["service"])),
        "members": sorted([list(x) for x in service_edges]),
        "window_seconds": traffic.window,
        "scraped_at": rfc3339.format(traffic.at) if traffic.at else "",
        "source": TRAFFIC_SOURCE,
    }


# --- clusters ------------------------------------------------------------------------------------


def clusters(state: State) -> dict[str, Any]:
    mc = state.multicluster()
    prop = state.propagation()
    rows = []
    for entry in mc.clusterz() if mc is not None else []:
        cid = entry["id"]
        reg = mc.registry_of(cid) if mc is not None and entry.get("syncStatus") != "error" else None
        informers = []
        last_event = ""
        if reg is not None:
            for i in reg.informers:
                informers.append(
                    {"kind": i.kind, "synced": i.synced, "connected": i.connected,
                     "objects": len(i.items()), "error": i.last_error}
                )  # fmt: skip
            if reg.last_event_at:
                last_event = rfc3339.format(reg.last_event_at)
        p = prop.get(cid, {})
        rows.append(
            {
                "id": cid,
                "secret": entry.get("secretName", ""),
                "status": entry.get("syncStatus", ""),
                "reason": entry.get("error", ""),
                "informers": informers,
                "last_event": last_event,
                "propagation": {"p50": p.get("p50"), "p99": p.get("p99"), "samples": p.get("samples", 0)},
            }
        )
    return {"clusters": rows, "source": CLUSTERS_SOURCE}


# --- services ------------------------------------------------------------------------------------


def services(state: State) -> dict[str, Any]:
    ctx = state.push_context()
    rows = []
    if ctx is not None:
        virtual_services = ctx.networking.virtual_services
        destination_rules = ctx.networking.destination_rules
        for host in sorted(ctx.services):
            svc = ctx.services[host]
            per_cluster = {
                cid: [
                    {"address": e.address, "pod": e.workload_name, "locality": e.locality.label,
                     "health": e.health.value, "network": e.network, "workload": _endpoint_workload(e, host)}
                    for e in eps
                ]
                for cid, eps in sorted(ctx.endpoints.get(host, {}).items())
            }  # fmt: skip
            rows.append(
                {
                    "hostname": host,
                    "namespace": svc.namespace,
                    "ports": [
                        {"name": p.name, "port": p.port, "protocol": str(p.protocol)} for p in svc.ports
                    ],
                    "endpoints": per_cluster,
                    # the VirtualServices whose hosts name (or wildcard-cover) this service
                    "virtual_services": sorted(
                        vs.key for vs in virtual_services if any(hosts.matches(h, host) for h in vs.hosts)
                    ),
                    # the DestinationRules whose host names (or wildcard-covers) it, with their subsets
                    "destination_rules": sorted(
                        f"{d.key} ({', '.join(s.name for s in d.subsets)})" if d.subsets else d.key
                        for d in destination_rules
                        if hosts.matches(d.host, host)
                    ),
                }
            )
    return {"version": ctx.version if ctx else None, "services": rows, "source": REGISTRY_SOURCE}


# --- proxies -------------------------------------------------------------------------------------


def sync_status(sent: str, acked: str) -> str:
    """istioctl proxy-status's per-type status, as `ctl.proxystatus.xds_status` prints it (ctl sits
    above the console in the layers, so the console cannot import it; a test keeps them equal)."""
    if not sent:
        return "NOT SENT"
    if sent == acked:
        return "SYNCED"
    return "STALE" if acked else "STALE (Never Acknowledged)"


def proxy_row(c: connection.Connection, scrape_error: str) -> dict[str, Any]:
    entry = c.syncz()
    types = {}
    for short, d in entry.get("xds", {}).items():
        types[short] = {
            "status": sync_status(d["sent_nonce"], d["acked_nonce"]),
            "acked_version": d["acked_version"],
            "last_nack": d["last_nack"],
        }
    return {
        "id": c.proxy.id,
        "cluster": c.proxy.cluster_id,
        "type": c.proxy.type.value,
        "workload": _proxy_workload(c),
        "ip": c.proxy.ip,
        "envoy_version": c.proxy_version,
        "istio_version": c.istio_version,
        "connected": rfc3339.format(c.connected_at),
        "xds": types,
        "stats_error": scrape_error,
    }


def proxies(state: State, traffic: scrape.Traffic) -> dict[str, Any]:
    rows = [proxy_row(c, traffic.errors.get(c.proxy.id, "")) for c in state.connections()]
    rows.sort(key=lambda r: (r["cluster"], r["id"]))
    return {"proxies": rows, "source": SYNCZ_SOURCE}


def proxy(state: State, proxy_id: str) -> connection.Connection | None:
    return next((c for c in state.connections() if c.proxy.id == proxy_id), None)


# --- config --------------------------------------------------------------------------------------


def config(state: State) -> dict[str, Any]:
    rows = [
        {"kind": o.kind, "namespace": o.namespace, "name": o.name, "valid": o.valid, "message": o.message}
        for o in sorted(state.config(), key=lambda o: (o.kind, o.namespace, o.name))
    ]
    return {"objects": rows, "source": CONFIG_SOURCE}
