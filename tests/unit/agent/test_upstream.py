from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshplane.agent import errors, upstream


def _up(tmp_path: Path, address: str = "istiod.istio-system.svc:15012") -> upstream.Upstream:
    return upstream.Upstream(
        address=address,
        cluster_id="cluster2",
        token_path=tmp_path / "token",
        root_cert_path=tmp_path / "root-cert.pem",
        hosts_path=tmp_path / "hosts",
    )


def test_hosts_file_lookup(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "# comment\n127.0.0.1 localhost\nnot-an-ip istiod.istio-system.svc\n"
        "127.0.3.1 istiod.istio-system.svc istiod.istio-system.svc.cluster.local # ew gateway\n"
    )
    assert upstream.lookup_hosts(hosts, "istiod.istio-system.svc") == "127.0.3.1"
    assert upstream.lookup_hosts(hosts, "istiod.istio-system.svc.cluster.local") == "127.0.3.1"
    assert upstream.lookup_hosts(hosts, "missing") is None
    assert upstream.lookup_hosts(tmp_path / "absent", "x") is None


def test_grpc_target(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("127.0.3.1 istiod.istio-system.svc\n::1 six\n")
    assert upstream.grpc_target(_up(tmp_path)) == "ipv4:127.0.3.1:15012"
    assert upstream.grpc_target(_up(tmp_path, "six:15012")) == "ipv6:[::1]:15012"
    assert upstream.grpc_target(_up(tmp_path, "10.1.2.3:15010")) == "ipv4:10.1.2.3:15010"
    assert upstream.grpc_target(_up(tmp_path, "elsewhere.example:15012")) == "dns:///elsewhere.example:15012"


def test_token_is_read_fresh_each_time(tmp_path: Path) -> None:
    up = _up(tmp_path)
    up.token_path.write_text("first-token\n")
    assert dict(upstream.call_metadata(up)) == {
        "authorization": "Bearer first-token",
        "clusterid": "cluster2",
    }
    up.token_path.write_text("second-token")
    assert dict(upstream.call_metadata(up))["authorization"] == "Bearer second-token"


@pytest.mark.parametrize("content", [b"", b"  \n", b"two tokens", b"\xff\xfe", b"x" * 70000])
def test_bad_tokens_are_refused(tmp_path: Path, content: bytes) -> None:
    up = _up(tmp_path)
    up.token_path.write_bytes(content)
    with pytest.raises(errors.CredentialError, match="token file"):
        upstream.read_token(up.token_path)


def test_missing_token_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(errors.CredentialError, match=str(tmp_path / "token")):
        upstream.read_token(tmp_path / "token")


@given(st.binary(max_size=200))
def test_any_token_file_gives_token_or_credential_error(content: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t"
        p.write_bytes(content)
        try:
            token = upstream.read_token(p)
        except errors.CredentialError:
            return
        assert token and "\n" not in token and " " not in token


def test_root_cert_must_be_pem(tmp_path: Path) -> None:
    up = _up(tmp_path)
    with pytest.raises(errors.CredentialError, match="root cert"):
        upstream.dial(up)
    up.root_cert_path.write_text("not a cert")
    with pytest.raises(errors.CredentialError, match="no PEM certificate"):
        upstream.dial(up)
