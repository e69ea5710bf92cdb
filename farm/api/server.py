"""``ApiServer``: the API served by uvicorn on a thread of the calling process, started and stopped on demand.

``farm serve`` runs the manager's loop on its main thread and the API beside it; tests start one per
test. The socket is bound here, before uvicorn starts, so port 0 picks a free port that ``url`` reports
and nothing can take it between choosing and binding. ``start`` returns only once the server accepts
connections (or raises, with uvicorn's reason, after its deadline); ``stop`` asks it to finish and
forces it if open streams keep it past its deadline.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from farm.errors import FarmError

GRACE_SECONDS = 3
"""How long a stopping server lets open requests and event streams finish."""


class ApiServerError(FarmError):
    """The API server could not start (the address is taken, or it did not come up in time)."""


class ApiServer:
    """``app`` served at ``host:port`` on a background thread; ``port=0`` picks a free port."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` with the port actually bound (after ``start``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        """Bind, serve, and wait until connections are accepted; returns ``url``."""
        if self._thread is not None:
            raise ApiServerError(f"the API server at {self.url} is already running")
        self._socket = self._bind()
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level=self.log_level, timeout_graceful_shutdown=GRACE_SECONDS, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, args=(self._server, self._socket), name=f"farm-api-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self._server.started and self._accepts()):
            if not self._thread.is_alive():
                self._cleanup()
                raise ApiServerError(f"the API server at {self.url} stopped while starting: {self._failure}")
            if time.monotonic() > deadline:
                self.stop()
                raise ApiServerError(f"the API server at {self.url} did not start within {timeout:g} s")
            time.sleep(0.02)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish (open streams get ``GRACE_SECONDS``), forcing it after ``timeout``."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._cleanup()

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ApiServerError(f"cannot listen on {self.url}: {exc.strerror or exc}; pick another --listen") from exc
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by start(); a thread has no caller to raise to
            self._failure = exc

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
