"""A pod root as the lab lays it out: projected token, istio-ca-root-cert, hosts file.

The agent resolves its in-pod paths under MESHPLANE_POD_ROOT (runtime/podroot.py); tests set it
in the agent's environment (subprocess) or with monkeypatch (in-process).
"""

from __future__ import annotations

from pathlib import Path

from meshplane.agent import config


def write(root: Path, *, token: str, root_pem: str, hosts: dict[str, str]) -> Path:
    """Populate `root` like a lab pod folder; returns it."""
    token_file = root / config.TOKEN_PATH.lstrip("/")
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token)
    root_file = root / config.ROOT_CERT_PATH.lstrip("/")
    root_file.parent.mkdir(parents=True, exist_ok=True)
    root_file.write_text(root_pem)
    hosts_file = root / config.HOSTS_PATH.lstrip("/")
    hosts_file.parent.mkdir(parents=True, exist_ok=True)
    hosts_file.write_text("".join(f"{ip} {name}\n" for name, ip in hosts.items()))
    return root


def rotate_token(root: Path, token: str) -> None:
    """What the kubelet does when it refreshes the projected token: replace the file."""
    token_file = root / config.TOKEN_PATH.lstrip("/")
    tmp = token_file.with_suffix(".new")
    tmp.write_text(token)
    tmp.replace(token_file)
