import shutil
from pathlib import Path

from meshplane.agent import admin, envoy, uds


def test_parse_stats() -> None:
    text = (
        "cluster_manager.cds.update_success: 3\n"
        "listener_manager.lds.update_success: 0\n"
        "server.state: 0\n"
        "cluster.x.upstream_rq_time: P0(nan,1) P25(nan,2)\n"
        "weird line\n"
    )
    assert admin.parse_stats(text) == {
        "cluster_manager.cds.update_success": 3,
        "listener_manager.lds.update_success": 0,
        "server.state": 0,
    }


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


def test_envoy_argv_runs_several_envoys_side_by_side(tmp_path: Path) -> None:
    argv = envoy.EnvoyOptions(config_path=tmp_path / "b.json", binary="/bin/envoy", concurrency=1).argv()
    start = argv.index("/bin/envoy")
    assert argv[start : start + 3] == ["/bin/envoy", "-c", str(tmp_path / "b.json")]
    assert argv[:start] in ([], [shutil.which("setpriv"), "--pdeathsig", "TERM", "--"])
    assert "--disable-hot-restart" in argv
    assert argv[argv.index("--log-level") + 1] == "warning"
    assert argv[argv.index("--concurrency") + 1] == "1"


def test_envoy_component_log_level(tmp_path: Path) -> None:
    argv = envoy.EnvoyOptions(
        config_path=tmp_path / "b.json", binary="e", component_log_level="misc:error"
    ).argv()
    assert argv[argv.index("--component-log-level") + 1] == "misc:error"
    assert (
        "--component-log-level" not in envoy.EnvoyOptions(config_path=tmp_path / "b.json", binary="e").argv()
    )
