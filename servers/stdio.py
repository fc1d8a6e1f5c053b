"""MCP over stdin/stdout, each incoming line read as strictly as an HTTP body.

The SDK's stdio transport decodes stdin with `errors="replace"` (bad bytes become U+FFFD
and are stored) and drops a line it cannot parse without a word. Here every line goes
through `servers.jsontext` first: one that is not UTF-8, not JSON, has a key twice or
nests past the limit is answered with a JSON-RPC parse error (-32700) whose `data` is the
platform's `invalid_input` error, and the session goes on. Good lines go to the SDK as is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import anyio
from fastmcp import FastMCP
from fastmcp.server.context import reset_transport, set_transport
from mcp.server.stdio import stdio_server

from servers import jsontext
from servers.wire import json_bytes

MESSAGE_DEPTH = jsontext.MAX_DEPTH + 16
"""A JSON-RPC message wraps a tool's input a few levels down; the pipeline refuses an
input past `jsontext.MAX_DEPTH` precisely, this only stops what no input could be."""
PARSE_ERROR = -32700


def parse_error(exc: jsontext.JsonRejected) -> dict[str, Any]:
    """The JSON-RPC answer to a message that could not be read (MCP on stdio and HTTP)."""
    error = {"code": "invalid_input", "message": exc.message, "details": exc.details}
    return {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": PARSE_ERROR, "message": exc.message, "data": error},
    }


class _Wire:
    """The protocol's stdout: whole lines, one writer at a time (the SDK and us)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = anyio.Lock()

    async def write(self, text: str) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._out.write, text.encode())

    async def flush(self) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._out.flush)


class _CheckedLines:
    """stdin as the SDK reads it (an async iterator of text lines), bad lines answered."""

    def __init__(self, source: BinaryIO, wire: _Wire) -> None:
        self._source = anyio.wrap_file(source)
        self._wire = wire

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for raw in self._source:
            if not raw.strip():
                continue
            try:
                jsontext.loads(raw, "the message", max_depth=MESSAGE_DEPTH)
            except jsontext.JsonRejected as exc:
                await self._wire.write(json_bytes(parse_error(exc)).decode() + "\n")
                await self._wire.flush()
                continue
            yield raw.decode()


@contextmanager
def _claimed_std_streams() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """Private copies of fds 0 and 1 for the protocol; meanwhile fd 0 reads the null device
    and fd 1 writes to stderr, so a child's or a stray print's output misses the wire."""
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        with os.fdopen(wire_in, "rb") as source, os.fdopen(wire_out, "wb") as out:
            yield source, out
    finally:
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        for fd in (null, saved_in, saved_out):
            os.close(fd)


async def serve_stdio(server: FastMCP) -> None:
    """Run `server` on this process's stdin/stdout until the client closes stdin."""
    with _claimed_std_streams() as (source, out):
        wire = _Wire(out)
        token = set_transport("stdio")
        try:
            async with (
                server._lifespan_manager(),  # FastMCP's own run_stdio_async does the same
                stdio_server(stdin=_CheckedLines(source, wire), stdout=wire) as (read, write),  # type: ignore[arg-type]  # duck-typed: async line iterator, write/flush
            ):
                mcp = server._mcp_server
                await mcp.run(read, write, mcp.create_initialization_options())
        finally:
            reset_transport(token)
