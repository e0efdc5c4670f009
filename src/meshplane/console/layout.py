"""The mesh graph drawn as SVG on the server: clusters as boxes of workloads, services between them.

A fixed, readable layout rather than a force simulation, so the same mesh always looks the same and
a thousand nodes cost a string join, not a browser's physics: the clusters are columns (the first
half left of the services, the rest right of them), each a box of its workloads sorted by
namespace and name; services are one column in the middle. Edges are observed traffic between
workloads (curves, labelled with rate, error ratio and p99; dashed and coloured when they cross
clusters, red when they carry errors); thin dotted lines tie a service to its workloads. Every
element carries `data-` attributes with its figures, and a `<title>` tooltip.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

NODE_W, NODE_H, ROW, COL_GAP, PAD, HEAD, LOOP = 230, 26, 34, 150, 16, 34, 90


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt_rate(rps: float | None) -> str:
    return "–" if rps is None else f"{rps:.2f} rps"


def fmt_ratio(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:.1f}% err"


def fmt_ms(ms: float | None) -> str:
    return "–" if ms is None else f"p99 {ms:g}ms"


def edge_label(e: Mapping[str, Any]) -> str:
    return " · ".join((fmt_rate(e["rps"]), fmt_ratio(e["error_rate"]), fmt_ms(e["p99_ms"])))


def _columns(g: Mapping[str, Any]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    clusters: list[str] = list(g["clusters"])
    by_cluster: dict[str, list[Mapping[str, Any]]] = {c: [] for c in clusters}
    services: list[Mapping[str, Any]] = []
    for n in g["nodes"]:
        if n["kind"] == "service":
            services.append(n)
        else:
            by_cluster.setdefault(n["cluster"], []).append(n)
    half = (len(clusters) + 1) // 2
    cols: list[tuple[str, list[Mapping[str, Any]]]] = [(c, by_cluster[c]) for c in clusters[:half]]
    cols.append(("", services))
    cols.extend((c, by_cluster[c]) for c in clusters[half:])
    return cols


def svg(g: Mapping[str, Any]) -> str:
    """The graph of `views.graph()` as one `<svg>` element."""
    pos: dict[str, tuple[float, float]] = {}
    boxes: list[str] = []
    x = PAD
    height = 0.0
    for cluster, nodes in _columns(g):
        top = PAD + HEAD
        title = f"cluster {cluster}" if cluster else "services"
        box_h = HEAD + max(1, len(nodes)) * ROW + PAD
        cls = "cluster" if cluster else "services"
        boxes.append(
            f'<g class="group {cls}" data-cluster="{_esc(cluster)}">'
            f'<rect x="{x - 8}" y="{PAD}" width="{NODE_W + 16}" height="{box_h}" rx="8"/>'
            f'<text x="{x}" y="{PAD + 22}" class="group-title">{_esc(title)}</text></g>'
        )
        for i, n in enumerate(nodes):
            y = top + i * ROW
            pos[n["id"]] = (x, y)
        height = max(height, PAD + box_h + PAD)
        x += NODE_W + COL_GAP
    width = x - COL_GAP + PAD + 8 + LOOP + 180  # room for same-column loops and their labels
    members = []
    for svc, wid in g.get("members", []):
        if svc in pos and wid in pos:
            (x1, y1), (x2, y2) = pos[svc], pos[wid]
            a, b = (x1 + NODE_W, x2) if x1 < x2 else (x1, x2 + NODE_W)
            members.append(
                f'<line class="member" x1="{a}" y1="{y1 + NODE_H / 2}" x2="{b}" y2="{y2 + NODE_H / 2}"/>'
            )
    edges = []
    for e in g["edges"]:
        if e["source"] not in pos or e["target"] not in pos:
            continue
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
        y1, y2 = y1 + NODE_H / 2, y2 + NODE_H / 2
        if x1 < x2:
            sx, tx = x1 + NODE_W, x2
        elif x1 > x2:
            sx, tx = x1, x2 + NODE_W
        else:  # same column: loop out to the right
            sx, tx = x1 + NODE_W, x2 + NODE_W
        bend = max(60.0, abs(tx - sx) / 2) * (1 if tx >= sx else -1)
        if x1 == x2:
            bend = LOOP - 10
            d = f"M{sx},{y1} C{sx + bend},{y1} {tx + bend},{y2} {tx},{y2}"
            mx, my = sx + bend * 0.75 + 4, (y1 + y2) / 2 + 4  # beside the loop
            anchor = "start"
        else:
            d = f"M{sx},{y1} C{sx + bend},{y1} {tx - bend},{y2} {tx},{y2}"
            # near the target, where the curve is level and clear of the columns between
            mx, my = tx - (18 if tx > sx else -18), y2 - 6
            anchor = "end" if tx > sx else "start"
        classes = ["edge"]
        if e["cross_cluster"]:
            classes.append("cross")
        if e["error_rate"]:
            classes.append("errors")
        if not e["rps"]:
            classes.append("idle")
        label = edge_label(e)
        tip = f"{e['source']} → {e['target']} via {e['service']}: {label}" + (" · mTLS" if e["mtls"] else "")
        edges.append(
            f'<g class="{" ".join(classes)}" data-source="{_esc(e["source"])}"'
            f' data-target="{_esc(e["target"])}"'
            f' data-service="{_esc(e["service"])}" data-rps="{e["rps"] if e["rps"] is not None else ""}"'
            f' data-error-rate="{e["error_rate"] if e["error_rate"] is not None else ""}"'
            f' data-cross-cluster="{str(e["cross_cluster"]).lower()}" data-mtls="{str(e["mtls"]).lower()}">'
            f"<title>{_esc(tip)}</title>"
            f'<path d="{d}" marker-end="url(#arrow)"/>'
            f'<text x="{mx}" y="{my}" text-anchor="{anchor}" class="edge-label">'
            f"{_esc(label)}{' · mTLS' if e['mtls'] else ''}</text></g>"
        )
    nodes_svg = []
    for n in g["nodes"]:
        if n["id"] not in pos:
            continue
        nx, ny = pos[n["id"]]
        if n["kind"] == "service":
            href = "/console/services#" + urllib.parse.quote(n["name"])
            tip = f"service {n['name']} (endpoints in {', '.join(n['clusters']) or 'no cluster'})"
        else:
            href = "/console/proxies?workload=" + urllib.parse.quote(n["id"])
            tip = f"workload {n['id']}: {n['proxies']} proxies, {n['endpoints']} endpoints"
        nodes_svg.append(
            f'<a href="{_esc(href)}"><g class="node {n["kind"]}" data-id="{_esc(n["id"])}"'
            f' data-kind="{n["kind"]}" data-cluster="{_esc(n["cluster"])}">'
            f"<title>{_esc(tip)}</title>"
            f'<rect x="{nx}" y="{ny}" width="{NODE_W}" height="{NODE_H}"'
            f' rx="{13 if n["kind"] == "service" else 4}"/>'
            f'<text x="{nx + 10}" y="{ny + 17}">{_esc(_short(n))}</text></g></a>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="mesh graph">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        ' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>'
        + "".join(boxes)
        + "".join(members)
        + "".join(nodes_svg)
        + "".join(edges)
        + "</svg>"
    )


def _short(n: Mapping[str, Any]) -> str:
    if n["kind"] == "service":
        name: str = n["name"]
        return name.removesuffix(".svc.cluster.local")
    return f"{n['name']} ({n['namespace']})" if n["namespace"] else str(n["name"])


def edge_rows(edges: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            e["source"],
            e["target"],
            e["service"],
            "yes" if e["cross_cluster"] else "",
            fmt_rate(e["rps"]),
            fmt_ratio(e["error_rate"]),
            fmt_ms(e["p99_ms"]),
            "yes" if e["mtls"] else "",
            str(e["requests"]),
        )
        for e in edges
    ]
