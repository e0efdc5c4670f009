"""The CLI ends every MeshplaneError the same way: `Error: <message>` on stderr, exit code 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from meshplane import errors
from meshplane.cli import main

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
