"""Running the store over HTTP: in a background thread (tests, envs) or in the foreground (the CLI)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from fastapi import FastAPI

from ..serving import ThreadedServer, serve_foreground
from .app import close_app, create_app
from .routers.analytics_api import access_mode

log = logging.getLogger(__name__)


class StoreServer:
    """The store served by uvicorn in a background thread.

    >>> with StoreServer("catalog.db", variant="b") as server:  # doctest: +SKIP
    ...     httpx.get(server.url + "/search?q=shoes")

    `start()` returns once the server accepts connections; `stop()` is idempotent.
    """

    def __init__(self, db_path: str | Path, variant: str = "a", host: str = "127.0.0.1", port: int = 0,
                 state_path: str | Path | None = None, log_level: str = "warning", analytics_token: str | None = None,
                 page_delay: float | None = None):
        self.db_path = Path(db_path)
        self.analytics_token = analytics_token
        self.variant = variant
        self.page_delay = page_delay
        self.host = host
        self.port = port
        self.state_path = state_path
        self.log_level = log_level
        self._app: FastAPI | None = None
        self._http: ThreadedServer | None = None

    @property
    def app(self) -> FastAPI:
        """The running app (its `state` holds the catalog, the state store and the event log). Only once started."""
        if self._app is None:
            raise RuntimeError("StoreServer.app: the server is not started; call start() first")
        return self._app

    @property
    def url(self) -> str:
        """The base URL, e.g. 'http://127.0.0.1:54321' (no trailing slash). Only once started."""
        if self._http is None:
            raise RuntimeError("StoreServer.url: the server is not started; call start() first")
        return self._http.url

    def start(self, timeout: float = 30.0) -> StoreServer:
        """Bind, start serving in a daemon thread, and wait until it accepts connections."""
        if self._http is not None and self._http.running:
            return self
        self._app = create_app(self.db_path, variant=self.variant, state_path=self.state_path,
                               analytics_access=access_mode(self.host, self.analytics_token),
                               analytics_token=self.analytics_token, page_delay=self.page_delay)
        self._http = ThreadedServer(self._app, self.host, self.port, self.log_level, name="store server")
        try:
            self._http.start(timeout)
        except BaseException:
            self.stop()
            raise
        log.info("store (variant %s) serving %s at %s", self.variant, self.db_path, self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down and wait for the thread. Safe to call more than once, or before start()."""
        if self._http is not None:
            self._http.stop(timeout)
        if self._app is not None:
            close_app(self._app)
        self._app = None  # the URL stays readable after stop(), for messages

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_forever(db_path: str | Path, host: str = "127.0.0.1", port: int = 8000, variant: str = "a",
                  state_path: str | Path | None = None, analytics_token: str | None = None,
                  page_delay: float | None = None) -> None:
    """Serve the store in the foreground until interrupted (Ctrl-C). Binds only to `host`.

    Beyond loopback the analytics API needs `analytics_token` (and is off without one).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    access = access_mode(host, analytics_token)
    app = create_app(db_path, variant=variant, state_path=state_path, analytics_access=access,
                     analytics_token=analytics_token, page_delay=page_delay)
    log.info("store (variant %s) serving %s at http://%s:%d; state %s; analytics API %s", variant, db_path, host, port,
             state_path or "in memory (lost on exit)", access)
    try:
        serve_foreground(app, host, port)
    finally:
        close_app(app)
