"""agent.envoy: the Envoy command line."""

import shutil
from pathlib import Path

from meshplane.agent import envoy


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
