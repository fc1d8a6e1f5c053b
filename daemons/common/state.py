"""The state store seam: SurrealDB, embedded (`surrealkv://`, `mem://`) or a server (`ws://`).

Records are plain dicts keyed by `(table, id)`; ids come back as strings, so nothing
outside this module sees SurrealDB types. An embedded file store is locked to one
process: a second opener gets `Unavailable` naming the holder, instead of corruption.
"""

from __future__ import annotations

import functools
import gc
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
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
        from surrealdb.errors import SurrealError

        try:
            record = _first(await self._db.create(RecordID(table, key), data))
        except SurrealError as exc:
            if "already exists" in str(exc):
                raise Conflict(
                    f"{table} {key!r} already exists", details={"table": table, "id": key}
                ) from None
            raise Internal(f"state store refused to create {table}:{key}: {exc}") from exc
        if record is None:
            raise Internal(f"state store returned nothing for new {table}:{key}")
        return record

    async def upsert(self, table: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        from surrealdb import RecordID

        record = _first(await self._db.upsert(RecordID(table, key), data))
        if record is None:
            raise Internal(f"state store returned nothing for {table}:{key}")
        return record

    async def insert(self, table: str, key: str, data: dict[str, Any]) -> None:
        """`create` without reading the record back (hot paths: less to decode)."""
        from surrealdb import RecordID

        variables = {"rid": RecordID(table, key), "data": data}
        await self._retrying(table, key, "CREATE $rid CONTENT $data RETURN NONE", variables)

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

    async def _retrying(self, table: str, key: str, sql: str, variables: dict[str, Any]) -> Any:
        """Run one statement; a commit lost to a concurrent writer is run again (it says it
        "can be retried"), so conditions are evaluated against what that writer left."""
        from surrealdb.errors import SurrealError

        for _ in range(_CAS_RETRIES):
            try:
                return await self._db.query(sql, variables)
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

    async def delete(self, table: str, key: str) -> dict[str, Any] | None:
        """Remove a record; the removed record, or None when there was none."""
        from surrealdb import RecordID

        return _first(await self._db.delete(RecordID(table, key)))

    async def select(self, table: str) -> list[dict[str, Any]]:
        rows = await self._db.select(table)
        return [_plain(row) for row in rows or []] if isinstance(rows, list) else []

    async def query(self, sql: str, variables: dict[str, Any] | None = None) -> Any:
        return _plain(await self._db.query(sql, variables or {}))


async def _signin(db: Any) -> None:
    user = os.environ.get("PRVNG_SURREAL_USER")
    password = os.environ.get("PRVNG_SURREAL_PASS")
    if user and password:
        await db.signin({"username": user, "password": password})
