"""Finding 1 (session takeover) and 8 (sessions never expire): ids are server-issued, private, and expire."""

from __future__ import annotations

import httpx
import pytest

from sites.store.routers.analytics_api import access_mode
from sites.store.server import StoreServer
from sites.store.state import StateStore
from sites.store.web import SESSION_COOKIE


def _add(client: httpx.Client, asin: str) -> None:
    r = client.post("/cart/add", data={"asin": asin, "quantity": "1"})
    assert r.status_code == 303, f"Expect 303 from /cart/add, actually: {r.status_code}"


def test_analytics_ids_do_not_open_sessions(store_url, product_asin):
    """The reproduction: B reads every id from the analytics API and tries each as its cookie; A's cart stays A's."""
    with httpx.Client(base_url=store_url) as alice, httpx.Client(base_url=store_url) as bob:
        _add(alice, product_asin)
        assert product_asin in alice.get("/cart").text
        alice_sid = alice.cookies[SESSION_COOKIE]
        listed = [s["session_id"] for s in bob.get("/api/analytics/sessions").json()["sessions"]]
        assert listed and alice_sid not in listed, "the analytics API must not list session cookies"
        for sid in listed[:50]:
            page = httpx.get(f"{store_url}/cart", headers={"cookie": f"{SESSION_COOKIE}={sid}"})
            assert product_asin not in page.text, f"Expect an empty cart for a stolen analytics id, actually: {sid}'s"
            issued = page.headers.get("set-cookie", "")
            assert issued.startswith(f"{SESSION_COOKIE}=") and sid not in issued, \
                f"Expect a fresh server-issued cookie, actually: {issued!r}"


def test_client_chosen_session_id_is_replaced(store_url, product_asin):
    """Session fixation: a well-formed id the server never issued is not adopted."""
    planted = "attacker-chosen-session-0001"
    with httpx.Client(base_url=store_url, cookies={SESSION_COOKIE: planted}) as victim:
        r = victim.get("/")
        cookie = r.headers.get("set-cookie", "")
        assert cookie.startswith(f"{SESSION_COOKIE}=") and planted not in cookie, \
            f"Expect a fresh session cookie, actually: {cookie!r}"
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        _add(victim, product_asin)
    with httpx.Client(base_url=store_url, cookies={SESSION_COOKIE: planted}) as attacker:
        assert product_asin not in attacker.get("/cart").text, "the planted id reached the victim's cart"


def test_idle_sessions_expire_and_memory_is_bounded():
    store = StateStore(idle_s=0.05, max_sessions=100)
    old = store.open_session(None, "a")
    import time

    time.sleep(0.1)
    again = store.open_session(old.sid, "a")
    assert again.fresh and again.sid != old.sid, "Expect an expired id to get a fresh session, actually: reused"
    for _ in range(1000):
        store.open_session(None, "a")
    store.purge()
    assert store.session_count() <= 100, f"Expect at most 100 live sessions, actually: {store.session_count()}"


def test_analytics_access_beyond_loopback():
    assert access_mode("127.0.0.1", None) == "open" and access_mode("::1", None) == "open"
    assert access_mode("0.0.0.0", None) == "off" and access_mode("192.168.1.5", None) == "off"
    assert access_mode("0.0.0.0", "t0ken") == "token"


@pytest.fixture(scope="module")
def token_store(store_db):
    with StoreServer(store_db, analytics_token="s3cret-token") as server:
        yield server


def test_analytics_token_is_required(token_store):
    with httpx.Client(base_url=token_store.url) as client:
        client.get("/")
        assert client.get("/api/analytics/sessions").status_code == 401
        bad = client.get("/api/analytics/sessions", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
        good = client.get("/api/analytics/sessions", headers={"authorization": "Bearer s3cret-token"})
        assert good.status_code == 200 and good.json()["count"] >= 1


def test_analytics_api_is_read_only(store_url):
    with httpx.Client(base_url=store_url) as client:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            r = client.request(method, "/api/analytics/sessions", json={"session_id": "x", "type": "purchase"})
            assert r.status_code == 405, f"Expect 405 for {method}, actually: {r.status_code}"
