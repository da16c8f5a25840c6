"""The known-effect variants (`sites.store.variants`): each makes its one change, and no shopper can see its name."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from store_fixtures import MUG, SHIRT, XSS, build_test_catalog, soup, text_of
from typer.testing import CliRunner

from sites.store.app import create_app
from sites.store.cli import app as store_cli
from sites.store.server import StoreServer
from sites.store.variants import VARIANT_NAMES, VARIANTS, get_variant_spec

SHIP = {"full_name": "Ada L", "address": "1 Main St", "city": "Springfield", "region": "IL",
        "postal_code": "62701", "country": "USA"}
PAGES = ["/", "/search?q=running+shoes", "/search", f"/product/{SHIRT}?size=m&color=white", "/cart", "/checkout"]


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory):
    return build_test_catalog(tmp_path_factory.mktemp("store") / "catalog.db")


def client_for(catalog_path, variant: str) -> TestClient:
    return TestClient(create_app(catalog_path, variant=variant, page_delay=0.0 if variant == "slow" else None))


@pytest.fixture(params=VARIANT_NAMES)
def any_client(request, catalog_path):
    with client_for(catalog_path, request.param) as c:
        yield c


def _buy_mug(c: TestClient) -> httpx.Response:
    r = c.post("/cart/add", data={"asin": MUG, "quantity": "2"}, follow_redirects=False)
    assert r.status_code == 303
    return r


# -- every variant --------------------------------------------------------------------------------------------------

def test_every_variant_is_documented():
    assert VARIANT_NAMES[:2] == ("a", "b") and len(VARIANT_NAMES) == 8
    for name, spec in VARIANTS.items():
        assert spec.name == name and spec.description and spec.expected
        if name not in ("a", "b"):
            assert spec.expected.startswith("worse"), name
    with pytest.raises(ValueError, match=r"Expect a variant in a, b, .*price-shock; actually: 'fast'"):
        get_variant_spec("fast")
    with pytest.raises(ValueError, match="Expect 0 <= delay_s <= 60 seconds, actually: -1"):
        get_variant_spec("slow", delay_s=-1)


def test_no_page_names_the_variant(any_client):
    """Bodies, headers, cookies and redirect URLs of a whole journey: no variant's name anywhere."""
    c = any_client
    seen: list[str] = []
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 200, path
        seen += [r.text, str(r.headers), str(r.url)]
    seen.append(str(_buy_mug(c).headers))
    r = c.post("/checkout", data=SHIP, follow_redirects=False)
    assert r.status_code == 303
    seen += [str(r.headers), c.get(r.headers["location"]).text, str(dict(c.cookies))]
    blob = "\n".join(seen)
    assert "variant" not in blob.lower()
    for name in VARIANT_NAMES:
        if len(name) > 1:
            assert name not in blob, name
    for attr in re.findall(r'(?:class|id|data-[\w-]+)="([^"]*)"', blob):
        assert not set(attr.split()) & {"a", "b"}, attr  # not even the one-letter names, as a class or id


def test_catalog_text_stays_escaped(any_client):
    r = any_client.get(f"/product/{XSS}")
    assert r.status_code == 200 and "<script>" not in r.text and "<b>Evil</b>" not in r.text
    assert text_of(soup(r).find("h1")) == "<script>alert(1)</script> Gadget"
    assert "<script>" not in any_client.get("/search?q=gadget").text


# -- one change each ------------------------------------------------------------------------------------------------

def test_hidden_search_keeps_the_box_on_the_home_page_only(catalog_path):
    with client_for(catalog_path, "hidden-search") as c:
        assert soup(c.get("/")).find("form", attrs={"role": "search"}) is not None
        for path in PAGES[1:]:
            page = soup(c.get(path))
            assert page.find("form", attrs={"role": "search"}) is None and not page.find("input", type="search"), path
            link = page.find("a", id="search-link")
            assert text_of(link) == "Search" and link["href"] == "/"
        assert c.get("/search?q=running+shoes").status_code == 200, "searching by URL still works"
    with client_for(catalog_path, "a") as c:
        assert soup(c.get("/search?q=shoes")).find("form", attrs={"role": "search"}) is not None


def test_no_filters_has_no_refinements_but_keeps_sorting(catalog_path):
    with client_for(catalog_path, "no-filters") as c:
        page = soup(c.get("/search?q=running+shoes"))
        assert page.find(id="refinements") is None and "Filter results" not in page.text
        assert page.find("nav", id="sort") is not None and len(page.select("#search-results article")) == 10
    with client_for(catalog_path, "a") as c:
        assert soup(c.get("/search?q=running+shoes")).find(id="refinements") is not None


def test_unlabeled_buttons_have_no_accessible_name_and_still_work(catalog_path):
    with client_for(catalog_path, "unlabeled-buttons") as c:
        r = c.get(f"/product/{SHIRT}?size=m&color=white")
        buttons = soup(r).find("form", id="buy-box").find_all("button")
        assert len(buttons) == 2
        for b in buttons:
            assert text_of(b) == "" and not b.get("aria-label") and not b.get("title") and not b.get("id")
            assert b.find("svg")["aria-hidden"] == "true"
        assert "Add to Cart" not in r.text and "Buy Now" not in r.text
        # The icons do what the labelled buttons do.
        form = {"asin": SHIRT, "quantity": "1", "option_size": "M", "option_color": "White"}
        assert c.post("/cart/add", data=form, follow_redirects=False).headers["location"].startswith("/cart")
        assert c.post("/buy-now", data=form, follow_redirects=False).headers["location"] == "/checkout"
    with client_for(catalog_path, "a") as c:
        texts = [text_of(b) for b in soup(c.get(f"/product/{SHIRT}")).find("form", id="buy-box").find_all("button")]
        assert texts == ["Add to Cart", "Buy Now"]


def _prices(r: httpx.Response) -> list[float]:
    return [float(text_of(p).strip("$")) for p in soup(r).select("#search-results .price")]


def test_bad_ranking_orders_by_price_while_saying_relevance(catalog_path):
    with client_for(catalog_path, "bad-ranking") as c:
        r = c.get("/search?q=running+shoes")
        prices = _prices(r)
        assert prices == sorted(prices, reverse=True) and prices[0] == 165.0  # the dearest of the 30 shoes first
        assert text_of(soup(r).find(class_="sort-selected")) == "Relevance"
        cheap = _prices(c.get("/search?q=running+shoes&sort=price_asc"))
        assert cheap == sorted(cheap), "an explicit sort is honoured"
    with client_for(catalog_path, "a") as c:
        relevance = _prices(c.get("/search?q=running+shoes"))
    assert relevance != prices


def test_slow_answers_pages_later_and_assets_at_once(catalog_path):
    assert get_variant_spec("slow").delay_s == 1.5 and get_variant_spec("a").delay_s == 0
    with TestClient(create_app(catalog_path, variant="slow", page_delay=0.3)) as c:
        t0 = time.perf_counter()
        assert c.get("/").status_code == 200
        page_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert c.get("/static/store.css").status_code == 200
        asset_s = time.perf_counter() - t0
    assert page_s >= 0.3 and asset_s < 0.3


def test_price_shock_adds_a_fee_only_at_checkout(catalog_path):
    with client_for(catalog_path, "price-shock") as c:
        _buy_mug(c)  # 2 × $9.50
        cart = soup(c.get("/cart"))
        assert "$19.00" in text_of(cart.find(id="subtotal")) and "service fee" not in cart.text.lower()
        assert "service fee" not in c.get(f"/product/{MUG}").text.lower()
        checkout = soup(c.get("/checkout"))
        assert text_of(checkout.find(id="fee")) == "Service fee: $3.80"
        assert text_of(checkout.find(id="order-total")) == "Order total: $22.80"
        order = soup(c.get(c.post("/checkout", data=SHIP, follow_redirects=False).headers["location"]))
        assert text_of(order.find(id="order-fee")) == "$3.80" and text_of(order.find(id="order-total")) == "$22.80"
    with client_for(catalog_path, "a") as c:
        _buy_mug(c)
        checkout = soup(c.get("/checkout"))
        assert checkout.find(id="fee") is None and text_of(checkout.find(id="order-total")) == "Order total: $19.00"


# -- serving --------------------------------------------------------------------------------------------------------

def test_store_serve_offers_every_variant():
    out = CliRunner().invoke(store_cli, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for name in VARIANT_NAMES:
        assert name in out, name
    bad = CliRunner().invoke(store_cli, ["serve", "--variant", "fast"])
    assert bad.exit_code == 2 and "fast" in bad.output


def test_store_server_passes_the_page_delay(catalog_path):
    with StoreServer(catalog_path, variant="slow", page_delay=0.2) as server:
        t0 = time.perf_counter()
        assert httpx.get(server.url + "/search?q=mug").status_code == 200
        assert time.perf_counter() - t0 >= 0.2
        assert server.app.state.variant.name == "slow"


@pytest.mark.browser
def test_variants_in_a_real_browser(catalog_path):
    """Chromium's accessibility tree agrees: the icon buttons have no name (and still buy), and the Search link of
    hidden-search leads to the one page with a search box."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from envs.chromium import find_chromium, launch_kwargs

    if find_chromium() is None:
        pytest.skip("no Chromium found (set SHOP_R1_CHROMIUM)")
    expect = sync_api.expect
    with StoreServer(catalog_path, variant="unlabeled-buttons") as icons, \
            StoreServer(catalog_path, variant="hidden-search") as hidden, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_kwargs())
        page = browser.new_context(java_script_enabled=False).new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{icons.url}/product/{MUG}")
        box = page.locator("#buy-box")
        expect(box.get_by_role("button", name=re.compile(r"cart|buy", re.I))).to_have_count(0)
        buttons = box.get_by_role("button")
        expect(buttons).to_have_count(2)
        for i in range(2):
            assert (buttons.nth(i).get_attribute("aria-label") or "") == "" and buttons.nth(i).inner_text() == ""
        buttons.first.click()
        page.wait_for_url(re.compile(r"/cart\?added="))
        expect(page.locator("#cart-count")).to_have_text("1")

        page.goto(f"{hidden.url}/search?q=mug")
        expect(page.get_by_role("searchbox")).to_have_count(0)
        page.get_by_role("link", name="Search", exact=True).click()
        page.wait_for_url(hidden.url + "/")
        expect(page.get_by_role("searchbox", name="Search products")).to_be_visible()
        browser.close()
