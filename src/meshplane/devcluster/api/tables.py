"""Server-side printing: `kubectl get` asks for meta.k8s.io Table responses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from meshplane.devcluster.schema import resources
from meshplane.runtime import rfc3339
from meshplane.runtime.jsonobj import Obj

Column = tuple[str, str, Callable[[Obj], Any]]  # (name, type, cell)


def _age(obj: Obj) -> str:
    ts = obj["metadata"].get("creationTimestamp")
    if not ts:
        return "<unknown>"
    try:
        then = rfc3339.parse(ts)
    except ValueError:
        return "<unknown>"
    secs = int(dt.datetime.now(dt.UTC).timestamp() - then)
    if secs < 120:
        return f"{max(secs, 0)}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _name(o: Obj) -> Any:
    return o["metadata"]["name"]


def _pod_ready(o: Obj) -> str:
    statuses = (o.get("status") or {}).get("containerStatuses") or []
    total = len((o.get("spec") or {}).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{total}"


def _pod_status(o: Obj) -> str:
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return str((o.get("status") or {}).get("phase") or "Pending")


def _svc_ports(o: Obj) -> str:
    ports = (o.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _ext_ip(o: Obj) -> str:
    ing = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ips = [i.get("ip") or i.get("hostname") for i in ing]
    if ips:
        return ",".join(str(i) for i in ips)
    return "<pending>" if (o.get("spec") or {}).get("type") == "LoadBalancer" else "<none>"


_COLUMNS: dict[str, list[Column]] = {
    "namespaces": [("Status", "string", lambda o: (o.get("status") or {}).get("phase", ""))],
    "pods": [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _pod_status),
        (
            "Restarts",
            "string",
            lambda o: str(
                sum(
                    int(s.get("restartCount", 0))
                    for s in (o.get("status") or {}).get("containerStatuses") or []
                )
            ),
        ),
    ],
    "services": [
        ("Type", "string", lambda o: (o.get("spec") or {}).get("type", "")),
        ("Cluster-IP", "string", lambda o: (o.get("spec") or {}).get("clusterIP") or "<none>"),
        ("External-IP", "string", _ext_ip),
        ("Port(s)", "string", _svc_ports),
    ],
    "configmaps": [("Data", "integer", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))],
    "secrets": [
        ("Type", "string", lambda o: o.get("type", "")),
        ("Data", "integer", lambda o: len(o.get("data") or {})),
    ],
    "apps/deployments": [
        (
            "Ready",
            "string",
            lambda o: (
                f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
                f"{(o.get('spec') or {}).get('replicas', 0)}"
            ),
        ),
        ("Up-to-date", "integer", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
    ],
}


def _jsonpath_cell(path: str) -> Callable[[Obj], Any]:
    parts = [p for p in path.lstrip(".").split(".") if p]

    def cell(o: Obj) -> Any:
        cur: Any = o
        for p in parts:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(p)
        return cur

    return cell


def _event_object(o: Obj) -> str:
    inv = o.get("involvedObject") or {}
    return f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}"


def _event_last_seen(o: Obj) -> str:
    ts = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    return _age({"metadata": {"creationTimestamp": ts}}) if isinstance(ts, str) else "<unknown>"


# Kinds whose table is not NAME ... AGE (as the API server prints them)
_FULL: dict[str, list[Column]] = {
    "events": [
        ("Last Seen", "string", _event_last_seen),
        ("Type", "string", lambda o: o.get("type", "")),
        ("Reason", "string", lambda o: o.get("reason", "")),
        ("Object", "string", _event_object),
        ("Message", "string", lambda o: o.get("message", "")),
    ],
}


def columns_for(rt: resources.ResourceType) -> list[Column]:
    if rt.printer_columns:
        return [(name, typ, _jsonpath_cell(path)) for name, typ, path in rt.printer_columns]
    return _COLUMNS.get(rt.key, [])


def table(rt: resources.ResourceType, items: list[Obj], rv: str, cont: str) -> Obj:
    cols: list[Column] = _FULL.get(rt.key) or [
        ("Name", "string", _name),
        *columns_for(rt),
        ("Age", "date", _age),
    ]
    meta: Obj = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {
                "name": n,
                "type": "string" if t == "date" else t,
                "format": "name" if n == "Name" else "",
                "description": n,
                "priority": 0,
            }
            for n, t, _c in cols
        ],
        "rows": [{"cells": [c(o) for _n, _t, c in cols], "object": o} for o in items],
    }
