"""Lazily opened, shared resources (state store, clients) that handlers ask for by type.

A resource opens on first use, so a call that needs no database never opens one, and
closes when the registry closes. This keeps `tools.list` fast and lets a CLI process
that only lists tools leave the embedded store alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, TypeVar, cast

from registry.errors import Internal

T = TypeVar("T")

Opener = Callable[[], AbstractAsyncContextManager[Any]]


class Resources:
    """A type-keyed container of lazily opened async resources."""

    def __init__(self) -> None:
        self._openers: dict[type, Opener] = {}
        self._values: dict[type, Any] = {}
        self._locks: dict[type, asyncio.Lock] = {}
        self._stack = AsyncExitStack()

    def provide(self, key: type[T], opener: Callable[[], AbstractAsyncContextManager[T]]) -> None:
        """Declare how to open the resource `key`; replaces an earlier declaration."""
        self._openers[key] = opener
        self._values.pop(key, None)

    def put(self, key: type[T], value: T) -> None:
        """Provide an already-open resource (owned by the caller)."""
        self._values[key] = value

    def is_open(self, key: type) -> bool:
        return key in self._values

    def peek(self, key: type[T]) -> T:
        """An open resource, without opening it (`Internal` when it is not open)."""
        if key not in self._values:
            raise Internal(f"the {key.__name__} resource is not open")
        return cast(T, self._values[key])

    async def get(self, key: type[T]) -> T:
        value = self._values.get(key)
        if value is not None:
            return cast(T, value)
        opener = self._openers.get(key)
        if opener is None:
            raise Internal(f"no resource of type {key.__name__} is configured")
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._values:
                self._values[key] = await self._stack.enter_async_context(opener())
        return cast(T, self._values[key])

    async def aclose(self) -> None:
        self._values.clear()
        await self._stack.aclose()
        self._stack = AsyncExitStack()
