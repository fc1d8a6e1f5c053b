"""Streams on the command line: a streaming tool read over HTTP (`GET /v1/streams/{tool}`),
and the progress of a blocking call shown from the stream its listing names (`follow`).

Nothing here knows a tool or a workflow state: the listing says which stream shows a
call's progress, and each item says whether its subject has reached a final state.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlsplit

from daemons.common.sse import SseParser
from servers.cli.remote import TIER_HEADERS


def _stream_path(base: str, name: str, args: dict[str, Any]) -> str:
    query = urlencode(
        {
            key: json.dumps(value) if isinstance(value, bool) else value
            for key, value in args.items()
        }
    )
    return f"{base}/v1/streams/{quote(name)}" + (f"?{query}" if query else "")


class StreamRefused(Exception):
    """The platform answered the stream request with an error envelope."""

    def __init__(self, envelope: dict[str, Any]) -> None:
        super().__init__(str((envelope.get("error") or {}).get("message")))
        self.envelope = envelope


def open_stream(
    url: str, api_key: str | None, name: str, args: dict[str, Any], timeout: float = 10.0
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Subscribe to stream tool `name`; returns once the server has subscribed.

    Raises `StreamRefused` with the envelope when the platform refuses it, `OSError` (or an
    `http.client.HTTPException`) when it cannot be reached."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    headers = {"Accept": "text/event-stream", **TIER_HEADERS}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        conn.request("GET", _stream_path(parts.path.rstrip("/"), name, args), headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise _refusal(response)
        response.readline()  # ": connected": subscribed, nothing from here on is missed
        assert conn.sock is not None
        conn.sock.settimeout(None)
    except BaseException:
        conn.close()
        raise
    return conn, response


def _refusal(response: http.client.HTTPResponse) -> Exception:
    try:
        envelope = json.loads(response.read())
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
        return StreamRefused(envelope)
    return OSError(f"the stream answered HTTP {response.status} without an envelope")


def items(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """The stream's items, as the server sends them, until it ends the stream."""
    parser = SseParser()
    for raw in response:
        message = parser.feed(raw.decode(errors="replace").rstrip("\r\n"))
        if message is not None:
            yield json.loads(message.data)


def progress_line(item: dict[str, Any], done: set[str]) -> str:
    """`progress: [3 done] build succeeded (attempt 2)` for one event."""
    subject = item.get("task_id")
    if subject and item.get("kind") == "task" and item.get("final"):
        done.add(subject)
    attempt = f" (attempt {item['attempt']})" if (item.get("attempt") or 0) > 1 else ""
    return f"progress: [{len(done)} done] {subject or 'workflow'} {item.get('state')}{attempt}"


def _show(response: http.client.HTTPResponse, out: TextIO, ended: threading.Event) -> None:
    done: set[str] = set()
    # Best effort: the stream ends when the call returns and the socket is shut down
    # under the reader, which `http.client` reports in several ways; none is an error.
    with contextlib.suppress(Exception):
        for item in items(response):
            print(progress_line(item, done), file=out, flush=True)
    ended.set()


@contextlib.contextmanager
def following(
    url: str, api_key: str | None, stream: str, args: dict[str, Any], out: TextIO
) -> Iterator[None]:
    """Show stream `stream`'s items during the block (best effort: no stream, no progress).

    The stream ends by itself once its subject finishes (`until_finished`); after the
    block, the last items may trail the call's answer by a moment."""
    try:
        conn, response = open_stream(url, api_key, stream, args)
    except (StreamRefused, OSError, http.client.HTTPException):
        yield
        return
    ended = threading.Event()
    reader = threading.Thread(target=_show, args=(response, out, ended), daemon=True)
    reader.start()
    try:
        yield
    finally:
        ended.wait(timeout=1.0)
        with contextlib.suppress(OSError):
            if conn.sock is not None:
                conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        reader.join(timeout=5)
