"""Hostile HTTP servers for the security tests, on 127.0.0.1 only: pages that never answer, trickle, redirect away,
open popups, fake a purchase with pushState, or are too large. `foreign` is a second origin (another port)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HUGE_CHARS = 6_000_000  # above envs.simplify.MAX_PAGE_CHARS


def page(title: str, body: str, head: str = "") -> bytes:
    return (f"<!doctype html><html><head><title>{title}</title>{head}</head>"
            f"<body><main>{body}</main></body></html>").encode()


class HostileServer:
    """A ThreadingHTTPServer on a free loopback port. `other` is where the redirecting pages send the visitor."""

    def __init__(self, other: str = "") -> None:
        self.other = other
        self.hits: list[str] = []
        self.stop_event = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.hits.append(self.path)
                route = getattr(server, "get_" + urlsplit(self.path).path.strip("/").replace("-", "_"), None)
                if route is None:
                    return self.send(page("Home", server.home()))
                return route(self)

            def send(self, raw: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def home(self) -> str:
        links = ["never", "trickle", "huge", "redirect-away", "bounce", "pushstate", "popup", "plain"]
        return "<h1>Hostile</h1>" + "".join(f"<p><a href='/{name}'>{name}</a></p>" for name in links)

    # -- the hostile pages ----------------------------------------------------------------------------------------
    def get_plain(self, h) -> None:
        h.send(page("Plain", "<p>plain page</p><a href='/'>home</a>"))

    def get_never(self, h) -> None:
        """Reads the request and never answers."""
        self.stop_event.wait(600)

    def get_trickle(self, h) -> None:
        """Headers at once, then one byte every 0.3 s, for as long as the client listens."""
        h.send_response(200)
        h.send_header("content-type", "text/html; charset=utf-8")
        h.end_headers()
        h.wfile.write(b"<!doctype html><html><body><main>")
        try:
            while not self.stop_event.wait(0.3):
                h.wfile.write(b"x")
                h.wfile.flush()
        except OSError:
            pass

    def get_huge(self, h) -> None:
        h.send(page("Huge", "<p>" + "y" * HUGE_CHARS + "</p><a href='/'>after the text</a>"))

    def get_redirect_away(self, h) -> None:
        h.send(b"", 302, {"location": f"{self.other}/landing?leaked=1"})

    def get_bounce(self, h) -> None:
        """Through the other origin and back: the chain leaves even though it ends here."""
        h.send(b"", 302, {"location": f"{self.other}/back?to={self.url}/plain"})

    def get_back(self, h) -> None:
        target = urlsplit(h.path).query.removeprefix("to=")
        h.send(b"", 302, {"location": target})

    def get_landing(self, h) -> None:
        h.send(page("Foreign", "<p>foreign page</p>"))

    def get_js_away(self, h) -> None:
        h.send(page("Away", "<p>leaving</p>", f"<script>location.href = '{self.other}/landing';</script>"))

    def get_meta_away(self, h) -> None:
        h.send(page("Away", "<p>leaving</p>", f"<meta http-equiv='refresh' content='0;url={self.other}/landing'>"))

    def get_meta_later(self, h) -> None:
        """A refresh that fires seconds after the load: the shopper must not be shown a page that is leaving."""
        refresh = f"<meta http-equiv='Refresh' content=\"3; URL='{self.other}/landing'\">"
        h.send(page("Away", "<p>leaving soon</p>", refresh))

    def get_pushstate(self, h) -> None:
        h.send(page("Fake", "<p>not an order</p><a href='/'>home</a>",
                    "<script>history.pushState({}, '', '/order/FAKE');</script>"))

    def get_popup(self, h) -> None:
        h.send(page("Popup", "<p>opens a window</p><a href='/plain'>plain</a>",
                    f"<script>window.open('{self.other}/landing'); window.open('/plain');</script>"))

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        time.sleep(0.05)
