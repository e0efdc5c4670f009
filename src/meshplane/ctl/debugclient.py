"""Reading discovery servers' debug pages (`/debug/syncz`, `/debug/clusterz`), as istioctl does.

Servers are given by URL, or found as the pods labelled `app=istiod` in the istio namespace and
asked at `http://POD_IP:15014`, which works wherever pod IPs are reachable from the caller (as in
the lab, where pods are loopback addresses).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import httpx2
from lightkube.core import exceptions as lk_exceptions
from lightkube.resources import core_v1

from meshplane.ctl import errors
from meshplane.kube import client as kube_client
from meshplane.kube import errors as kube_errors

MONITORING_PORT = 15014
Entries = list[Mapping[str, Any]]


async def fetch(session: aiohttp.ClientSession, base_url: str, page: str) -> Entries:
    """A debug page that holds a JSON list of objects."""
    url = base_url.rstrip("/") + page
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
        raise errors.SyncStatusError(f"{url}: {page} is not JSON ({e})") from e
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise errors.SyncStatusError(f"{url}: {page} is not a JSON list of objects")
    return data


def check_url(url: str) -> str:
    """An http(s) URL with a host, as given to --istiod-url."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise errors.SyncStatusError(f"--istiod-url {url!r}: want http://HOST:PORT")
    return url


def url_label(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


async def collect(
    targets: Sequence[tuple[str, str]], page: str, within: float = 10.0
) -> tuple[dict[str, Entries], list[str]]:
    """(label, base URL) pairs -> the page's entries per label, and the errors of those that failed."""
    pages: dict[str, Entries] = {}
    problems: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session:
        results = await asyncio.gather(
            *(fetch(session, url, page) for _, url in targets), return_exceptions=True
        )
    for (label, _), result in zip(targets, results, strict=True):
        if isinstance(result, errors.SyncStatusError):
            problems.append(str(result))
        elif isinstance(result, BaseException):
            raise result
        else:
            pages[label] = result
    return pages, problems


async def discover(
    kubeconfig: str | None, context: str | None, namespace: str, port: int = MONITORING_PORT
) -> list[tuple[str, str]]:
    """(pod name, http://POD_IP:port) of running `app=istiod` pods, through the Kubernetes API."""
    try:
        config = await asyncio.to_thread(kube_client.load_file_config, kubeconfig, context)
        client = await asyncio.to_thread(kube_client.make_client, config)
    except kube_errors.KubeconfigError as e:
        raise errors.SyncStatusError(str(e)) from e
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


async def targets(
    urls: Sequence[str], kubeconfig: str | None, context: str | None, namespace: str
) -> list[tuple[str, str]]:
    """--istiod-url values when given, else the running istiod pods."""
    if urls:
        return [(url_label(u), check_url(u)) for u in urls]
    found = await discover(kubeconfig, context, namespace)
    if not found:
        raise errors.SyncStatusError(f"no running istiod pods (label app=istiod) in namespace {namespace}")
    return found
