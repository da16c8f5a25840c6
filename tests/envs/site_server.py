"""A real HTTP server for env tests: static fixture pages plus a few hostile endpoints."""

from __future__ import annotations

import html
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

SITE = Path(__file__).parent / "data" / "site"


class Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(SITE), **kwargs)

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _page(self, title: str, body: str, status: int = 200) -> None:
        data = f"<!doctype html><html><head><title>{title}</title></head><body><main>{body}</main></body></html>"
        raw = data.encode()
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _echo(self, pairs: list[tuple[str, str]], method: str) -> None:
        items = "".join(f"<li>{html.escape(k)}={html.escape(v)}</li>" for k, v in pairs)
        self._page("Echo", f"<h1>{method}</h1><ul aria-label='Fields'>{items}</ul><a href='/index.html'>Home</a>")

    def do_GET(self) -> None:
        path = urlsplit(self.path)
        if path.path == "/echo":
            return self._echo(parse_qsl(path.query, keep_blank_values=True), "GET")
        if path.path == "/cookie":
            who = dict(parse_qsl(path.query)).get("set", "anon")
            body = f"<p>You are {html.escape(who)}</p><a href='/whoami'>Who am I</a>"
            data = f"<!doctype html><html><head><title>Cookie</title></head><body><main>{body}</main></body></html>"
            raw = data.encode()
            self.send_response(200)
            self.send_header("set-cookie", f"who={who}; Path=/; HttpOnly")
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return None
        if path.path == "/whoami":
            cookies = dict(c.strip().split("=", 1) for c in (self.headers.get("cookie") or "").split(";") if "=" in c)
            return self._page("Who", f"<p id='who'>who={html.escape(cookies.get('who', 'nobody'))}</p>")
        if path.path == "/slow":
            time.sleep(float(dict(parse_qsl(path.query)).get("s", "3")))
            return self._page("Slow", "<p>finally</p>")
        if path.path == "/redirect-out":
            self.send_response(302)
            self.send_header("location", "http://evil.invalid/landing")
            self.send_header("content-length", "0")
            self.end_headers()
            return None
        if path.path == "/download.bin":
            raw = b"%PDF-1.4 not really"
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-disposition", "attachment; filename=catalog.pdf")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return None
        return super().do_GET()

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n).decode()
        self._echo(parse_qsl(body, keep_blank_values=True), "POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients that time out on /slow hang up: fine
        pass


class SiteServer:
    def __enter__(self) -> SiteServer:
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
