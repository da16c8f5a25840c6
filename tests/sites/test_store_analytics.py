"""The analytics API: a shopper's journey comes back as typed events, per session, with the variant."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from store_fixtures import MUG, SHIRT, build_test_catalog, soup

from sites.store.app import create_app


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory):
    return build_test_catalog(tmp_path_factory.mktemp("store") / "catalog.db")


@pytest.fixture(params=["a", "b"])
def app(request, catalog_path):
    return create_app(catalog_path, variant=request.param)


def sid_of(client: TestClient) -> str:
    """The visitor's analytics id (not its session cookie)."""
    client.get("/")
    visitor = client.app.state.store.visitor_of(client.cookies["shop_sid"])
    assert visitor is not None and visitor != client.cookies["shop_sid"]
    return visitor


def journey(client: TestClient) -> None:
    client.get("/")
    client.get("/search?q=running+shoes")
    client.get("/search?q=running+shoes&brand=Acme")
    client.get("/search?q=running+shoes&brand=Acme&sort=price_asc")
    client.get("/search?q=running+shoes&brand=Acme&sort=price_asc&page=2")
    client.get("/search?q=running+shoes&brand=Acme&sort=price_asc&page=2")  # a reload: only a page view
    client.get(f"/product/{SHIRT}")
    client.get(f"/product/{SHIRT}?size=m")
    client.get(f"/product/{SHIRT}?size=m&color=navy")
    client.post("/cart/add", data={"asin": SHIRT, "quantity": "2", "option_size": "M", "option_color": "Navy"})
    line_id = soup(client.get("/cart")).find("input", attrs={"name": "line_id"})["value"]
    client.post("/cart/update", data={"line_id": line_id, "quantity": "3"})
    client.post("/buy-now", data={"asin": MUG}, follow_redirects=False)
    form = soup(client.get("/checkout")).find("form", id="checkout-form")
    client.post("/checkout", data={i["name"]: i["value"] for i in form.find_all("input")})


def test_session_events_in_order(app):
    variant = app.state.variant.name
    with TestClient(app) as client:
        sid = sid_of(client)
        journey(client)
        r = client.get(f"/api/analytics/sessions/{sid}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
    assert body["session_id"] == sid and body["variant"] == variant
    events = body["events"]
    kinds = [e["type"] for e in events if e["type"] != "page_view"]
    assert kinds == ["search", "refine", "sort", "paginate", "product_view", "option_select", "option_select",
                     "add_to_cart", "cart_update", "buy_now", "checkout_view", "purchase"]
    assert all(e["variant"] == variant and e["ts"] > 0 for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    by_type = {e["type"]: e for e in events}
    assert by_type["search"]["payload"]["q"] == "running shoes" and by_type["search"]["payload"]["total"] == 30
    assert by_type["refine"]["payload"]["changed"] == {"brand": [None, "Acme"]}
    assert by_type["refine"]["payload"]["total"] == 10
    assert by_type["sort"]["payload"] == {**by_type["sort"]["payload"], "from": "relevance", "to": "price_asc"}
    assert by_type["product_view"]["payload"]["asin"] == SHIRT
    assert by_type["option_select"]["payload"]["selection"] == {"size": "M", "color": "Navy"}
    assert by_type["add_to_cart"]["payload"] == {"asin": SHIRT, "options": {"color": "Navy", "size": "M"},
                                                 "quantity": 2, "line_quantity": 2}
    assert by_type["purchase"]["payload"]["items"] == 4 and by_type["purchase"]["payload"]["total"] == 57.47
    assert by_type["search"]["path"] == "/search?q=running+shoes"
    page_views = [e for e in events if e["type"] == "page_view"]
    assert len(page_views) == 15 and page_views[0]["path"] == "/"


def test_sessions_listing_and_isolation(app):
    with TestClient(app) as alice, TestClient(app) as bob:
        a, b = sid_of(alice), sid_of(bob)
        alice.get("/search?q=mug")
        bob.get(f"/product/{MUG}")
        listing = alice.get("/api/analytics/sessions").json()
        sessions = {s["session_id"]: s for s in listing["sessions"]}
        assert {a, b} <= set(sessions) and listing["count"] == len(listing["sessions"])
        assert sessions[a]["counts"] == {"page_view": 2, "search": 1}
        assert sessions[b]["counts"] == {"page_view": 2, "product_view": 1}
        assert sessions[a]["first_ts"] <= sessions[a]["last_ts"]
        assert all(e["type"] != "product_view" for e in alice.get(f"/api/analytics/sessions/{a}").json()["events"])


def test_errors_are_logged(app):
    with TestClient(app) as client:
        sid = sid_of(client)
        client.get("/product/NOPE")
        client.get("/search?page=0")
        events = client.get(f"/api/analytics/sessions/{sid}").json()["events"]
    statuses = [e["payload"]["status"] for e in events if e["type"] == "error"]
    assert statuses == [404, 422]


def test_unknown_session_is_a_json_404(app):
    with TestClient(app) as client:
        r = client.get("/api/analytics/sessions/nobody")
        assert r.status_code == 404 and r.json()["detail"].startswith("no analytics events")
        assert client.get("/api/analytics/sessions?limit=0").status_code == 422


def test_events_survive_in_a_state_file(catalog_path, tmp_path):
    state = tmp_path / "state.db"
    with TestClient(create_app(catalog_path, state_path=state)) as client:
        sid = sid_of(client)
        client.get("/search?q=mug")
    with TestClient(create_app(catalog_path, state_path=state)) as client:
        events = client.get(f"/api/analytics/sessions/{sid}").json()["events"]
    assert [e["type"] for e in events] == ["page_view", "page_view", "search"]
