"""A server-side event log of what each visitor does, for A/B analysis of shopper agents.

Each event has a session id, the layout variant, a timestamp, the request path (with its query) and a small JSON
payload. Events are buffered in memory and written with one `executemany` per batch (at most `FLUSH_EVERY` events or
`FLUSH_SECONDS` old, and at every purchase), so recording costs a list append under a lock. Reads flush first, so they
always see every event. With a state file, a crash loses at most the buffered events since the last flush, never those
up to a purchase.

The `sid` column holds the visitor's analytics id (`StateStore.open_session`), never the session cookie.

Event types, in the order a shopper usually meets them:
`page_view`, `search` (query + result count), `refine` (department/brand/price/rating changed), `sort`, `paginate`,
`product_view`, `option_select`, `add_to_cart`, `buy_now`, `cart_update`, `cart_remove`, `checkout_view`, `purchase`,
`error` (a 4xx page was shown).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EVENT_TYPES: tuple[str, ...] = (
    "page_view", "search", "refine", "sort", "paginate", "product_view", "option_select", "add_to_cart", "buy_now",
    "cart_update", "cart_remove", "checkout_view", "purchase", "error",
)
FLUSH_EVERY = 64
FLUSH_SECONDS = 1.0
MAX_PATH_CHARS = 2048
MAX_PAYLOAD_CHARS = 4096

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    sid TEXT NOT NULL,
    variant TEXT NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    path TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_sid ON events(sid, id);
"""


class Analytics:
    """The event log. Thread-safe; `record` is cheap, reads flush the buffer first."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False)
        if self.path is not None:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)
        self._buffer: list[tuple[str, str, float, str, str, str]] = []
        self._last_flush = time.monotonic()
        self._closed = False

    def record(self, sid: str, variant: str, type: str, path: str, payload: dict[str, Any] | None = None) -> None:
        """Log one event. `type` must be one of EVENT_TYPES; the payload is truncated if it is huge."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown analytics event type {type!r}; expected one of {EVENT_TYPES}")
        body = json.dumps(payload or {}, ensure_ascii=False, default=str)
        if len(body) > MAX_PAYLOAD_CHARS:
            body = json.dumps({"truncated": body[:MAX_PAYLOAD_CHARS]}, ensure_ascii=False)
        event = (sid, variant, time.time(), type, path[:MAX_PATH_CHARS], body)
        with self._lock:
            if self._closed:
                return
            self._buffer.append(event)
            due = len(self._buffer) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS
            if due or type == "purchase":
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._buffer:
            with self._conn:
                self._conn.executemany(
                    "INSERT INTO events (sid, variant, ts, type, path, payload) VALUES (?, ?, ?, ?, ?, ?)",
                    self._buffer)
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def sessions(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Sessions, most recently active first: id, variant, first/last timestamp, event count and counts by type."""
        with self._lock:
            self._flush_locked()
            rows = self._conn.execute(
                "SELECT sid, max(variant), min(ts), max(ts), count(*) FROM events GROUP BY sid"
                " ORDER BY max(ts) DESC LIMIT ?", (limit,)).fetchall()
            sids = [r[0] for r in rows]
            counts: dict[str, dict[str, int]] = {sid: {} for sid in sids}
            if sids:
                marks = ",".join("?" * len(sids))
                for sid, type_, n in self._conn.execute(
                        f"SELECT sid, type, count(*) FROM events WHERE sid IN ({marks}) GROUP BY sid, type", sids):
                    counts[sid][type_] = n
        return [{"session_id": sid, "variant": variant, "first_ts": first, "last_ts": last, "events": n,
                 "counts": dict(sorted(counts[sid].items()))} for sid, variant, first, last, n in rows]

    def events(self, sid: str) -> list[dict[str, Any]]:
        """The session's events in the order they happened."""
        with self._lock:
            self._flush_locked()
            rows = self._conn.execute(
                "SELECT id, ts, type, variant, path, payload FROM events WHERE sid = ? ORDER BY id", (sid,)).fetchall()
        return [{"seq": i, "ts": ts, "type": type_, "variant": variant, "path": path, "payload": json.loads(payload)}
                for i, ts, type_, variant, path, payload in rows]

    def close(self) -> None:
        """Flush and close. Idempotent; events recorded afterwards are dropped."""
        with self._lock:
            if not self._closed:
                self._flush_locked()
                self._conn.close()
                self._closed = True
