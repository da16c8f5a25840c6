"""StateStore (sessions, carts, orders) and Analytics (the event log) on their own, including under threads."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sites.store.analytics import FLUSH_EVERY, Analytics
from sites.store.state import MAX_QUANTITY, CartLine, OrderLine, StateStore


def freeze(line: CartLine) -> OrderLine:
    return OrderLine(asin=line.asin, title=f"Item {line.asin}", options=line.options, quantity=line.quantity,
                     unit_price=2.5)


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    s = StateStore(None if request.param == "memory" else tmp_path / "state.db")
    yield s
    s.close()


def test_add_merges_same_item_and_options(store):
    a = store.add_to_cart("s1", "A", {"size": "M", "color": "Navy"}, 1)
    b = store.add_to_cart("s1", "A", {"color": "Navy", "size": "M"}, 2)  # same options, other order
    c = store.add_to_cart("s1", "A", {"size": "L", "color": "Navy"}, 1)
    assert a.id == b.id != c.id and b.quantity == 3
    assert [(line.asin, line.quantity) for line in store.cart("s1")] == [("A", 3), ("A", 1)]
    assert store.cart_count("s1") == 4 and store.cart_count("nobody") == 0


def test_quantity_limits(store):
    with pytest.raises(ValueError, match="at least 1"):
        store.add_to_cart("s", "A", {}, 0)
    line = store.add_to_cart("s", "A", {}, 60)
    assert store.add_to_cart("s", "A", {}, 60).quantity == MAX_QUANTITY, "repeated adds are capped"
    with pytest.raises(ValueError, match="between 1 and 99"):
        store.update_line("s", line.id, 100)


def test_lines_belong_to_their_session(store):
    line = store.add_to_cart("alice", "A", {}, 1)
    assert store.update_line("bob", line.id, 5) is None
    assert store.remove_line("bob", line.id) is None
    assert store.cart("alice")[0].quantity == 1
    assert store.update_line("alice", line.id, 5).quantity == 5
    assert store.remove_line("alice", line.id).asin == "A"
    assert store.cart("alice") == []


def test_place_order_is_atomic_and_private(store):
    assert store.place_order("s", "a", {"full_name": "X"}, freeze) is None, "an empty cart makes no order"
    store.add_to_cart("s", "A", {"size": "M"}, 2)
    store.add_to_cart("s", "B", {}, 1)
    order = store.place_order("s", "b", {"full_name": "X"}, freeze)
    assert order.total == 7.5 and order.item_count == 3 and order.variant == "b"
    assert store.cart("s") == []
    again = store.order("s", order.order_id)
    assert again == order
    assert store.order("someone-else", order.order_id) is None
    assert [o.order_id for o in store.orders("s")] == [order.order_id]


def test_place_order_drops_vanished_products(store):
    store.add_to_cart("s", "GONE", {}, 1)
    assert store.place_order("s", "a", {}, lambda line: None) is None


def test_memo_swap(store):
    assert store.swap_memo("s", "k", "1") is None
    assert store.swap_memo("s", "k", "2") == "1"
    assert store.memo("s", "k") == "2" and store.memo("t", "k") is None


def test_sessions(store):
    s = store.open_session(None, "a")
    assert s.fresh and store.open_session(s.sid, "a") == type(s)(sid=s.sid, visitor=s.visitor, fresh=False)
    t = store.open_session("made-up-by-the-client-0000", "b")
    assert t.fresh and t.sid != "made-up-by-the-client-0000" and t.visitor not in (s.visitor, t.sid)
    assert store.session_count() == 2 and store.visitor_of(s.sid) == s.visitor
    assert len(StateStore.new_session_id()) >= 22 and StateStore.new_session_id() != StateStore.new_session_id()


def test_concurrent_adds_lose_nothing(store):
    """16 threads add to 4 shared carts at once: every increment lands, and no line is duplicated."""
    barrier = threading.Barrier(16)

    def worker(i: int) -> None:
        barrier.wait()
        for j in range(25):
            store.add_to_cart(f"s{i % 4}", f"P{j % 5}", {"size": "M"}, 1)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(worker, range(16)))
    for sid in ("s0", "s1", "s2", "s3"):
        lines = store.cart(sid)
        assert len(lines) == 5 and all(line.quantity == 20 for line in lines), lines


def test_concurrent_orders_take_each_line_once(store):
    """Placing orders from many threads for one session never sells the same cart twice."""
    store.add_to_cart("s", "A", {}, 3)
    with ThreadPoolExecutor(8) as pool:
        orders = [o for o in pool.map(lambda _: store.place_order("s", "a", {}, freeze), range(8)) if o]
    assert len(orders) == 1 and orders[0].item_count == 3


def test_file_store_uses_wal_and_persists(tmp_path):
    path = tmp_path / "state.db"
    s = StateStore(path)
    s.add_to_cart("s", "A", {}, 2)
    s.close()
    s.close()  # idempotent
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s2 = StateStore(path)
    assert s2.cart_count("s") == 2
    s2.close()


# -- analytics ------------------------------------------------------------------------------------------------------

@pytest.fixture(params=["memory", "file"])
def analytics(request, tmp_path):
    a = Analytics(None if request.param == "memory" else tmp_path / "events.db")
    yield a
    a.close()


def test_events_in_order_per_session(analytics):
    analytics.record("s1", "a", "page_view", "/", {})
    analytics.record("s2", "b", "search", "/search?q=x", {"q": "x", "total": 3})
    analytics.record("s1", "a", "search", "/search?q=y", {"q": "y", "total": 0})
    events = analytics.events("s1")
    assert [e["type"] for e in events] == ["page_view", "search"]
    assert events[1]["payload"] == {"q": "y", "total": 0} and events[1]["path"] == "/search?q=y"
    assert events[0]["variant"] == "a" and events[0]["ts"] <= events[1]["ts"]
    sessions = {s["session_id"]: s for s in analytics.sessions()}
    assert sessions["s1"]["events"] == 2 and sessions["s1"]["counts"] == {"page_view": 1, "search": 1}
    assert sessions["s2"]["variant"] == "b"
    assert analytics.events("nobody") == []


def test_unknown_event_type_is_a_programmer_error(analytics):
    with pytest.raises(ValueError, match="unknown analytics event type 'clik'"):
        analytics.record("s", "a", "clik", "/")


def test_writes_are_batched(tmp_path):
    a = Analytics(tmp_path / "events.db")
    for _ in range(FLUSH_EVERY - 1):
        a.record("s", "a", "page_view", "/")
    other = sqlite3.connect(tmp_path / "events.db")
    assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 0, "still buffered"
    a.record("s", "a", "page_view", "/")
    assert other.execute("SELECT count(*) FROM events").fetchone()[0] == FLUSH_EVERY, "one batch written"
    a.record("s", "a", "page_view", "/")
    a.close()
    assert other.execute("SELECT count(*) FROM events").fetchone()[0] == FLUSH_EVERY + 1, "close flushes"
    a.record("s", "a", "page_view", "/")  # after close: dropped, no error


def test_huge_payloads_are_truncated(analytics):
    analytics.record("s", "a", "search", "/search?q=" + "x" * 10_000, {"q": "x" * 10_000})
    [event] = analytics.events("s")
    assert len(event["path"]) <= 2048 and "truncated" in event["payload"]


def test_concurrent_recording(analytics):
    def worker(i: int) -> None:
        for j in range(200):
            analytics.record(f"s{i}", "a", "page_view", f"/{j}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert sum(s["events"] for s in analytics.sessions()) == 1600
    assert [e["path"] for e in analytics.events("s3")] == [f"/{j}" for j in range(200)]
