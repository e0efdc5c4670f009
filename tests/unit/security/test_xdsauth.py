"""XDS_AUTH: authenticate the stream, then match the identity to the proxy's namespace and SA."""

from __future__ import annotations

import grpc
import pytest

from meshplane.model import proxy as proxy_mod
from meshplane.model.ids import ClusterId, ProxyId
from meshplane.security import authenticate, errors, xdsauth
from tests.support import fakereview


def _proxy(ns: str = "sample", sa: str = "sleep", md: dict[str, str] | None = None) -> proxy_mod.Proxy:
    return proxy_mod.Proxy(
        id=ProxyId(f"sidecar~127.0.1.5~sleep-1.{ns}~{ns}.svc.cluster.local"),
        type=proxy_mod.ProxyType.SIDECAR,
        ip_addresses=("127.0.1.5",),
        pod_name="sleep-1",
        namespace=ns,
        dns_domain=f"{ns}.svc.cluster.local",
        cluster_id=ClusterId("cluster1"),
        service_account=sa,
        metadata=md or {},
    )


@pytest.fixture
def setup() -> tuple[xdsauth.XdsAuthenticator, fakereview.FakeReviewer]:
    reviewer = fakereview.FakeReviewer()
    chain = authenticate.Chain(
        [authenticate.KubeJwtAuthenticator(ClusterId("cluster1"), reviewer, fakereview.ReviewerRegistry())]
    )
    return xdsauth.XdsAuthenticator(chain), reviewer


def _req(token: str) -> authenticate.AuthRequest:
    return authenticate.AuthRequest({"authorization": (f"Bearer {token}",), "clusterid": ("cluster1",)})


async def test_matching_identity_accepted(setup) -> None:  # type: ignore[no-untyped-def]
    auth, reviewer = setup
    token = reviewer.issue("sample", "sleep")
    caller = await auth.authorize(_req(token), _proxy())
    assert caller.identities == ("spiffe://cluster.local/ns/sample/sa/sleep",)


@pytest.mark.parametrize(
    ("proxy", "text"),
    [
        (_proxy(sa="helloworld"), "matched sample/helloworld"),
        (_proxy(ns="other"), "matched other/sleep"),
        (_proxy(md={"NAMESPACE": "kube-system"}), "matched kube-system,sample/sleep"),
    ],
)
async def test_mismatch_is_permission_denied(setup, proxy: proxy_mod.Proxy, text: str) -> None:  # type: ignore[no-untyped-def]
    auth, reviewer = setup
    token = reviewer.issue("sample", "sleep")
    with pytest.raises(errors.PermissionDenied, match=text) as ei:
        await auth.authorize(_req(token), proxy)
    assert xdsauth.status_code(ei.value) == grpc.StatusCode.PERMISSION_DENIED
    assert token not in str(ei.value)


async def test_unauthenticated(setup) -> None:  # type: ignore[no-untyped-def]
    auth, _ = setup
    with pytest.raises(errors.AuthenticationError) as ei:
        await auth.authorize(_req(fakereview.jwt_shaped()), _proxy())
    assert xdsauth.status_code(ei.value) == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(errors.AuthenticationError, match="no bearer token"):
        await auth.authorize(authenticate.AuthRequest({}), _proxy())


async def test_empty_proxy_fields_are_not_checked_and_check_can_be_off(setup) -> None:  # type: ignore[no-untyped-def]
    auth, reviewer = setup
    token = reviewer.issue("sample", "sleep")
    assert await auth.authorize(_req(token), _proxy(sa="")) is not None
    off = xdsauth.XdsAuthenticator(auth._chain, identity_check=False)
    assert await off.authorize(_req(token), _proxy(ns="other", sa="x")) is not None


class _AbortingContext:
    """The two ServicerContext methods the hook uses."""

    def __init__(self, md: tuple[tuple[str, str], ...]) -> None:
        self._md = md
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._md

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise RuntimeError("aborted")


async def test_hook_aborts_with_status(setup) -> None:  # type: ignore[no-untyped-def]
    auth, reviewer = setup
    token = reviewer.issue("sample", "sleep")
    ok = _AbortingContext((("authorization", f"Bearer {token}"),))
    await auth.hook(ok, _proxy())  # type: ignore[arg-type]
    assert ok.aborted is None
    bad = _AbortingContext((("authorization", f"Bearer {token}"),))
    with pytest.raises(RuntimeError, match="aborted"):
        await auth.hook(bad, _proxy(sa="other"))  # type: ignore[arg-type]
    assert bad.aborted is not None and bad.aborted[0] == grpc.StatusCode.PERMISSION_DENIED
