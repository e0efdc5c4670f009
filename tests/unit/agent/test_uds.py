"""agent.uds: socket paths, file or abstract."""

from pathlib import Path

from meshplane.agent import uds


def test_short_socket_path_is_a_file(tmp_path: Path) -> None:
    a = uds.address(Path("/tmp/x/XDS"))
    assert a.grpc_target == "unix:/tmp/x/XDS"
    assert a.envoy_pipe == "/tmp/x/XDS"
    assert a.socket_path == "/tmp/x/XDS"


def test_long_socket_path_becomes_abstract_and_unique() -> None:
    long_dir = Path("/tmp") / ("d" * 120)
    a = uds.address(long_dir / "pod-a" / "XDS")
    b = uds.address(long_dir / "pod-b" / "XDS")
    assert a.abstract and a.abstract != b.abstract
    assert a.grpc_target == f"unix-abstract:{a.abstract}"
    assert a.envoy_pipe == f"@{a.abstract}"
    assert a.socket_path == f"\0{a.abstract}"
