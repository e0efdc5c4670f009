"""`meshplane proxy-status`: istioctl's sync table computed from each discovery server's /debug/syncz.

As istioctl does (istioctl/pkg/writer/pilot/status.go): per proxy and type, NOT SENT when nothing
was sent, SYNCED when the last sent nonce is the last acked one, `STALE (Never Acknowledged)` when
nothing was ever acked, STALE otherwise. The pages are fetched by `ctl.debugclient`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

HEADER = ("NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION")
# Istio's flat syncz fields per column
_FIELDS = {
    "cds": "cluster",
    "lds": "listener",
    "eds": "endpoint",
    "rds": "route",
    "ecds": "extensionconfig",
}


def xds_status(sent: str, acked: str) -> str:
    if not sent:
        return "NOT SENT"
    if sent == acked:
        return "SYNCED"
    if not acked:
        return "STALE (Never Acknowledged)"
    return "STALE"


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    cluster: str
    cds: str
    lds: str
    eds: str
    rds: str
    ecds: str
    istiod: str
    version: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.name,
            self.cluster,
            self.cds,
            self.lds,
            self.eds,
            self.rds,
            self.ecds,
            self.istiod,
            self.version,
        )


def _str(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key, "")
    return value if isinstance(value, str) else str(value)


def rows(statuses: Mapping[str, Sequence[Mapping[str, Any]]], proxy: str = "") -> list[Row]:
    """One row per proxy of every server, sorted by cluster then proxy; `proxy` filters by substring."""
    out = []
    for istiod, entries in statuses.items():
        for e in entries:
            name = _str(e, "proxy")
            if proxy and proxy not in name:
                continue
            st = {k: xds_status(_str(e, f"{f}_sent"), _str(e, f"{f}_acked")) for k, f in _FIELDS.items()}
            version = _str(e, "istio_version") or _str(e, "proxy_version") + "*"
            out.append(Row(name, _str(e, "cluster_id"), **st, istiod=istiod, version=version))
    return sorted(out, key=lambda r: (r.cluster, r.name))


def tabulate(header: Sequence[str], rows: Sequence[Sequence[str]], padding: int = 5) -> str:
    """Go's tabwriter (minwidth 0, padding 5, spaces) as istioctl prints; the last cell is not padded."""
    lines = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) + padding for i in range(len(header) - 1)]
    text = []
    for line in lines:
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        text.append("".join(cells) + line[-1])
    return "\n".join(text) + "\n"


def table(rs: Sequence[Row], padding: int = 5) -> str:
    return tabulate(HEADER, [r.cells() for r in rs], padding)


def as_json(rs: Sequence[Row]) -> str:
    return json.dumps([asdict(r) for r in rs], indent=2) + "\n"
