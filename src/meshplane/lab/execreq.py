"""`meshplane lab exec … POD -- curl [-sS] URL`: one HTTP request sent as that pod would send it.

The lab's pods have no shell to exec into, so the request is made here, on the pod's behalf:
- a pod with an `istio-proxy` sidecar: through the sidecar's outbound listener, Envoy on the
  pod-local address port 15001, used as an HTTP proxy (absolute-form request, Host header =
  the URL's authority), from the pod-local address, as an app's traffic is captured in a pod;
- any other pod: straight to the Service, the name resolved through the cluster's hosts file
  (short names in the pod's namespace), from the pod's IP.
The body is printed; the exit codes follow curl's (7 cannot connect, 28 timeout, 22 HTTP error
with -f, 3 bad URL, 2 bad option).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from meshplane.lab import addresses, errors
from meshplane.lab.node import podspec
from meshplane.runtime import resolve

SIDECAR_OUTBOUND_PORT = 15001


@dataclass(frozen=True, slots=True)
class Curl:
    url: str
    fail: bool = False  # -f/--fail: non-zero exit on HTTP >= 400
    include: bool = False  # -i: print the status line and headers
    method: str = "GET"
    max_time: float = 10.0


def parse_curl(argv: list[str]) -> Curl:
    """`curl [-s] [-S] [-sS] [-f] [-i] [-X METHOD] [-m SECONDS] URL`."""
    if not argv or argv[0] != "curl":
        raise errors.CurlUsage("the lab runs only `curl [-sS] URL` in a pod (got: " + " ".join(argv) + ")")
    url = ""
    fail = include = False
    method, max_time = "GET", 10.0
    rest = list(argv[1:])
    while rest:
        a = rest.pop(0)
        if a in ("-X", "--request", "-m", "--max-time"):
            if not rest:
                raise errors.CurlUsage(f"option {a} needs a value")
            v = rest.pop(0)
            if a in ("-X", "--request"):
                method = v.upper()
            else:
                try:
                    max_time = float(v)
                except ValueError as e:
                    raise errors.CurlUsage(f"option {a}: {v!r} is not a number") from e
        elif a in ("--silent", "--show-error"):
            continue
        elif a == "--fail":
            fail = True
        elif a == "--include":
            include = True
        elif a.startswith("-") and len(a) > 1 and not a.startswith("--"):
            for flag in a[1:]:
                if flag == "f":
                    fail = True
                elif flag == "i":
                    include = True
                elif flag not in "sSvL":
                    raise errors.CurlUsage(f"unsupported curl option -{flag}")
        elif a.startswith("-"):
            raise errors.CurlUsage(f"unsupported curl option {a}")
        elif url:
            raise errors.CurlUsage("only one URL per request")
        else:
            url = a
    if not url:
        raise errors.CurlUsage("no URL given")
    if "://" not in url:
        url = "http://" + url
    if max_time <= 0:
        raise errors.CurlUsage("--max-time must be positive")
    return Curl(url, fail, include, method, max_time)


@dataclass(frozen=True, slots=True)
class Result:
    exit_code: int
    body: bytes = b""
    head: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    target_url: str  # what to connect to (direct) or the URL to ask the proxy for
    proxy: str | None  # http://LOCAL:15001 for a pod with a sidecar
    source: str  # the address the request leaves from
    host_header: str


def plan(pod: dict[str, Any], url: str, hosts_file: Path, pod_cidr: str, local_cidr: str) -> Route:
    """How the pod's request goes out (pure apart from reading the hosts file)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http",) or not parts.hostname:
        raise errors.CurlUsage(f"unsupported URL {url!r} (http://HOST[:PORT]/PATH)")
    pod_ip = str((pod.get("status") or {}).get("podIP") or "")
    if not pod_ip:
        raise errors.CurlUsage(f'pod "{podspec.meta(pod).get("name")}" has no IP yet')
    authority = parts.netloc
    if podspec.has_sidecar(pod):
        local = addresses.local_address(pod_ip, pod_cidr, local_cidr)
        return Route(url, f"http://{local}:{SIDECAR_OUTBOUND_PORT}", local, authority)
    table = resolve.parse_hosts(hosts_file.read_text()) if hosts_file.exists() else {}
    ns = str(podspec.meta(pod).get("namespace") or "default")
    ip = resolve.lookup(parts.hostname, table, ns) or parts.hostname
    netloc = f"{ip}:{parts.port}" if parts.port else ip
    return Route(urlunsplit(parts._replace(netloc=netloc)), None, pod_ip, authority)


async def send(route: Route, curl: Curl) -> Result:
    connector = aiohttp.TCPConnector(local_addr=(route.source, 0), force_close=True)
    timeout = aiohttp.ClientTimeout(total=curl.max_time)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True) as session,
            session.request(
                curl.method,
                route.target_url,
                proxy=route.proxy,
                headers={
                    "Host": route.host_header,
                    "User-Agent": "curl/8.16.0 (meshplane lab)",
                    "Accept": "*/*",
                },
                allow_redirects=False,
            ) as resp,
        ):
            body = await resp.read()
            head = f"HTTP/{_version(resp.version)} {resp.status} {resp.reason}\n" + "".join(
                f"{k}: {v}\n" for k, v in resp.headers.items()
            )
            if curl.fail and resp.status >= 400:
                return Result(22, b"", head, f"The requested URL returned error: {resp.status}")
            return Result(0, body, head)
    except TimeoutError:
        return Result(28, error=f"Operation timed out after {curl.max_time:g} seconds")
    except aiohttp.ClientConnectorError as e:
        via = f" via {route.proxy}" if route.proxy else ""
        return Result(7, error=f"Failed to connect to {route.host_header}{via}: {e.strerror or e}")
    except (aiohttp.ClientError, OSError) as e:
        return Result(56, error=f"Failure when receiving data from the peer: {e}")


def _version(v: Any) -> str:
    return f"{v.major}.{v.minor}" if v is not None else "1.1"


async def run(pod: dict[str, Any], curl: Curl, hosts_file: Path, pod_cidr: str, local_cidr: str) -> Result:
    try:
        route = await asyncio.to_thread(plan, pod, curl.url, hosts_file, pod_cidr, local_cidr)
    except errors.CurlUsage as e:
        return Result(3, error=str(e))
    return await send(route, curl)
