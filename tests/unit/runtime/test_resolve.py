"""runtime.resolve: the lab's Service-name resolution for pods, and a no-op for real pods."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshplane.runtime import resolve

HOSTS = """# cluster1
127.0.10.7 istiod.istio-system.svc.cluster.local istiod.istio-system.svc istiod.istio-system
127.0.10.9 helloworld.sample.svc.cluster.local helloworld.sample.svc helloworld.sample
not-an-ip broken.line
127.0.10.11   curl.sample.svc.cluster.local curl.sample.svc curl.sample  # trailing comment
"""


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hosts"
    path.write_text(HOSTS)
    monkeypatch.setenv(resolve.HOSTS_FILE_ENV, str(path))
    monkeypatch.setenv(resolve.NAMESPACE_ENV, "sample")
    monkeypatch.setenv(resolve.LOCALHOST_ENV, "127.1.1.4")
    return path


def test_parse_skips_malformed_lines() -> None:
    table = resolve.parse_hosts(HOSTS)
    assert table["curl.sample"] == "127.0.10.11"
    assert "broken.line" not in table


def test_every_service_name_form_resolves(hosts: Path) -> None:
    for name in (
        "istiod.istio-system.svc",
        "istiod.istio-system",
        "istiod.istio-system.svc.cluster.local",
        "ISTIOD.istio-system.svc.",
    ):
        assert resolve.resolve(name) == "127.0.10.7", name


def test_short_names_are_relative_to_the_pods_namespace(hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve.resolve("helloworld") == "127.0.10.9"
    monkeypatch.setenv(resolve.NAMESPACE_ENV, "other")
    assert resolve.resolve("helloworld") == "helloworld"


def test_localhost_ips_and_unknown_names(hosts: Path) -> None:
    assert resolve.resolve("localhost") == "127.1.1.4"
    assert resolve.resolve("10.1.2.3") == "10.1.2.3"
    assert resolve.resolve("example.com") == "example.com"


def test_without_the_lab_setting_names_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(resolve.HOSTS_FILE_ENV, raising=False)
    assert resolve.resolve("istiod.istio-system.svc") == "istiod.istio-system.svc"


def test_the_file_is_reread_when_it_changes(hosts: Path) -> None:
    assert resolve.resolve("helloworld.sample") == "127.0.10.9"
    tmp = hosts.with_name("hosts.new")
    tmp.write_text("127.0.10.99 helloworld.sample.svc helloworld.sample\n")
    os.replace(tmp, hosts)
    assert resolve.resolve("helloworld.sample") == "127.0.10.99"
    hosts.unlink()
    assert resolve.resolve("helloworld.sample") == "helloworld.sample"


async def test_aresolve(hosts: Path) -> None:
    assert await resolve.aresolve("curl") == "127.0.10.11"


@given(st.text(max_size=300), st.text(max_size=40))
def test_any_file_and_any_name_never_raise(text: str, name: str) -> None:
    table = resolve.parse_hosts(text)
    assert all(isinstance(v, str) for v in table.values())
    found = resolve.lookup(name, table, "ns")
    assert found is None or found in table.values()
