"""The state store seam: SurrealDB, embedded (`surrealkv://`, `mem://`) or a server (`ws://`).

Records are plain dicts keyed by `(table, id)`; ids come back as strings, so nothing
outside this module sees SurrealDB types. Concurrent `insert`s (the hot paths' creates)
are written together, one `INSERT IGNORE` statement per table per loop turn: a statement
costs several times a row, and each caller still learns whether its own record was new.
An embedded file store is locked to one process: a second opener gets `Unavailable`
naming the holder, instead of corruption.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemons.common.locks import OwnerLock
from registry.errors import Conflict, Internal, Unavailable

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_CAS_RETRIES = 20
NAMESPACE = "prvng"
DATABASE = "main"


def _plain(value: Any) -> Any:
    """SurrealDB values → JSON-able Python values (record ids become their key)."""
    if isinstance(value, _record_id()):
        return str(value.id)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@functools.cache
def _record_id() -> Any:
    from surrealdb import RecordID  # imported late: the CLI's fast path loads this module

    return RecordID


def _first(result: Any) -> dict[str, Any] | None:
    if isinstance(result, list):
        result = result[0] if result else None
    return _plain(result) if isinstance(result, dict) else None


class StateStore:
    """A thin async facade over one SurrealDB connection."""

    def __init__(self, db: Any, url: str) -> None:
        self._db = db
        self.url = url
        self._inserts: list[_Insert] = []
        self._flushing: set[asyncio.Task[None]] = set()
        self._conditional = asyncio.Lock()
        """Conditional updates run one at a time: the embedded engine (3.0.0b10) let two
        concurrent `UPDATE ... WHERE version IN [v]` both succeed (tests/test_state_cas.py)."""

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[StateStore]:
        """Connect (and, for an embedded file store, lock it) for the block's duration."""
        from surrealdb import AsyncSurreal

        lock: OwnerLock | None = None
        if url.startswith(("surrealkv://", "rocksdb://", "file://")):
            lock = OwnerLock(
                Path(url.split("://", 1)[1]),
                what="the embedded state store",
                hint="talk to that platform (`prvng --url ...` or PRVNG_URL) or stop it first",
            )
            lock.acquire()
        try:
            db = AsyncSurreal(url)
            try:
                await db.connect(url)
                await _signin(db)
                await db.use(NAMESPACE, DATABASE)
            except Exception as exc:
                raise Unavailable(f"cannot open the state store at {url}: {exc}") from exc
            try:
                yield cls(db, url)
            finally:
                await db.close()
                # Free the engine now, while the interpreter is whole: freed during
                # interpreter shutdown, its tokio workers panic and abort the process.
                del db
                gc.collect()
        finally:
            if lock is not None:
                lock.release()

    async def get(self, table: str, key: str) -> dict[str, Any] | None:
        from surrealdb import RecordID

        return _first(await self._db.select(RecordID(table, key)))

    async def create(self, table: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        """Insert a new record; `Conflict` when one with that key exists."""
        from surrealdb import RecordID

        record = _first(
            await self._committed(table, key, self._db.create, RecordID(table, key), data)
        )
        if record is None:
            raise Internal(f"state store returned nothing for new {table}:{key}")
        return record

    async def upsert(self, table: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        from surrealdb import RecordID

        record = _first(
            await self._committed(table, key, self._db.upsert, RecordID(table, key), data)
        )
        if record is None:
            raise Internal(f"state store returned nothing for {table}:{key}")
        return record

    async def _committed(
        self, table: str, key: str, write: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        """One record write; a commit lost to a concurrent writer ("can be retried": the
        transaction did nothing) is tried again rather than failing the caller's request."""
        from surrealdb.errors import SurrealError

        for _ in range(_CAS_RETRIES):
            try:
                return await write(*args)
            except SurrealError as exc:
                if "already exists" in str(exc):
                    raise Conflict(
                        f"{table} {key!r} already exists", details={"table": table, "id": key}
                    ) from None
                if "can be retried" not in str(exc):
                    raise Internal(f"state store refused to write {table}:{key}: {exc}") from exc
        raise Conflict(
            f"{table} {key!r} is being changed by others; try again",
            details={"table": table, "id": key},
        )

    async def insert(self, table: str, key: str, data: dict[str, Any]) -> None:
        """`create` without reading the record back; `Conflict` when it exists. Written
        with the other inserts waiting in this loop turn, in one statement."""
        if not _FIELD.match(table):
            raise Internal(f"not a table name: {table!r}")
        loop = asyncio.get_running_loop()
        pending = _Insert(table, key, data, loop.create_future())
        self._inserts.append(pending)
        if len(self._inserts) == 1:  # the first of this turn: flushed once the turn is over
            task = loop.create_task(self._flush_inserts())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        await asyncio.shield(pending.done)  # a cancelled caller's row is written all the same

    async def _flush_inserts(self) -> None:
        batch, self._inserts = self._inserts, []
        by_table: dict[str, list[_Insert]] = {}
        for pending in batch:
            by_table.setdefault(pending.table, []).append(pending)
        for table, inserts in by_table.items():
            try:
                created = await self._insert_new(table, inserts)
            except Exception as exc:
                if len(inserts) == 1:
                    inserts[0].done.set_exception(exc)
                    continue
                # One bad row must not fail its neighbours: each one alone, its own error.
                created = set()
                for pending in inserts:
                    try:
                        created |= await self._insert_new(table, [pending])
                    except Exception as alone:  # handed to its caller
                        pending.done.set_exception(alone)
            for pending in inserts:
                if pending.done.done():
                    continue
                if pending.key in created:
                    created.discard(pending.key)  # the same key twice: the second conflicts
                    pending.done.set_result(None)
                else:
                    pending.done.set_exception(
                        Conflict(
                            f"{table} {pending.key!r} already exists",
                            details={"table": table, "id": pending.key},
                        )
                    )

    async def _insert_new(self, table: str, inserts: list[_Insert]) -> set[str]:
        """Create the records that do not exist yet, in one statement; the keys created."""
        from surrealdb import RecordID

        rows, seen = [], set()
        for pending in inserts:
            if pending.key not in seen:  # a repeated key is not created twice
                seen.add(pending.key)
                rows.append({**pending.data, "id": RecordID(table, pending.key)})
        sql = f"INSERT IGNORE INTO {table} $rows RETURN id"
        result = await self._retrying(table, inserts[0].key, sql, {"rows": rows})
        return {str(row["id"]) for row in _plain(result or [])}

    async def update_if(
        self, table: str, key: str, data: dict[str, Any], *, field: str, expected: Sequence[Any]
    ) -> bool:
        """Merge `data` into the record only while its `field` is one of `expected`, in one
        statement (a compare-and-set); False when the condition (or the record) was not
        there. Two writers racing on one transition: one wins."""
        from surrealdb import RecordID

        if not _FIELD.match(field):
            raise Internal(f"not a field name: {field!r}")
        sql = f"UPDATE $rid MERGE $data WHERE {field} IN $expected RETURN VALUE true"
        variables = {"rid": RecordID(table, key), "data": data, "expected": list(expected)}
        return bool(await self._retrying(table, key, sql, variables))

    async def update_many_if(
        self,
        table: str,
        keys: Sequence[str],
        data: dict[str, Any],
        *,
        field: str,
        expected: Sequence[Any],
    ) -> set[str]:
        """`update_if` on several records in one statement (each one's own compare-and-set);
        the keys whose condition held."""
        from surrealdb import RecordID

        if not _FIELD.match(field):
            raise Internal(f"not a field name: {field!r}")
        sql = f"UPDATE $rids MERGE $data WHERE {field} IN $expected RETURN VALUE id"
        rids = [RecordID(table, key) for key in dict.fromkeys(keys)]
        variables = {"rids": rids, "data": data, "expected": list(expected)}
        result = await self._retrying(table, keys[0], sql, variables)
        return {str(key) for key in _plain(result or [])}

    async def _retrying(self, table: str, key: str, sql: str, variables: dict[str, Any]) -> Any:
        """A conditional statement, one at a time in this process (see `_conditional`),
        run again when its commit was lost, so its condition is evaluated against what the
        other writer left."""
        return await self._committed(table, key, self._conditional_query, sql, variables)

    async def _conditional_query(self, sql: str, variables: dict[str, Any]) -> Any:
        async with self._conditional:
            return await self._db.query(sql, variables)

    async def delete(self, table: str, key: str) -> dict[str, Any] | None:
        """Remove a record; the removed record, or None when there was none."""
        from surrealdb import RecordID

        return _first(await self._db.delete(RecordID(table, key)))

    async def select(self, table: str) -> list[dict[str, Any]]:
        rows = await self._db.select(table)
        return [_plain(row) for row in rows or []] if isinstance(rows, list) else []

    async def query(self, sql: str, variables: dict[str, Any] | None = None) -> Any:
        return _plain(await self._db.query(sql, variables or {}))


@dataclass(frozen=True, slots=True)
class _Insert:
    table: str
    key: str
    data: dict[str, Any]
    done: asyncio.Future[None]


async def _signin(db: Any) -> None:
    user = os.environ.get("PRVNG_SURREAL_USER")
    password = os.environ.get("PRVNG_SURREAL_PASS")
    if user and password:
        await db.signin({"username": user, "password": password})
