"""Where the store's writes go: SQLite (WAL) in the data dir, or nowhere for an in-memory cluster.

All SQLite calls run on one dedicated writer thread so the event loop never blocks on disk.
A write returns only after its transaction committed, so an acknowledged write survives kill -9.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from meshplane.runtime.jsonobj import Obj

Row = tuple[str, str, str, Obj]  # (resource key, namespace, name, object)
Key = tuple[str, str, str]


class Persistence(Protocol):
    async def open(self) -> tuple[int, list[Row]]:
        """Load (last resourceVersion, every stored object)."""
        ...

    async def write(self, rv: int, puts: list[Row], deletes: list[Key]) -> None:
        """Commit one transaction: the new cluster RV, objects written and objects removed."""
        ...

    async def close(self) -> None: ...


class MemoryPersistence:
    """No data dir: the working set in memory is all there is."""

    async def open(self) -> tuple[int, list[Row]]:
        return 0, []

    async def write(self, rv: int, puts: list[Row], deletes: list[Key]) -> None:
        return None

    async def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (res, ns, name)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqlitePersistence:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devcluster-sqlite")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._exec, fn, *args)

    async def open(self) -> tuple[int, list[Row]]:
        result: tuple[int, list[Row]] = await self._run(self._open)
        return result

    def _open(self) -> tuple[int, list[Row]]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self._path), check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db
        self._path.chmod(0o600)
        row = db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        rv = int(row[0]) if row else 0
        rows = [
            (r, n, m, json.loads(b)) for r, n, m, b in db.execute("SELECT res, ns, name, body FROM objects")
        ]
        return rv, rows

    async def write(self, rv: int, puts: list[Row], deletes: list[Key]) -> None:
        encoded = [
            (r, n, m, int(o["metadata"].get("resourceVersion") or rv), json.dumps(o, separators=(",", ":")))
            for r, n, m, o in puts
        ]
        await self._run(self._write, rv, encoded, deletes)

    def _write(self, rv: int, puts: list[tuple[str, str, str, int, str]], deletes: list[Key]) -> None:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            if deletes:
                db.executemany("DELETE FROM objects WHERE res=? AND ns=? AND name=?", deletes)
            if puts:
                db.executemany(
                    "INSERT OR REPLACE INTO objects (res, ns, name, rv, body) VALUES (?,?,?,?,?)", puts
                )
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(rv),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._exec.shutdown(wait=True)
