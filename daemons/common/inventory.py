"""The server inventory, stored in SurrealDB table `server` keyed by server name.

A deleted server keeps its record (status `deleted`, for history) until its name is
registered again, which replaces it."""

from __future__ import annotations

from typing import Any

from daemons.common.state import StateStore
from registry.errors import Conflict, NotFound
from registry.timestamps import utc_now_iso

TABLE = "server"
DELETED = "deleted"
_REPLACE_DELETED = (
    "UPDATE type::thing($table, $name) CONTENT $record WHERE status = $deleted RETURN AFTER"
)


class Inventory:
    """Server records: register, look up, list, remove."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def register(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A new record; a deleted server's name is free again (`Conflict` for a live one)."""
        record = {**fields, "name": name, "registered_at": utc_now_iso()}
        try:
            return _public(await self._store.create(TABLE, name, record))
        except Conflict:
            variables = {"table": TABLE, "name": name, "record": record, "deleted": DELETED}
            rows = await self._store.query(_REPLACE_DELETED, variables)
            if not rows:  # one statement: two registrations cannot both take the name
                raise
            return _public(rows[0])

    async def get(self, name: str) -> dict[str, Any]:
        record = await self._store.get(TABLE, name)
        if record is None:
            raise NotFound(
                f"no server named {name!r}; `prvng server list` shows the inventory",
                details={"server": name},
            )
        return _public(record)

    async def list(self) -> list[dict[str, Any]]:
        rows = await self._store.query(f"SELECT * FROM {TABLE} ORDER BY name")
        return [_public(row) for row in rows]

    async def update(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        current = await self.get(name)
        return _public(await self._store.upsert(TABLE, name, {**current, **fields}))

    async def remove(self, name: str) -> dict[str, Any]:
        record = await self._store.delete(TABLE, name)
        if record is None:
            raise NotFound(f"no server named {name!r} to remove", details={"server": name})
        return _public(record)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "id"}
