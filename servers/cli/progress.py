"""Progress of a remote call that waits for a workflow: the platform's `/events` stream
for that workflow, followed in a thread and shown on stderr while the call blocks."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

_DONE = frozenset({"succeeded", "failed", "skipped", "cancelled", "compensated"})


def _show(event: dict[str, Any], done: set[str], out: TextIO) -> None:
    task = event.get("task_id")
    if event.get("kind") == "task" and task and event.get("state") in _DONE:
        done.add(task)
    subject = task or "workflow"
    attempt = f" (attempt {event['attempt']})" if (event.get("attempt") or 0) > 1 else ""
    print(f"progress: [{len(done)} done] {subject} {event.get('state')}{attempt}", file=out)
    out.flush()


_FINISHED = frozenset({"succeeded", "failed", "cancelled", "rolled_back"})


def _follow(
    response: http.client.HTTPResponse, out: TextIO, seen: threading.Event, ended: threading.Event
) -> None:
    done: set[str] = set()
    # Best effort: the stream ends when the call returns and the socket is shut down
    # under the reader, which `http.client` reports in several ways; none is an error.
    with contextlib.suppress(Exception):
        for raw in response:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line.startswith("data: "):
                event = json.loads(line[6:])
                seen.set()
                _show(event, done, out)
                if event.get("kind") == "workflow" and event.get("state") in _FINISHED:
                    ended.set()


@contextlib.contextmanager
def following(url: str, api_key: str | None, workflow_id: str, out: TextIO) -> Iterator[None]:
    """Show the workflow's events during the block (best effort: no stream, no progress)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers = {"Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    path = f"{parts.path.rstrip('/')}/events?workflow_id={quote(workflow_id)}"
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise OSError(f"/events answered {response.status}")
        response.readline()  # ": connected": subscribed before the call starts
        assert conn.sock is not None
        conn.sock.settimeout(None)
    except (OSError, http.client.HTTPException):
        conn.close()
        yield
        return
    seen, ended = threading.Event(), threading.Event()
    reader = threading.Thread(target=_follow, args=(response, out, seen, ended), daemon=True)
    reader.start()
    try:
        yield
    finally:
        if seen.is_set():  # the last events may trail the call's answer by a moment
            ended.wait(timeout=1.0)
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        reader.join(timeout=5)
