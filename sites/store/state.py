"""The store's mutable state: visitor sessions, their carts and their orders.

Everything lives in one SQLite database (a file, or private memory when no path is given) behind **one connection
guarded by one lock**. Why not a connection per thread: FastAPI runs the sync endpoints in a thread pool, every
operation here is a short transaction on a few rows (tens of microseconds), and SQLite serialises writers anyway. A
single lock makes each method atomic as a whole, including the read-modify-write ones ("add 1 to the line that already
holds this item", "turn the cart into an order and empty it"), without busy-retry loops; and it works the same for an
in-memory database, which per-thread connections cannot share. A file-backed store uses WAL so that other processes
(a notebook reading orders) can read while the server writes.

The catalog is not here: it is read-only and shared (`catalog.py`). Prices are snapshotted into orders when placed.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAX_QUANTITY = 99  # per cart line; larger requests are refused by the routers, repeated adds are capped here
SESSION_IDLE_S = 2 * 3600.0  # a session unused this long expires: its id stops working, its cart and memo go
MAX_SESSIONS = 20_000  # live sessions kept at most; beyond it the least recently seen are expired first
PURGE_EVERY = 256  # new sessions between two sweeps for expired ones

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    sid TEXT PRIMARY KEY,           -- the cookie: a credential, never shown anywhere
    variant TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    visitor TEXT NOT NULL DEFAULT '' -- the id analytics uses for this visitor: not a credential
);
CREATE TABLE IF NOT EXISTS memo (
    sid TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (sid, key)
);
CREATE TABLE IF NOT EXISTS cart_lines (
    id INTEGER PRIMARY KEY,
    sid TEXT NOT NULL,
    asin TEXT NOT NULL,
    options TEXT NOT NULL,          -- JSON {group: value}, keys sorted
    quantity INTEGER NOT NULL,
    added REAL NOT NULL,
    UNIQUE (sid, asin, options)
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    sid TEXT NOT NULL,
    created REAL NOT NULL,
    variant TEXT NOT NULL,
    shipping TEXT NOT NULL,         -- JSON {field: value}
    lines TEXT NOT NULL,            -- JSON [OrderLine]
    total REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cart_lines_sid ON cart_lines(sid, id);
CREATE INDEX IF NOT EXISTS orders_sid ON orders(sid, created);
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions(last_seen);
"""


@dataclass(frozen=True)
class CartLine:
    """One line of a cart: a product with a choice of options, and how many."""

    id: int
    asin: str
    options: dict[str, str]
    quantity: int


@dataclass(frozen=True)
class OrderLine:
    """A cart line frozen at purchase time, with the title and unit price it had then."""

    asin: str
    title: str
    options: dict[str, str]
    quantity: int
    unit_price: float

    @property
    def line_total(self) -> float:
        return round(self.unit_price * self.quantity, 2)


@dataclass(frozen=True)
class Order:
    order_id: str
    created: float
    variant: str
    shipping: dict[str, str]
    lines: list[OrderLine] = field(default_factory=list)
    total: float = 0.0

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def fee(self) -> float:
        """What the total charges beyond the items (a checkout fee; 0.0 in most variants)."""
        return round(self.total - sum(line.line_total for line in self.lines), 2)


def _options_key(options: dict[str, str]) -> str:
    return json.dumps(dict(sorted(options.items())), ensure_ascii=False)


@dataclass(frozen=True)
class Session:
    """A visitor's session as the server knows it. `sid` is the cookie (a secret); `visitor` is for analytics."""

    sid: str
    visitor: str
    fresh: bool  # issued by this request: the response must set the cookie


class StateStore:
    """Sessions, carts and orders for one store server. All methods are thread-safe.

    Session ids are issued only by `open_session`: an id the server did not issue (or one that expired) is never
    adopted, so a visitor cannot choose another's session (fixation) and a stale cookie starts afresh.
    """

    def __init__(self, path: str | Path | None = None, idle_s: float = SESSION_IDLE_S,
                 max_sessions: int = MAX_SESSIONS):
        if idle_s <= 0 or max_sessions < 1:
            raise ValueError(f"Expect idle_s > 0 and max_sessions >= 1, actually: {idle_s}, {max_sessions}")
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._created_since_purge = 0
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False,
                                     isolation_level=None)
        if self.path is not None:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(sessions)")}
        if columns and "visitor" not in columns:  # a state file from before visitor ids
            self._conn.execute("ALTER TABLE sessions ADD COLUMN visitor TEXT NOT NULL DEFAULT ''")
        self._conn.executescript(SCHEMA)
        self._closed = False

    # -- sessions ----------------------------------------------------------------------------------------------------

    @staticmethod
    def new_session_id() -> str:
        """A fresh unguessable session id (22 URL-safe characters)."""
        return secrets.token_urlsafe(16)

    def open_session(self, sid: str | None, variant: str) -> Session:
        """The live session `sid` names (its idle clock restarted), or a fresh one when `sid` is unknown or expired."""
        now = time.time()
        with self._lock:
            if sid:
                row = self._conn.execute("SELECT visitor, last_seen FROM sessions WHERE sid = ?", (sid,)).fetchone()
                if row is not None and now - row[1] <= self.idle_s:
                    self._conn.execute("UPDATE sessions SET last_seen = ? WHERE sid = ?", (now, sid))
                    return Session(sid=sid, visitor=row[0] or sid, fresh=False)
                if row is not None:
                    self._forget_locked([sid])
            session = Session(sid=self.new_session_id(), visitor="v-" + secrets.token_hex(8), fresh=True)
            self._conn.execute(
                "INSERT INTO sessions (sid, variant, created, last_seen, visitor) VALUES (?, ?, ?, ?, ?)",
                (session.sid, variant, now, now, session.visitor))
            self._created_since_purge += 1
            if self._created_since_purge >= PURGE_EVERY:
                self._purge_locked(now)
        return session

    def visitor_of(self, sid: str) -> str | None:
        """The analytics id of the session `sid`, or None when there is no such session."""
        with self._lock:
            row = self._conn.execute("SELECT visitor FROM sessions WHERE sid = ?", (sid,)).fetchone()
        return (row[0] or sid) if row else None

    def purge(self) -> int:
        """Expire idle sessions now (and the oldest beyond `max_sessions`); returns how many went."""
        with self._lock:
            return self._purge_locked(time.time())

    def _purge_locked(self, now: float) -> int:
        self._created_since_purge = 0
        stale = [r[0] for r in self._conn.execute("SELECT sid FROM sessions WHERE last_seen < ?", (now - self.idle_s,))]
        live = self._conn.execute("SELECT count(*) FROM sessions").fetchone()[0] - len(stale)
        if live > self.max_sessions:
            stale += [r[0] for r in self._conn.execute(
                "SELECT sid FROM sessions WHERE last_seen >= ? ORDER BY last_seen LIMIT ?",
                (now - self.idle_s, live - self.max_sessions))]
        self._forget_locked(stale)
        if stale:
            log.info("expired %d idle sessions", len(stale))
        return len(stale)

    def _forget_locked(self, sids: list[str]) -> None:
        """Drop sessions with their carts and memo. Orders stay (they are records of sales)."""
        for i in range(0, len(sids), 500):
            chunk = sids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for table in ("sessions", "memo", "cart_lines"):
                self._conn.execute(f"DELETE FROM {table} WHERE sid IN ({marks})", chunk)

    def session_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def swap_memo(self, sid: str, key: str, value: str) -> str | None:
        """Store `value` under (sid, key) and return what was there before (None the first time).

        The routers use it to tell a refinement from a new search, and an option pick from a first product view.
        """
        with self._lock:
            row = self._conn.execute("SELECT value FROM memo WHERE sid = ? AND key = ?", (sid, key)).fetchone()
            self._conn.execute("INSERT OR REPLACE INTO memo (sid, key, value) VALUES (?, ?, ?)", (sid, key, value))
        return row[0] if row else None

    def memo(self, sid: str, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM memo WHERE sid = ? AND key = ?", (sid, key)).fetchone()
        return row[0] if row else None

    # -- carts -------------------------------------------------------------------------------------------------------

    def cart(self, sid: str) -> list[CartLine]:
        """The session's cart lines, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, asin, options, quantity FROM cart_lines WHERE sid = ? ORDER BY id", (sid,)).fetchall()
        return [CartLine(id=r[0], asin=r[1], options=json.loads(r[2]), quantity=r[3]) for r in rows]

    def cart_count(self, sid: str) -> int:
        """How many items (sum of quantities) the session's cart holds."""
        with self._lock:
            return self._conn.execute(
                "SELECT coalesce(sum(quantity), 0) FROM cart_lines WHERE sid = ?", (sid,)).fetchone()[0]

    def add_to_cart(self, sid: str, asin: str, options: dict[str, str], quantity: int) -> CartLine:
        """Add `quantity` of (asin, options); the same item twice makes one line. Capped at MAX_QUANTITY per line."""
        if quantity < 1:
            raise ValueError(f"quantity must be at least 1, got {quantity}")
        key = _options_key(options)
        with self._lock:
            self._conn.execute(
                "INSERT INTO cart_lines (sid, asin, options, quantity, added) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(sid, asin, options) DO UPDATE SET quantity = min(quantity + excluded.quantity, ?)",
                (sid, asin, key, min(quantity, MAX_QUANTITY), time.time(), MAX_QUANTITY))
            row = self._conn.execute(
                "SELECT id, quantity FROM cart_lines WHERE sid = ? AND asin = ? AND options = ?",
                (sid, asin, key)).fetchone()
        return CartLine(id=row[0], asin=asin, options=json.loads(key), quantity=row[1])

    def update_line(self, sid: str, line_id: int, quantity: int) -> CartLine | None:
        """Set a line's quantity. None when the session has no such line."""
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError(f"quantity must be between 1 and {MAX_QUANTITY}, got {quantity}")
        with self._lock:
            cur = self._conn.execute("UPDATE cart_lines SET quantity = ? WHERE id = ? AND sid = ?",
                                     (quantity, line_id, sid))
            if cur.rowcount == 0:
                return None
            row = self._conn.execute("SELECT asin, options FROM cart_lines WHERE id = ?", (line_id,)).fetchone()
        return CartLine(id=line_id, asin=row[0], options=json.loads(row[1]), quantity=quantity)

    def remove_line(self, sid: str, line_id: int) -> CartLine | None:
        """Delete a line; returns it, or None when the session has no such line."""
        with self._lock:
            row = self._conn.execute("SELECT asin, options, quantity FROM cart_lines WHERE id = ? AND sid = ?",
                                     (line_id, sid)).fetchone()
            if row is None:
                return None
            self._conn.execute("DELETE FROM cart_lines WHERE id = ? AND sid = ?", (line_id, sid))
        return CartLine(id=line_id, asin=row[0], options=json.loads(row[1]), quantity=row[2])

    # -- orders ------------------------------------------------------------------------------------------------------

    def place_order(self, sid: str, variant: str, shipping: dict[str, str],
                    describe: Callable[[CartLine], OrderLine | None],
                    fee: Callable[[float], float] = lambda subtotal: 0.0) -> Order | None:
        """Turn the session's cart into an order and empty the cart, atomically. None when the cart is empty.

        `describe` prices one line from the catalog (None drops a line whose product vanished); `fee` is what the
        order charges on top of a subtotal (the total includes it).
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, asin, options, quantity FROM cart_lines WHERE sid = ? ORDER BY id", (sid,)).fetchall()
            described = [describe(CartLine(id=r[0], asin=r[1], options=json.loads(r[2]), quantity=r[3])) for r in rows]
            lines = [line for line in described if line is not None]
            if not lines:
                return None
            subtotal = round(sum(line.line_total for line in lines), 2)
            order = Order(order_id=f"{time.strftime('%Y%m%d')}-{secrets.token_hex(5).upper()}", created=time.time(),
                          variant=variant, shipping=dict(shipping), lines=lines,
                          total=round(subtotal + fee(subtotal), 2))
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO orders (order_id, sid, created, variant, shipping, lines, total)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (order.order_id, sid, order.created, variant, json.dumps(order.shipping, ensure_ascii=False),
                     json.dumps([asdict(line) for line in lines], ensure_ascii=False), order.total))
                self._conn.execute("DELETE FROM cart_lines WHERE sid = ?", (sid,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        log.info("order %s placed: %d items, $%.2f", order.order_id, order.item_count, order.total)
        return order

    def order(self, sid: str, order_id: str) -> Order | None:
        """The session's order with this id; other sessions' orders are invisible (None)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT order_id, created, variant, shipping, lines, total FROM orders WHERE order_id = ? AND sid = ?",
                (order_id, sid)).fetchone()
        if row is None:
            return None
        return Order(order_id=row[0], created=row[1], variant=row[2], shipping=json.loads(row[3]),
                     lines=[OrderLine(**d) for d in json.loads(row[4])], total=row[5])

    def orders(self, sid: str) -> list[Order]:
        with self._lock:
            ids = [r[0] for r in self._conn.execute(
                "SELECT order_id FROM orders WHERE sid = ? ORDER BY created", (sid,)).fetchall()]
        return [o for o in (self.order(sid, i) for i in ids) if o is not None]

    def close(self) -> None:
        """Close the database. Idempotent."""
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True
