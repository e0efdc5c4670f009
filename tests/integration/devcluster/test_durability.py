"""`meshplane devcluster serve` as a process: ready line, clean stop, and kill -9 durability."""

from __future__ import annotations

import base64
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clusters, rawhttp, wait


@pytest.fixture
def proc_factory(tmp_path: Path) -> Iterator[list[clusters.ClusterProcess]]:
    started: list[clusters.ClusterProcess] = []
    try:
        yield started
    finally:
        for p in started:
            p.kill()


def start(
    started: list[clusters.ClusterProcess], tmp_path: Path, data: bool = True, port: int = 0, *extra: str
) -> clusters.ClusterProcess:
    p = clusters.ClusterProcess("dur", tmp_path / "data" if data else None, tmp_path, *extra)
    p.port = port
    started.append(p)
    return p.start()


def api_for(p: clusters.ClusterProcess) -> rawhttp.Api:
    cfg = p.kubeconfig
    ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
    return rawhttp.Api(p.url, ca, cfg["users"][0]["user"]["token"])


def cm_path(ns: str = "default") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def test_ready_line_kubeconfig_clean_sigterm_and_memory_only_state(
    proc_factory: list[clusters.ClusterProcess], tmp_path: Path
) -> None:
    p = start(proc_factory, tmp_path, data=False)
    assert p.url.startswith("https://127.0.0.1:")
    cfg = p.kubeconfig
    assert cfg["current-context"] == "dur" and cfg["clusters"][0]["cluster"]["server"] == p.url
    assert stat.S_IMODE(p.kubeconfig_path.stat().st_mode) == 0o600
    out = clusters.kubectl(p.kubeconfig_path, "get", "ns", "default", "-o", "name").stdout.strip()
    assert out == "namespace/default"
    api_for(p).request("POST", cm_path(), {"metadata": {"name": "volatile"}})
    assert p.kill(signal.SIGTERM) == 0
    assert "dev cluster stopped" in p.log()
    q = start(proc_factory, tmp_path, data=False)  # without --data-dir nothing survives
    assert api_for(q).get(cm_path() + "/volatile").status == 404
    assert not (tmp_path / "data").exists()


def test_kill9_keeps_every_acknowledged_write(
    proc_factory: list[clusters.ClusterProcess], tmp_path: Path
) -> None:
    p = start(proc_factory, tmp_path)
    api = api_for(p)
    acked: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            try:
                r = api.request(
                    "POST", cm_path(), {"metadata": {"name": f"w{i}"}, "data": {"i": str(i)}}, timeout=5
                )
            except OSError:
                return
            if r.status == 201:
                acked.append(r.json()["metadata"]["resourceVersion"])
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    wait.wait_until(lambda: len(acked) >= 30, timeout=30, what="30 acknowledged writes")
    p.kill()  # SIGKILL while the writer is still writing
    stop.set()
    t.join(10)
    data = tmp_path / "data"
    for name in ("store.db", "ca.key", "admin-token"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    q = start(proc_factory, tmp_path, port=p.port)
    api2 = api_for(q)
    assert api2.token == api.token  # the same kubeconfig keeps working
    items = api2.get(cm_path()).json()["items"]
    stored = {i["metadata"]["resourceVersion"] for i in items}
    assert set(acked) <= stored, f"lost {sorted(set(acked) - stored)[:5]}"
    top = max(int(rv) for rv in stored)
    r = api2.request("POST", cm_path(), {"metadata": {"name": "after"}})
    assert int(r.json()["metadata"]["resourceVersion"]) > top
    out = clusters.kubectl(p.kubeconfig_path, "get", "cm", "after", "-o", "name").stdout.strip()
    assert out == "configmap/after"


def test_watch_resumes_across_restart_or_gets_410(
    proc_factory: list[clusters.ClusterProcess], tmp_path: Path
) -> None:
    p = start(proc_factory, tmp_path)
    api = api_for(p)
    api.request("POST", cm_path(), {"metadata": {"name": "a"}})
    older = api.get(cm_path()).json()["metadata"]["resourceVersion"]
    api.request("POST", cm_path(), {"metadata": {"name": "b"}})
    last = api.get(cm_path()).json()["metadata"]["resourceVersion"]
    p.kill()
    q = start(proc_factory, tmp_path, port=p.port)
    api = api_for(q)
    api.request("POST", cm_path(), {"metadata": {"name": "c"}})
    w = api.watch(cm_path() + f"?watch=1&resourceVersion={last}")
    try:
        ev = w.next()
    finally:
        w.close()
    assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "c")
    w = api.watch(cm_path() + f"?watch=1&resourceVersion={older}")
    try:
        ev = w.next()
    finally:
        w.close()
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410


def test_bad_flags_fail_clearly() -> None:
    from typer.testing import CliRunner

    from meshplane.cli import main

    main._register()
    r = CliRunner().invoke(main.app, ["devcluster", "serve", "--name", "x", "--service-cidr", "not-a-cidr"])
    assert r.exit_code == 1 and "invalid service CIDR" in r.output
    r = CliRunner().invoke(main.app, ["devcluster", "serve", "--name", "x", "--port", "70000"])
    assert r.exit_code == 1 and "invalid port" in r.output


def test_in_process_restart_keeps_port_credentials_data_and_crds(tmp_path: Path) -> None:
    c = clusters.ThreadedCluster(name="inproc", data_dir=tmp_path / "d").start()
    try:
        dc = c.cluster
        url, token, ca = dc.url, dc.admin_token, dc.ca_pem
        api = rawhttp.for_cluster(dc)
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.org"},
            "spec": {
                "group": "example.org",
                "scope": "Cluster",
                "names": {"plural": "things", "kind": "Thing"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        assert (
            api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).status == 201
        )
        thing = {
            "apiVersion": "example.org/v1",
            "kind": "Thing",
            "metadata": {"name": "t1"},
            "spec": {"a": 1},
        }
        assert api.request("POST", "/apis/example.org/v1/things", thing).status == 201
        c.stop()
        c.call(dc.start)
        assert (dc.url, dc.admin_token, dc.ca_pem) == (url, token, ca)
        got = rawhttp.for_cluster(dc).get("/apis/example.org/v1/things/t1")
        assert got.status == 200 and got.json()["spec"] == {"a": 1}
    finally:
        c.close()
