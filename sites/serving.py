"""Serving an ASGI app with uvicorn: on an exactly bound socket, in the foreground or in a background thread.

Shared by the store (`sites.store.server`) and the agent's policy server.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on exactly (host, port); port 0 picks a free one."""
    family, type_, proto, _name, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    """`http://host:port` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve_foreground(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted, binding only to `host`."""
    sock = bind(host, port)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on")).run(sockets=[sock])
    finally:
        sock.close()


class ThreadedServer:
    """An ASGI app served by uvicorn in a daemon thread. `start()` returns once it accepts connections;
    `stop()` is idempotent. Use as a context manager."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 name: str = "server"):
        self.app, self.host, self.port, self.log_level, self.name = app, host, port, log_level, name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. 'http://127.0.0.1:54321' (no trailing slash). Only once started."""
        if self._url is None:
            raise RuntimeError(f"{self.name}: the server is not started; call start() first")
        return self._url

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, timeout: float = 30.0) -> ThreadedServer:
        if self._thread is not None:
            return self
        self._sock = bind(self.host, self.port)
        self._url = socket_url(self._sock)
        config = uvicorn.Config(self.app, log_level=self.log_level, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"{self.name}-{self._url}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the {self.name} exited during start-up; see the log above")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the {self.name} did not start within {timeout:.0f}s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the %s thread did not stop within %.0fs", self.name, timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
