"""lab.volumes: atomic volume contents, sources, tokens, and mounts in a container's root."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from meshplane.lab import errors
from meshplane.lab.node import volumes
from tests.support import strategies

CONFIGMAPS = {("ns", "istio-ca-root-cert"): {"data": {"root-cert.pem": "PEM"}}}
SECRETS = {("ns", "certs"): {"data": {"key.pem": base64.b64encode(b"KEY").decode()}}}


def sources() -> volumes.Sources:
    return volumes.Sources(lambda ns, n: CONFIGMAPS.get((ns, n)), lambda ns, n: SECRETS.get((ns, n)))


def pod(*vols: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1"}},
        "spec": {"volumes": list(vols)},
    }


def test_atomic_write_swaps_contents_through_dot_data(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert volumes.atomic_write(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_bytes() == b"1" and (target / "dir" / "b").read_bytes() == b"2"
    assert os.readlink(target / "a") == "..data/a"
    first = os.readlink(target / "..data")
    assert not volumes.atomic_write(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert volumes.atomic_write(target, {"a": (b"changed", 0o644)})
    assert (target / "a").read_bytes() == b"changed"
    assert not (target / "dir").exists() and not (target / first).exists()
    with pytest.raises(errors.PodSpecError, match="must be relative"):
        volumes.atomic_write(target, {"../escape": (b"x", 0o644)})


def test_render_sources() -> None:
    out = volumes.render(
        pod(
            {"name": "scratch", "emptyDir": {}},
            {"name": "root", "configMap": {"name": "istio-ca-root-cert"}},
            {
                "name": "keys",
                "secret": {"secretName": "certs", "items": [{"key": "key.pem", "path": "k", "mode": 0o400}]},
            },
            {"name": "opt", "secret": {"secretName": "missing", "optional": True}},
            {
                "name": "info",
                "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
            },
        ),
        sources(),
    )
    assert out == {
        "scratch": None,
        "root": {"root-cert.pem": (b"PEM", 0o644)},
        "keys": {"k": (b"KEY", 0o400)},
        "opt": {},
        "info": {"labels": (b'a="1"', 0o644)},
    }


def test_missing_sources_wait_and_unsupported_kinds_fail() -> None:
    with pytest.raises(errors.VolumeNotReady, match='configmap "gone" not found'):
        volumes.render(pod({"name": "v", "configMap": {"name": "gone"}}), sources())
    with pytest.raises(errors.PodSpecError, match="hostPath is not supported"):
        volumes.render(pod({"name": "v", "hostPath": {"path": "/etc"}}), sources())


def test_projected_token_comes_from_the_pods_token_cache() -> None:
    p = pod(
        {
            "name": "istio-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "path": "istio-token",
                            "audience": "istio-ca",
                            "expirationSeconds": 43200,
                        }
                    }
                ]
            },
        }
    )
    (want,) = volumes.token_wants(p)
    assert (want.volume, want.path, want.audience, want.seconds) == (
        "istio-token",
        "istio-token",
        "istio-ca",
        43200,
    )
    src = sources()
    with pytest.raises(errors.VolumeNotReady, match="token"):
        volumes.render(p, src)
    src.tokens[("istio-token", "istio-token", "istio-ca", 43200)] = volumes.Token(
        "jwt", 1000.0, 1000.0 + 43200
    )
    assert volumes.render(p, src) == {"istio-token": {"istio-token": (b"jwt", 0o600)}}
    tok = src.tokens[("istio-token", "istio-token", "istio-ca", 43200)]
    assert not tok.due(1000.0 + 0.79 * 43200) and tok.due(1000.0 + 0.8 * 43200)


def test_mounts_appear_at_their_paths_in_the_container_root(tmp_path: Path) -> None:
    paths = volumes.PodPaths(tmp_path / "pod")
    volumes.prepare(paths, "uid-1")
    volumes.write_all(paths, {"tokens": {"istio-token": (b"jwt", 0o600)}, "data": None})
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.10.1 kubernetes.default.svc\n")
    root = volumes.mount(
        paths,
        {
            "name": "istio-proxy",
            "volumeMounts": [
                {"name": "tokens", "mountPath": "/var/run/secrets/tokens"},
                {"name": "data", "mountPath": "/var/lib/istio/data", "subPath": "sub"},
                {"name": "data", "mountPath": "relative/bad"},
            ],
        },
        hosts,
    )
    assert root == paths.root("istio-proxy")
    assert (root / "var/run/secrets/tokens/istio-token").read_bytes() == b"jwt"
    assert (root / "var/lib/istio/data").resolve() == (paths.volume("data") / "sub").resolve()
    assert (root / "etc/hosts").read_text() == hosts.read_text()
    assert not (root / "relative").exists()
    volumes.prepare(paths, "uid-2")  # another Pod of the same name starts clean
    assert not paths.volume("tokens").exists()


# Bad input never crashes the node: junk volume specs raise only LabError.
json_values = strategies.json_values()
KINDS = ["emptyDir", "configMap", "secret", "downwardAPI", "projected", "hostPath"]
source_values = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "secretName": json_values,
        "items": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "key": json_values,
                    "path": json_values,
                    "mode": json_values,
                },
            )
            | json_values,
            max_size=3,
        )
        | json_values,
        "optional": json_values,
        "defaultMode": json_values,
        "sources": st.lists(
            st.dictionaries(
                st.sampled_from(["configMap", "secret", "serviceAccountToken", "downwardAPI"]),
                json_values,
                max_size=2,
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)
junk_volume = st.fixed_dictionaries(
    {"name": st.just("v") | json_values},
    optional={k: source_values | json_values for k in KINDS},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(junk_volume | json_values, max_size=4))
@example([{"name": "v", "projected": {"sources": 5}}])
@example(
    [{"name": "v", "downwardAPI": {"items": 7}}, {"name": "w", "secret": {"secretName": "s", "items": {}}}]
)
def test_junk_volumes_raise_only_lab_errors(vols: list[Any]) -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"volumes": vols}}
    src = volumes.Sources(lambda ns, n: None, lambda ns, n: None)
    try:
        volumes.render(pod, src)
        volumes.token_wants(pod)
    except errors.LabError:
        pass
