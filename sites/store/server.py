"""Running the store over HTTP: in a background thread (tests, envs) or in the foreground (the CLI)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from .app import close_app, create_app

log = logging.getLogger(__name__)


def _bind(host: str, port: int) -> socket.socket:
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


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class StoreServer:
    """The store served by uvicorn in a background thread.

    >>> with StoreServer("catalog.db", variant="b") as server:  # doctest: +SKIP
    ...     httpx.get(server.url + "/search?q=shoes")

    `start()` returns once the server accepts connections; `stop()` is idempotent.
    """

    def __init__(self, db_path: str | Path, variant: str = "a", host: str = "127.0.0.1", port: int = 0,
                 state_path: str | Path | None = None, log_level: str = "warning"):
        self.db_path = Path(db_path)
        self.variant = variant
        self.host = host
        self.port = port
        self.state_path = state_path
        self.log_level = log_level
        self._app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._url: str | None = None

    @property
    def app(self) -> FastAPI:
        """The running app (its `state` holds the catalog, the state store and the event log). Only once started."""
        if self._app is None:
            raise RuntimeError("StoreServer.app: the server is not started; call start() first")
        return self._app

    @property
    def url(self) -> str:
        """The base URL, e.g. 'http://127.0.0.1:54321' (no trailing slash). Only once started."""
        if self._url is None:
            raise RuntimeError("StoreServer.url: the server is not started; call start() first")
        return self._url

    def start(self, timeout: float = 30.0) -> StoreServer:
        """Bind, start serving in a daemon thread, and wait until it accepts connections."""
        if self._thread is not None:
            return self
        self._app = app = create_app(self.db_path, variant=self.variant, state_path=self.state_path)
        self._sock = _bind(self.host, self.port)
        self._url = _url(self._sock)
        config = uvicorn.Config(app, log_level=self.log_level, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"store-{self._url}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the store server exited during start-up; see the log above")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the store server did not start within {timeout:.0f}s")
            time.sleep(0.01)
        log.info("store (variant %s) serving %s at %s", self.variant, self.db_path, self._url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down and wait for the thread. Safe to call more than once, or before start()."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the store server thread did not stop within %.0fs", timeout)
        if self._sock is not None:
            self._sock.close()
        if self._app is not None:
            close_app(self._app)
        self._server = self._thread = self._sock = self._app = None

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_forever(db_path: str | Path, host: str = "127.0.0.1", port: int = 8000, variant: str = "a",
                  state_path: str | Path | None = None) -> None:
    """Serve the store in the foreground until interrupted (Ctrl-C). Binds only to `host`."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(db_path, variant=variant, state_path=state_path)
    sock = _bind(host, port)
    log.info("store (variant %s) serving %s at %s", variant, db_path, _url(sock))
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False, lifespan="on"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        close_app(app)
