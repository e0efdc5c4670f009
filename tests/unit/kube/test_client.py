import base64
from pathlib import Path

import pytest
import yaml

from meshplane.kube import client, errors
from tests.support import secpki


def ca_pem() -> str:
    return secpki.CA("test-ca").pem.decode()


def kubeconfig(name: str, server: str = "https://127.0.0.1:6443", **user: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem().encode()).decode(),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": user or {"token": "t0ken"}}],
    }


def test_kubeconfig_list_merges_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text(yaml.safe_dump(kubeconfig("cluster1")))
    b.write_text(yaml.safe_dump(kubeconfig("cluster2", server="https://127.0.0.2:6443")))
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    assert client.load_file_config(None, "cluster2").cluster.server == "https://127.0.0.2:6443"
    assert client.load_file_config(None, None).context_name == "cluster1"
    with pytest.raises(errors.KubeconfigError, match="nope"):
        client.load_file_config(None, "nope")


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.KubeconfigError, match="no kubeconfig found"):
        client.load_file_config(str(tmp_path / "missing"), None)


def test_untrusted_kubeconfig_accepts_token_config() -> None:
    cfg = client.parse_untrusted_kubeconfig(yaml.safe_dump(kubeconfig("cluster2")), source="s")
    assert cfg.context_name == "cluster2"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["users"][0]["user"].update({"exec": {"command": "rm"}}), "'exec' is not allowed"),
        (lambda d: d["users"][0]["user"].update({"tokenFile": "/etc/passwd"}), "'tokenFile' is not allowed"),
        (
            lambda d: d["clusters"][0]["cluster"].update({"certificate-authority": "/x"}),
            "'certificate-authority'",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update({"certificate-authority-data": "bm90IGEgY2E="}),
            "not a valid PEM",
        ),
        (lambda d: d["clusters"][0]["cluster"].update({"server": "127.0.0.1:6443"}), "not an http"),
        (lambda d: d.update({"contexts": []}), "no contexts"),
        (lambda d: d.update({"current-context": "other"}), "other"),
    ],
)
def test_untrusted_kubeconfig_rejections_name_the_problem(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = kubeconfig("cluster2")
    mutate(doc)
    with pytest.raises(errors.KubeconfigError, match=message):
        client.parse_untrusted_kubeconfig(yaml.safe_dump(doc), source="secret x")


def test_untrusted_kubeconfig_rejects_garbage() -> None:
    for text in ("::: not yaml", "- a list", ""):
        with pytest.raises(errors.KubeconfigError):
            client.parse_untrusted_kubeconfig(text, source="s")


def test_exec_allowed_when_listed() -> None:
    doc = kubeconfig("c")
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "true"}}
    cfg = client.parse_untrusted_kubeconfig(yaml.safe_dump(doc), source="s", allowed_options=["exec"])
    assert cfg.user is not None and cfg.user.exec is not None
