from typing import Any

import pytest

from meshplane.kube import client, kubeconfig


def doc(current: str | None = None, **sections: list[tuple[str, str]]) -> dict[str, Any]:
    """A kubeconfig whose entries are (name, marker) pairs; the marker says which file won."""
    out: dict[str, Any] = {
        section: [{"name": n, section[:-1]: {"from": m}} for n, m in sections.get(section, [])]
        for section in kubeconfig.SECTIONS
    }
    if current is not None:
        out["current-context"] = current
    return out


# (documents in KUBECONFIG order, explicit current, want {section: [(name, marker)]}, want current)
MERGE_CASES: list[tuple[list[dict[str, Any]], str | None, dict[str, list[tuple[str, str]]], str | None]] = [
    ([], None, {}, None),
    ([doc("a", clusters=[("a", "1")])], None, {"clusters": [("a", "1")]}, "a"),
    (  # the first definition of a name wins, in every section
        [
            doc("a", clusters=[("a", "1")], users=[("u", "1")], contexts=[("a", "1")]),
            doc(
                "b",
                clusters=[("a", "2"), ("b", "2")],
                users=[("u", "2")],
                contexts=[("a", "2"), ("b", "2")],
            ),
        ],
        None,
        {
            "clusters": [("a", "1"), ("b", "2")],
            "users": [("u", "1")],
            "contexts": [("a", "1"), ("b", "2")],
        },
        "a",
    ),
    (  # current-context from the first file that sets one
        [doc(None, clusters=[("a", "1")]), doc("", users=[("u", "2")]), doc("c"), doc("d")],
        None,
        {"clusters": [("a", "1")], "users": [("u", "2")]},
        "c",
    ),
    ([doc("a"), doc("b")], "b", {}, "b"),  # an explicit current context wins
    ([doc(None), {"clusters": None, "users": ["junk"]}], None, {}, None),  # no current; junk skipped
]


@pytest.mark.parametrize(("docs", "current", "want", "want_current"), MERGE_CASES)
def test_merge_follows_kubectl(
    docs: list[dict[str, Any]],
    current: str | None,
    want: dict[str, list[tuple[str, str]]],
    want_current: str | None,
) -> None:
    merged = kubeconfig.merge(docs, current)
    for section in kubeconfig.SECTIONS:
        got = [(e["name"], e[section[:-1]]["from"]) for e in merged[section]]
        assert got == want.get(section, []), section
    assert merged.get("current-context") == want_current
    assert (merged["apiVersion"], merged["kind"]) == ("v1", "Config")


# (name, server, base64 CA, token)
BUILD_CASES = [
    ("cluster1", "https://127.0.0.1:6443", "Y2E=", "t0ken"),
    ("istio-remote-0f3a", "https://10.0.0.1", "", "eyJhbGciOi.x.y"),
]


@pytest.mark.parametrize(("name", "server", "ca_data", "token"), BUILD_CASES)
def test_build_names_everything_after_the_cluster(name: str, server: str, ca_data: str, token: str) -> None:
    cfg = kubeconfig.build(name, server, ca_data, token)
    assert cfg["current-context"] == name
    cluster = {"server": server, "certificate-authority-data": ca_data}
    assert cfg["clusters"] == [{"name": name, "cluster": cluster}]
    assert cfg["users"] == [{"name": name, "user": {"token": token}}]
    assert cfg["contexts"] == [{"name": name, "context": {"cluster": name, "user": name}}]
    single = client.single_config(cfg, None)
    assert (single.context_name, single.cluster.server, single.user.token) == (name, server, token)
