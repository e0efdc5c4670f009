"""lab.execreq: the curl subset `lab exec` accepts and how a pod's request is routed."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.lab import errors as lab_errors
from meshplane.lab import execreq


def test_parse_curl() -> None:
    c = execreq.parse_curl(["curl", "-sS", "helloworld.sample:5000/hello"])
    assert (c.url, c.fail, c.method) == ("http://helloworld.sample:5000/hello", False, "GET")
    c = execreq.parse_curl(["curl", "-sSf", "-X", "post", "-m", "3", "http://a/b"])
    assert (c.fail, c.method, c.max_time) == (True, "POST", 3.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["wget", "x"], "only `curl"),
        (["curl"], "no URL"),
        (["curl", "-k", "https://x"], "unsupported curl option -k"),
        (["curl", "--data", "x", "u"], "unsupported curl option --data"),
        (["curl", "a", "b"], "only one URL"),
        (["curl", "-m"], "needs a value"),
        (["curl", "-m", "soon", "u"], "not a number"),
    ],
)
def test_bad_commands(argv: list[str], message: str) -> None:
    with pytest.raises(lab_errors.CurlUsage, match=message):
        execreq.parse_curl(argv)


def pod(sidecar: bool) -> dict[str, object]:
    containers = [{"name": "curl"}] + ([{"name": "istio-proxy"}] if sidecar else [])
    return {
        "metadata": {"name": "curl-1", "namespace": "sample"},
        "spec": {"containers": containers},
        "status": {"podIP": "127.0.2.5"},
    }


def test_routes(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.20.9 helloworld.sample.svc.cluster.local helloworld.sample.svc helloworld.sample\n"
    )
    url = "http://helloworld:5000/hello"
    direct = execreq.plan(pod(False), url, hosts, "127.0.2.0/24", "127.1.2.0/24")
    assert direct == execreq.Route("http://127.0.20.9:5000/hello", None, "127.0.2.5", "helloworld:5000")
    via = execreq.plan(pod(True), url, hosts, "127.0.2.0/24", "127.1.2.0/24")
    assert via == execreq.Route(url, "http://127.1.2.5:15001", "127.1.2.5", "helloworld:5000")
    with pytest.raises(lab_errors.CurlUsage, match="unsupported URL"):
        execreq.plan(pod(False), "https://x/", hosts, "127.0.2.0/24", "127.1.2.0/24")
