"""Envoy's per-host stats and a summary of its config, read-only, on the agent's readiness port
(the one that answers `/healthz/ready`, 15021 by default here), for the control plane's console.

Envoy's Prometheus stats are served merged with the agent's and the app's on 15020
`/stats/prometheus` (statusserver.py, as Istio's pilot-agent `handleStats`). The two JSON pages
here are meshplane's own:

- `/stats/upstreams`: per Envoy cluster, its hosts with Envoy's per-host counters from admin
  `/clusters?format=json` (`rq_total`, `rq_error` = 5xx and connection failures, `rq_success`,
  `rq_timeout`, `rq_active`; address, locality, health), the cluster's `upstream_rq_time`
  histogram (cumulative buckets in ms, admin `/stats?format=json&histogram_buckets=cumulative`;
  Envoy fills it at each stats flush, every 5 s) and `ssl.handshake` (upstream TLS in use).
  `?used=1` keeps only hosts that were sent at least one request (what the console scrapes: a
  proxy with a thousand clusters answers with the few it talks to).
- `/stats/config`: the names Envoy holds (admin `/config_dump`): clusters, listeners with their
  addresses, route configurations with their virtual hosts. Names and addresses only: no
  certificate, key or secret is read or shown.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from meshplane.agent import admin, errors

log = logging.getLogger(__name__)

UPSTREAMS_PATH = "/stats/upstreams"
CONFIG_PATH = "/stats/config"

_HOST_STATS = ("rq_total", "rq_error", "rq_success", "rq_timeout", "rq_active")
_CLUSTER_STAT = "cluster."
_RQ_TIME = ".upstream_rq_time"
_HANDSHAKE = ".ssl.handshake"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def upstreams(
    clusters_json: Mapping[str, Any], stats_json: Mapping[str, Any], used: bool = False
) -> list[dict[str, Any]]:
    """Admin `/clusters?format=json` and `/stats?format=json` → one entry per Envoy cluster
    (`used`: only hosts that were sent at least one request, and clusters that have one)."""
    rq_time: dict[str, list[list[float]]] = {}
    handshakes: dict[str, int] = {}
    names = {c.get("name", "") for c in clusters_json.get("cluster_statuses", []) if isinstance(c, Mapping)}
    for block in stats_json.get("stats", []):
        if not isinstance(block, Mapping):
            continue
        hist = block.get("histograms")
        if isinstance(hist, list):
            for h in hist:
                name = str(h.get("name", "")) if isinstance(h, Mapping) else ""
                cluster = name[len(_CLUSTER_STAT) : -len(_RQ_TIME)] if name.endswith(_RQ_TIME) else ""
                if cluster in names and isinstance(h.get("buckets"), list):
                    rq_time[cluster] = [
                        [float(b.get("upper_bound", 0)), float(b.get("cumulative", 0))]
                        for b in h["buckets"]
                        if isinstance(b, Mapping)
                    ]
        name = str(block.get("name", ""))
        if name.startswith(_CLUSTER_STAT) and name.endswith(_HANDSHAKE):
            handshakes[name[len(_CLUSTER_STAT) : -len(_HANDSHAKE)]] = _int(block.get("value"))
    out = []
    for c in clusters_json.get("cluster_statuses", []):
        if not isinstance(c, Mapping):
            continue
        name = str(c.get("name", ""))
        hosts: list[dict[str, Any]] = []
        for h in c.get("host_statuses", []):
            sock = h.get("address", {}).get("socket_address", {})
            stats = {
                s.get("name"): _int(s.get("value")) for s in h.get("stats", []) if isinstance(s, Mapping)
            }
            locality = h.get("locality", {})
            hosts.append(
                {
                    "address": str(sock.get("address", "")),
                    "port": _int(sock.get("port_value")),
                    "locality": "/".join(
                        str(locality.get(k, "")) for k in ("region", "zone", "sub_zone")
                    ).strip("/"),
                    "health": str(h.get("health_status", {}).get("eds_health_status", "")),
                    **{k: stats.get(k, 0) for k in _HOST_STATS},
                }
            )
        if used:
            hosts = [h for h in hosts if h["rq_total"] > 0]
            if not hosts:
                continue
        out.append(
            {
                "name": name,
                "hosts": hosts,
                "rq_time_ms": rq_time.get(name, []),
                "ssl_handshake": handshakes.get(name, 0),
            }
        )
    return out


def _type_name(config: Mapping[str, Any]) -> str:
    return str(config.get("@type", "")).rsplit(".", 1)[-1]


def config_summary(dump: Mapping[str, Any]) -> dict[str, Any]:
    """Admin `/config_dump` → the names of what Envoy holds (clusters, listeners, routes)."""
    clusters: list[str] = []
    listeners: list[dict[str, str]] = []
    routes: list[dict[str, Any]] = []
    for cfg in dump.get("configs", []):
        if not isinstance(cfg, Mapping):
            continue
        kind = _type_name(cfg)
        if kind == "ClustersConfigDump":
            for key in ("static_clusters", "dynamic_active_clusters"):
                clusters.extend(str(c.get("cluster", {}).get("name", "")) for c in cfg.get(key, []))
        elif kind == "ListenersConfigDump":
            for key in ("static_listeners", "dynamic_listeners"):
                for entry in cfg.get(key, []):
                    lis = entry.get("listener") or entry.get("active_state", {}).get("listener") or {}
                    sock = lis.get("address", {}).get("socket_address", {})
                    address = f"{sock.get('address', '')}:{sock.get('port_value', '')}" if sock else ""
                    listeners.append(
                        {"name": str(entry.get("name") or lis.get("name", "")), "address": address}
                    )
        elif kind == "RoutesConfigDump":
            for key in ("static_route_configs", "dynamic_route_configs"):
                for entry in cfg.get(key, []):
                    rc = entry.get("route_config", {})
                    routes.append(
                        {
                            "name": str(rc.get("name", "")),
                            "virtual_hosts": [str(v.get("name", "")) for v in rc.get("virtual_hosts", [])],
                        }
                    )
    return {"clusters": sorted(clusters), "listeners": listeners, "routes": routes}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def routes(client: admin.AdminClient) -> dict[str, Handler]:
    """The pages above, for the agent's status server."""

    async def upstreams_page(request: web.Request) -> web.Response:
        try:
            clusters = await client.get_json("/clusters", {"format": "json"})
            stats = await client.get_json(
                "/stats",
                {
                    "format": "json",
                    "histogram_buckets": "cumulative",
                    "filter": r"^cluster\..*\.(upstream_rq_time|ssl\.handshake)$",
                },
            )
        except errors.AgentError as e:
            return web.json_response({"error": str(e)}, status=503)
        used = request.query.get("used", "") in ("1", "true")
        return web.json_response(upstreams(clusters, stats, used), dumps=json.dumps)

    async def config_page(_: web.Request) -> web.Response:
        try:
            dump = await client.get_json("/config_dump")
        except errors.AgentError as e:
            return web.json_response({"error": str(e)}, status=503)
        return web.json_response(config_summary(dump))

    return {UPSTREAMS_PATH: upstreams_page, CONFIG_PATH: config_page}
