"""The network ledger: what the lab made, by name, written down before it is made.

One JSON object a line in `FOLDER/network.ledger`, appended and fsync'ed BEFORE the object is
made, so after a crash the file names everything that may exist (and perhaps one thing that
never came to be). `cleanup` removes the entries by name in reverse order (a rule before its
chain, a veth before its namespace, a file before its folder), treats an object already gone
as removed, and rewrites the ledger with only what it could not remove. Nothing is matched by
pattern: only recorded names are ever deleted.

Kinds: `netns` (ip netns delete), `link` (ip link delete; bridges and veths), `file`, `dir`
(rmdir: the files in it are entries of their own), `chain` and `rule` (iptables, on the host or,
with `netns`, inside a namespace), `route` (a range the host takes as its own addresses:
`ip route add local NET dev lo`, which no lab link carries away when it is deleted).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshplane.lab import errors
from meshplane.lab.network import command

log = logging.getLogger(__name__)

FILE = "network.ledger"
KINDS = ("netns", "link", "file", "dir", "chain", "rule", "route")


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    name: str  # the namespace, link, path or chain
    table: str = ""  # iptables table (chain, rule)
    rule: tuple[str, ...] = field(default=())  # iptables rule spec after the chain (rule)
    netns: str = ""  # the namespace an iptables chain/rule lives in ("" = the host)

    def __post_init__(self) -> None:
        if self.kind not in KINDS or not self.name:
            raise errors.LedgerError(f"bad ledger entry {self.kind!r} {self.name!r}")

    def __str__(self) -> str:
        where = f" in {self.netns}" if self.netns else ""
        return " ".join([self.kind, self.table, self.name, *self.rule]).replace("  ", " ") + where


class Ledger:
    """Appends entries to `folder/network.ledger` (made if missing)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE

    async def record(self, entry: Entry) -> None:
        """Write `entry` durably (append + fsync) before the caller makes the object."""
        await asyncio.to_thread(self._append, entry)

    def _append(self, entry: Entry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(entry), separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    async def cleanup(self) -> list[Entry]:
        return await cleanup(self.path)


def read(path: Path) -> list[Entry]:
    """The entries of a ledger file ([] when there is none). A torn last line (a crash while
    appending) is ignored: its object was not made yet."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise errors.LedgerError(f"cannot read the network ledger {path}: {e}") from e
    entries = []
    for n, line in enumerate(lines, 1):
        try:
            raw = json.loads(line)
            entries.append(Entry(raw["kind"], raw["name"], raw.get("table", ""),
                                 tuple(raw.get("rule", ())), raw.get("netns", "")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as e:
            if n == len(lines):
                log.warning("network ledger %s: ignoring a torn last line %r", path, line)
                continue
            raise errors.LedgerError(f"network ledger {path} line {n} is not an entry: {line!r}") from e
    return entries


async def cleanup(path: Path) -> list[Entry]:
    """Remove what the ledger at `path` records, newest first; return what was removed (or was
    already gone). The ledger is deleted when all is gone, else rewritten with what is left and a
    LedgerError names it."""
    entries = await asyncio.to_thread(read, path)
    left: list[tuple[Entry, str]] = []
    done: list[Entry] = []
    for entry in reversed(entries):
        try:
            await _remove(entry)
        except (errors.LabError, OSError) as e:
            left.append((entry, str(e)))
            continue
        done.append(entry)
    if not left:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return done
    await asyncio.to_thread(_rewrite, path, [entry for entry, _ in reversed(left)])
    raise errors.LedgerError(
        f"network ledger {path}: could not remove " + "; ".join(f"{e} ({why})" for e, why in left)
    )


def _rewrite(path: Path, entries: Sequence[Entry]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(asdict(e), separators=(",", ":")) + "\n" for e in entries))
    os.replace(tmp, path)


async def _remove(entry: Entry) -> None:
    """Remove one object; an object that is already gone is not an error."""
    if entry.kind in ("file", "dir"):
        await asyncio.to_thread(_remove_path, entry)
    elif entry.kind == "netns":
        if entry.name in await netns_names():
            await command.run("ip", "netns", "delete", entry.name)
    elif entry.kind == "route":
        if (await command.run("ip", "route", "show", "table", "local", "exact", entry.name)).strip():
            await command.run("ip", "route", "del", "local", entry.name, "dev", "lo")
    elif entry.kind == "link":
        if await command.succeeds("ip", "link", "show", "dev", entry.name):
            await command.run("ip", "link", "delete", "dev", entry.name)
    elif entry.netns and entry.netns not in await netns_names():
        return  # its namespace is gone, and the rule or chain with it
    elif entry.kind == "rule":
        ipt = _iptables(entry)
        if await command.succeeds(*ipt, "-C", *_rule(entry)):
            await command.run(*ipt, "-D", *_rule(entry))
    else:  # chain
        ipt = _iptables(entry)
        if await command.succeeds(*ipt, "-S", entry.name):
            await command.run(*ipt, "-F", entry.name)
            await command.run(*ipt, "-X", entry.name)


def _remove_path(entry: Entry) -> None:
    path = Path(entry.name)
    try:
        if entry.kind == "file":
            path.unlink()
        else:
            path.rmdir()  # only an empty folder: its files are entries of their own
    except FileNotFoundError:
        pass


def _iptables(entry: Entry) -> list[str]:
    prefix = ["ip", "netns", "exec", entry.netns] if entry.netns else []
    return [*prefix, "iptables", "-w", "-t", entry.table or "filter"]


def _rule(entry: Entry) -> list[str]:
    return [entry.name, *entry.rule]


async def netns_names() -> set[str]:
    """The names `ip netns list` shows (the first word of each line)."""
    out = await command.run("ip", "netns", "list")
    return {line.split()[0] for line in out.splitlines() if line.strip()}
