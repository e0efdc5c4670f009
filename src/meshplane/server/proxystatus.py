"""`meshplane proxy-status`: istioctl's sync table computed from each discovery server's /debug/syncz.

As istioctl does (istioctl/pkg/writer/pilot/status.go): per proxy and type, NOT SENT when nothing
was sent, SYNCED when the last sent nonce is the last acked one, `STALE (Never Acknowledged)` when
nothing was ever acked, STALE otherwise. Discovery servers are reached by URL, or found as the
pods labelled `app=istiod` in the istio namespace and asked at `http://POD_IP:15014`, which works
wherever pod IPs are reachable from the caller (as in the lab, where pods are loopback addresses).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from meshplane.server import errors

HEADER = ("NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION")
# Istio's flat syncz fields per column
_FIELDS = {
    "cds": "cluster",
    "lds": "listener",
    "eds": "endpoint",
    "rds": "route",
    "ecds": "extensionconfig",
}
MONITORING_PORT = 15014


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


def table(rs: Sequence[Row], padding: int = 5) -> str:
    """Go's tabwriter (minwidth 0, padding 5, spaces) as istioctl prints; the last cell is not padded."""
    lines = [HEADER, *(r.cells() for r in rs)]
    widths = [max(len(line[i]) for line in lines) + padding for i in range(len(HEADER) - 1)]
    text = []
    for line in lines:
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        text.append("".join(cells) + line[-1])
    return "\n".join(text) + "\n"


def as_json(rs: Sequence[Row]) -> str:
    return json.dumps([asdict(r) for r in rs], indent=2) + "\n"


def _check_syncz(url: str, data: object) -> list[Mapping[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise errors.SyncStatusError(f"{url}: /debug/syncz is not a JSON list of objects")
    return data


async def fetch(session: aiohttp.ClientSession, base_url: str) -> list[Mapping[str, Any]]:
    url = base_url.rstrip("/") + "/debug/syncz"
    try:
        async with session.get(url) as r:
            if r.status != 200:
                raise errors.SyncStatusError(f"{url}: HTTP {r.status}")
            text = await r.text()
    except (aiohttp.ClientError, TimeoutError) as e:
        raise errors.SyncStatusError(f"{url}: {e or type(e).__name__}") from e
    try:
        data = json.loads(text)
    except ValueError as e:
        raise errors.SyncStatusError(f"{url}: /debug/syncz is not JSON ({e})") from e
    return _check_syncz(url, data)


def check_url(url: str) -> str:
    """An http(s) URL with a host, as given to --istiod-url."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise errors.SyncStatusError(f"--istiod-url {url!r}: want http://HOST:PORT")
    return url


def url_label(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


async def collect(
    targets: Sequence[tuple[str, str]], within: float = 10.0
) -> tuple[dict[str, list[Mapping[str, Any]]], list[str]]:
    """(label, base URL) pairs -> syncz entries per label, and the errors of those that failed."""
    statuses: dict[str, list[Mapping[str, Any]]] = {}
    problems: list[str] = []
    client_timeout = aiohttp.ClientTimeout(total=within)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        results = await asyncio.gather(*(fetch(session, url) for _, url in targets), return_exceptions=True)
    for (label, _), result in zip(targets, results, strict=True):
        if isinstance(result, errors.SyncStatusError):
            problems.append(str(result))
        elif isinstance(result, BaseException):
            raise result
        else:
            statuses[label] = result
    return statuses, problems


async def discover(
    kubeconfig: str | None, context: str | None, namespace: str, port: int = MONITORING_PORT
) -> list[tuple[str, str]]:
    """(pod name, http://POD_IP:port) of running `app=istiod` pods, through the Kubernetes API."""
    import httpx2
    import lightkube
    from lightkube.core import exceptions as lk_exceptions
    from lightkube.resources import core_v1

    try:
        config = lightkube.KubeConfig.from_file(kubeconfig) if kubeconfig else lightkube.KubeConfig.from_env()
        client = lightkube.AsyncClient(config=config.get(context_name=context))
    except (lk_exceptions.ConfigError, OSError, ValueError) as e:
        raise errors.SyncStatusError(f"cannot load kubeconfig: {e}") from e
    found = []
    try:
        async for pod in client.list(core_v1.Pod, namespace=namespace, labels={"app": "istiod"}):
            ip = pod.status.podIP if pod.status else None
            phase = pod.status.phase if pod.status else None
            if ip and phase == "Running" and pod.metadata and pod.metadata.name:
                host = f"[{ip}]" if ":" in ip else ip
                found.append((pod.metadata.name, f"http://{host}:{port}"))
    except (lk_exceptions.ApiError, httpx2.HTTPError, OSError) as e:
        raise errors.SyncStatusError(f"cannot list istiod pods in namespace {namespace}: {e}") from e
    finally:
        await client.close()
    return sorted(found)
