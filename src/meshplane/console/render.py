"""The console's pages as HTML, rendered on the server from the views' JSON values.

One page shell (navigation, the content, where the numbers come from); the content alone is what
`?fragment=1` returns and what static/console.js swaps in every few seconds (live updates without
reloading the page). Every value is escaped; nothing secret is in the views to begin with.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshplane.console import layout

NAV = (("graph", "Mesh graph"), ("clusters", "Clusters"), ("services", "Services"), ("proxies", "Proxies"),
       ("config", "Config"))  # fmt: skip
REFRESH_SECONDS = 5


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def table(header: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page(view: str, title: str, content: str) -> str:
    nav = "".join(
        f'<a href="/console/{v}"{" class=active" if v == view else ""}>{esc(label)}</a>' for v, label in NAV
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · meshplane console</title>"
        '<link rel=stylesheet href="/console/static/console.css">'
        '<link rel=icon href="data:,">'
        "</head><body>"
        f"<header><span class=brand>meshplane</span><nav>{nav}</nav><span class=ro>read-only</span></header>"
        f'<main id=content data-refresh="{REFRESH_SECONDS}">{content}</main>'
        '<script src="/console/static/console.js"></script>'
        "</body></html>"
    )


def source(text: str) -> str:
    return f"<p class=source><b>Where these numbers come from:</b> {esc(text)}</p>"


def pct(value: object) -> str:
    return "–" if not isinstance(value, int | float) else f"{value * 1000:.1f} ms"


# --- views ---------------------------------------------------------------------------------------


def graph(g: Mapping[str, Any]) -> str:
    edges = g["edges"]
    summary = (
        f"<p class=summary>{len(g['clusters'])} clusters · "
        f"{sum(1 for n in g['nodes'] if n['kind'] == 'service')} services · "
        f"{sum(1 for n in g['nodes'] if n['kind'] == 'workload')} workloads · {len(edges)} edges"
        f" · traffic over the last {g['window_seconds']:g} s, scraped {esc(g['scraped_at'] or 'not yet')}</p>"
    )
    legend = (
        "<p class=legend><span class='key cross'>cross-cluster</span> <span class='key errors'>errors</span>"
        " <span class='key idle'>no traffic in the window</span> · dotted: a service's workloads</p>"
    )
    rows = layout.edge_rows(edges)
    return (
        "<h1>Mesh graph</h1>"
        + summary
        + legend
        + f"<div class=graph-wrap>{layout.svg(g)}</div>"
        + "<h2>Edges</h2>"
        + table(
            (
                "source",
                "destination",
                "service",
                "cross-cluster",
                "rate",
                "errors",
                "latency",
                "mTLS",
                "requests",
            ),
            ([esc(c) for c in r] for r in rows),
            "edges",
        )
        + source(g["source"])
    )


def _status(status: str) -> str:
    return f'<span class="status {esc(status)}" data-status="{esc(status)}">{esc(status)}</span>'


def clusters(c: Mapping[str, Any]) -> str:
    rows = []
    for r in c["clusters"]:
        informers = "<br>".join(
            f"{esc(i['kind'])}: {'synced' if i['synced'] else 'syncing'}"
            f"{'' if i['connected'] else ' (disconnected)'}, {i['objects']} objects"
            + (f" <span class=error>{esc(i['error'])}</span>" if i["error"] else "")
            for i in r["informers"]
        )
        p = r["propagation"]
        rows.append(
            (
                f"<b>{esc(r['id'])}</b>",
                esc(r["secret"] or "(config cluster)"),
                _status(r["status"]),
                f"<span class=reason>{esc(r['reason'])}</span>",
                informers or "–",
                esc(r["last_event"] or "–"),
                f"{pct(p['p50'])} / {pct(p['p99'])} ({p['samples']} samples)",
            )
        )
    return (
        "<h1>Clusters</h1>"
        + table(
            ("cluster", "secret", "status", "reason", "informers", "last event", "propagation p50 / p99"),
            rows,
            "clusters",
        )
        + source(c["source"])
    )


def services(s: Mapping[str, Any]) -> str:
    blocks = []
    for svc in s["services"]:
        eps = [
            (esc(cid), esc(e["address"]), esc(e["pod"]), esc(e["workload"]), esc(e["locality"] or "–"),
             esc(e["health"]), esc(e["network"] or "–"))
            for cid, lst in svc["endpoints"].items()
            for e in lst
        ]  # fmt: skip
        ports = ", ".join(f"{esc(p['name'])} {p['port']}/{esc(p['protocol'])}" for p in svc["ports"])
        vss = ", ".join(esc(v) for v in svc["virtual_services"]) or "none"
        drs = ", ".join(esc(d) for d in svc["destination_rules"]) or "none"
        blocks.append(
            f'<section class=service id="{esc(svc["hostname"])}"><h2>{esc(svc["hostname"])}</h2>'
            f"<p>ports: {ports} · VirtualServices: {vss} · DestinationRules: {drs}</p>"
            + table(
                ("cluster", "address", "pod", "workload", "locality", "health", "network"), eps, "endpoints"
            )
            + "</section>"
        )
    return "<h1>Services</h1>" + "".join(blocks) + source(s["source"])


def _type_cell(t: Mapping[str, Any] | None) -> str:
    if t is None:
        return "NOT SENT"
    nack = t.get("last_nack")
    out = f'<span class="sync" data-status="{esc(t["status"])}">{esc(t["status"])}</span>'
    if nack:
        out += (
            f'<br><span class=error title="{esc(nack["message"])}">NACK {esc(nack["message"][:120])}</span>'
        )
    return out


def proxies(p: Mapping[str, Any], workload: str = "") -> str:
    rows = []
    for r in p["proxies"]:
        if workload and r["workload"] != workload:
            continue
        link = f'<a href="/console/proxies/{urllib.parse.quote(r["id"], safe="")}">{esc(r["id"])}</a>'
        rows.append(
            (
                link,
                esc(r["cluster"]),
                esc(r["workload"]),
                *(_type_cell(r["xds"].get(t)) for t in ("cds", "lds", "eds", "rds")),
                esc(r["envoy_version"] or "–"),
                f"<span class=error>{esc(r['stats_error'])}</span>" if r["stats_error"] else "ok",
            )
        )
    title = f"Proxies of {esc(workload)}" if workload else "Proxies"
    return (
        f"<h1>{title}</h1>"
        + table(
            ("proxy", "cluster", "workload", "CDS", "LDS", "EDS", "RDS", "Envoy", "stats scrape"),
            rows,
            "proxies",
        )
        + source(p["source"])
    )


def proxy(row: Mapping[str, Any], config: Mapping[str, Any] | None, error: str) -> str:
    types = table(
        ("type", "status", "ACKed version", "last NACK"),
        (
            (
                esc(t),
                _type_cell(d),
                esc(d["acked_version"]),
                esc(d["last_nack"]["message"]) if d["last_nack"] else "–",
            )
            for t, d in sorted(row["xds"].items())
        ),
        "xds",
    )
    if config is None:
        held = f"<p class=error>Envoy's config could not be read through the agent: {esc(error)}</p>"
    else:
        held = (
            f"<h2>Clusters ({len(config['clusters'])})</h2><ul class=names>"
            + "".join(f"<li>{esc(c)}</li>" for c in config["clusters"])
            + f"</ul><h2>Listeners ({len(config['listeners'])})</h2>"
            + table(("name", "address"), ((esc(x["name"]), esc(x["address"])) for x in config["listeners"]))
            + f"<h2>Routes ({len(config['routes'])})</h2>"
            + table(
                ("route configuration", "virtual hosts"),
                ((esc(x["name"]), esc(", ".join(x["virtual_hosts"]))) for x in config["routes"]),
            )
        )
    return (
        f"<h1>Proxy {esc(row['id'])}</h1>"
        f"<p>cluster {esc(row['cluster'])} · workload {esc(row['workload'])} · {esc(row['type'])} · "
        f"IP {esc(row['ip'])} · Envoy {esc(row['envoy_version'] or '–')} · "
        f"connected {esc(row['connected'])}</p>"
        + types
        + held
        + source(
            "sync state from the control plane's ADS stream; clusters, listeners and routes as Envoy holds "
            "them, from its admin /config_dump read by the agent (/stats/config, names only)"
        )
    )


def config(c: Mapping[str, Any]) -> str:
    rows = (
        (
            esc(o["kind"]),
            esc(o["namespace"]),
            esc(o["name"]),
            '<span class="valid yes">valid</span>' if o["valid"] else '<span class="valid no">invalid</span>',
            f"<span class=message>{esc(o['message'])}</span>" if o["message"] else "",
        )
        for o in c["objects"]
    )
    return (
        "<h1>Config</h1>"
        + table(("kind", "namespace", "name", "", "validation"), rows, "config")
        + source(c["source"])
    )


def not_found(what: str) -> str:
    return f"<h1>Not found</h1><p>{esc(what)}</p>"


def dumps(value: object) -> str:
    return json.dumps(value, indent=1)
