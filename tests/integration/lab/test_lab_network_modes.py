"""Issue 10: where namespaces cannot be made, the lab says so and falls back to loopback mode.

The process under test runs as an unprivileged user (uid 65534, no CAP_NET_ADMIN), as a user
without root would; it keeps only the file-reading capabilities it needs to run this checkout's
Python under /root (which a real non-root user's own install would not need)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import labnode, podnet

FILES = "+dac_read_search,+dac_override"


def unprivileged(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    podnet.require_root()  # only root can drop to another user; setpriv is util-linux's (essential)
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", f"--inh-caps={FILES}",
           f"--ambient-caps={FILES}", "--", sys.executable, *argv]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, env=labnode.env(), cwd=cwd, timeout=60, check=False
    )


def test_without_net_admin_netns_is_refused_and_auto_names_why(tmp_path: Path) -> None:
    up = ("-m", "meshplane", "lab", "up", "--dir", str(tmp_path / "lab"), "--network", "netns")
    refused = unprivileged(*up, cwd=tmp_path)
    assert refused.returncode == 1
    assert "cannot give pods their own network: no CAP_NET_ADMIN" in refused.stderr
    assert not (tmp_path / "lab" / "network.json").exists()  # nothing made

    probe = "from meshplane.lab import launcher as L; print(L.choose_mode('auto', None, L.netns_support))"
    auto = unprivileged("-c", probe, cwd=tmp_path)
    assert auto.returncode == 0, auto.stderr
    assert auto.stdout.strip().startswith("('loopback', 'no CAP_NET_ADMIN")
