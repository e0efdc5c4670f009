"""The CLI ends every MeshplaneError the same way: `Error: <message>` on stderr, exit code 1, and
its messages stay on one line when stderr is not a terminal, however long they are."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshplane import errors
from meshplane.cli import common, main

REPO = Path(__file__).resolve().parents[3]


def _meshplane(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-m", "meshplane", *args],
        cwd=cwd,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_meshplane_error_prints_its_message_and_exits_1() -> None:
    main._register()
    r = CliRunner().invoke(main.app, ["proxy-status", "--istiod-url", "ftp://x"])
    assert r.exit_code == 1
    assert r.stderr == "Error: --istiod-url 'ftp://x': want http://HOST:PORT\n"
    assert not isinstance(r.exception, errors.MeshplaneError)  # handled, not a traceback


def test_console_never_wraps_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    message = "Error: " + " ".join(["a-rather-long-word"] * 20)
    common.console(stderr=True).print(message, markup=False)
    assert buf.getvalue() == message + "\n"


def test_install_errors_stay_on_one_line_from_a_deep_directory(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*[f"a-long-directory-name-{i:02d}" for i in range(8)])
    deep.mkdir(parents=True)
    (deep / "bad.yaml").write_text("spec: [\n")
    r = _meshplane("install", "-y", "-f", str(deep / "bad.yaml"), "--no-wait", cwd=deep)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert "nothing was applied" in lines[0]
    assert any(line.strip().startswith(str(deep)) and "invalid YAML" in line for line in lines), r.stderr
