"""Security policy end to end on the lab (netns mode: every pod in its own network namespace,
Istio's capture, real Envoy): the guide's mesh of two dev clusters, policies applied with the real
`kubectl` to the primary, observed as a user observes them: plaintext refused or answered, 200 or
403 from real curl in the pods. One lab for the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshplane.lab.network import plan as netplan
from tests.e2e.test_lab_guide import Lab, demo, leftovers
from tests.integration.lab.test_lab_cli import lab
from tests.support import clusters, labnode, podnet
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.envoy]
HELLO = "http://helloworld.sample:5000"

STRICT_SAMPLE = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: sample}
spec: {mtls: {mode: STRICT}}
"""
ALLOW_SLEEP = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: sample}
spec:
  selector: {matchLabels: {app: helloworld}}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/sample/sa/sleep"]}
"""
DENY_ADMIN = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: sample}
spec:
  selector: {matchLabels: {app: helloworld}}
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/admin", "/admin/*"]}
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    podnet.require_root()
    base = labnode.address_base()
    d = tmp_path_factory.mktemp("e2e-policy") / "lab"
    lab_id = ""
    try:
        run = demo(d, base, "netns")
        if (d / "network.json").exists():
            lab_id = netplan.load(d / "network.json").lab_id
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
        yield Lab(d, base, run.stdout, "netns")
    finally:
        down = lab("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    if lab_id:
        assert leftovers(lab_id) == []


def _status(m: Lab, context: str, app: str, container: str, url: str) -> str:
    """The HTTP status the real curl in `container` of `app`'s pod gets ('000' when refused)."""
    argv = ["curl", "-sS", "--path-as-is", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", url]
    done = m.in_pod(m.pod(context, "sample", app), container, argv)
    return done.stdout.strip() or "000"


def _apply(m: Lab, text: str) -> None:
    clusters.kubectl(m.kubeconfig, "--context", "cluster1", "apply", "-f", "-", input_text=text)


def test_namespace_strict_refuses_plaintext_and_sidecars_keep_talking(mesh: Lab) -> None:
    hw = mesh.pod("cluster1", "sample", "helloworld")
    direct = f"http://{hw['status']['podIP']}:5000/hello"  # type: ignore[index]
    # sleep's istio-proxy container (uid 1337) is not captured: a plaintext client with no identity
    assert wait_until(lambda: _status(mesh, "cluster1", "sleep", "istio-proxy", direct) == "200", 30)
    _apply(mesh, STRICT_SAMPLE)
    assert wait_until(lambda: _status(mesh, "cluster1", "sleep", "istio-proxy", direct) == "000", 30)
    # the app's own traffic goes through its sidecar: mTLS, answered from both clusters
    assert wait_until(lambda: set(mesh.hello("cluster2", 10)) == {"v1", "v2"}, 30)


def test_cluster2_sleep_is_allowed_another_identity_gets_403_deny_wins(mesh: Lab) -> None:
    _apply(mesh, ALLOW_SLEEP)
    # helloworld's own container calls as cluster1's `default` service account: 403 (from v1 or v2)
    assert wait_until(
        lambda: _status(mesh, "cluster1", "helloworld", "helloworld", f"{HELLO}/hello") == "403", 30
    )
    # cluster2's sleep (identity cluster.local/ns/sample/sa/sleep, issued for cluster2) is let in
    assert all(_status(mesh, "cluster2", "sleep", "sleep", f"{HELLO}/hello") == "200" for _ in range(6))
    _apply(mesh, DENY_ADMIN)
    # cluster2's sleep balances over v1 (cluster1) and v2 (cluster2); a connection its sidecar pooled
    # before the DENY is served once more by the old filter chain, then drained: wait until every
    # spelling is refused in one round
    spellings = ("/admin", "/hello/../admin", "/%61dmin")
    assert wait_until(
        lambda: (
            [_status(mesh, "cluster2", "sleep", "sleep", f"{HELLO}{p}") for p in spellings] == ["403"] * 3
        ),
        30,
    )
    for spelled in spellings:  # and stays refused, whichever version answers
        assert [_status(mesh, "cluster2", "sleep", "sleep", f"{HELLO}{spelled}") for _ in range(4)] == [
            "403"
        ] * 4
    assert _status(mesh, "cluster2", "sleep", "sleep", f"{HELLO}/hello") == "200"
