"""lab.network.names (interface names fit the kernel's 15 characters), ledger files (written before,
read back, a torn last line ignored) and a pod's resolver files."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.lab import errors
from meshplane.lab.network import ledger, names, resolver


def test_names_fit_and_differ() -> None:
    lab = names.new_lab_id()
    assert len(lab) == 6
    assert names.bridge(lab) == f"mp-{lab}-br"
    a, b = names.host_veth(lab, "ns/a"), names.host_veth(lab, "ns/b")
    assert a != b and len(a) == len(b) == 15 and a.startswith("mp")
    assert names.host_veth(lab, "ns/a") == a  # stable for one pod
    assert names.netns(lab, "ns/a").startswith(f"mp-{lab}-")
    assert names.host_veth("other", "ns/a") != a


@pytest.mark.parametrize("bad", ["", "x" * 16, "has space", "a/b", "-lead"])
def test_bad_interface_names_are_named(bad: str) -> None:
    with pytest.raises(errors.InterfaceNameError, match="interface name"):
        names.ifname(bad)


@pytest.mark.parametrize("bad", ["", "ABC", "1234567", "a-b"])
def test_bad_lab_ids(bad: str) -> None:
    with pytest.raises(errors.InterfaceNameError, match=f"lab id {bad!r}"):
        names.bridge(bad)


async def test_ledger_appends_and_reads_back(tmp_path: Path) -> None:
    book = ledger.Ledger(tmp_path)
    made = [
        ledger.Entry("netns", "mp-x-1"),
        ledger.Entry("link", "mpx1"),
        ledger.Entry("chain", "MP-X", table="nat"),
        ledger.Entry("rule", "PREROUTING", table="nat", rule=("-j", "MP-X"), netns="mp-x-1"),
    ]
    for e in made:
        await book.record(e)
    assert ledger.read(book.path) == made
    with book.path.open("a") as f:
        f.write('{"kind":"netns","na')  # a crash while appending
    assert ledger.read(book.path) == made
    assert str(made[3]) == "rule nat PREROUTING -j MP-X in mp-x-1"


def test_ledger_refuses_a_garbled_middle_line(tmp_path: Path) -> None:
    path = tmp_path / ledger.FILE
    path.write_text('garbage\n{"kind":"netns","name":"a"}\n')
    with pytest.raises(errors.LedgerError, match="line 1 is not an entry"):
        ledger.read(path)
    with pytest.raises(errors.LedgerError, match="bad ledger entry 'mount'"):
        ledger.Entry("mount", "/")


async def test_cleanup_removes_files_then_their_folder(tmp_path: Path) -> None:
    book = ledger.Ledger(tmp_path / "state")
    folder = await resolver.write(
        book, "mp-x-1", namespace="sample", pod_ip="198.18.1.5", hostname="sleep-1",
        extra_hosts=[("198.18.11.10", ["helloworld.sample.svc.cluster.local", "helloworld"])],
        root=tmp_path / "etc-netns",
    )  # fmt: skip
    assert (folder / "resolv.conf").read_text() == (
        "search sample.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )
    hosts = (folder / "hosts").read_text()
    assert "198.18.1.5\tsleep-1\n" in hosts and "198.18.11.10\thelloworld.sample.svc.cluster.local" in hosts
    (folder / "resolv.conf").unlink()  # one already gone is fine
    removed = await ledger.cleanup(book.path)
    assert [e.kind for e in removed] == ["file", "file", "dir"]
    assert not folder.exists() and not book.path.exists()
    assert (tmp_path / "etc-netns").is_dir()  # only recorded names are removed


async def test_cleanup_keeps_what_it_could_not_remove(tmp_path: Path) -> None:
    book = ledger.Ledger(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "not-ours").write_text("x")
    await book.record(ledger.Entry("dir", str(busy)))
    await book.record(ledger.Entry("file", str(tmp_path / "gone")))
    with pytest.raises(errors.LedgerError, match=f"could not remove dir {busy}"):
        await ledger.cleanup(book.path)
    assert ledger.read(book.path) == [ledger.Entry("dir", str(busy))]
    assert (busy / "not-ours").exists()
