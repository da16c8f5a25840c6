"""The store over real HTTP: StoreServer's life cycle, concurrent visitors, and a whole journey in a real browser."""

from __future__ import annotations

import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from store_fixtures import MUG, SHIRT, build_test_catalog, soup

from envs.chromium import find_chromium, launch_kwargs
from sites.store.server import StoreServer


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory):
    return build_test_catalog(tmp_path_factory.mktemp("store") / "catalog.db")


@pytest.fixture(scope="module")
def server(catalog_path):
    with StoreServer(catalog_path, variant="a") as s:
        yield s


def test_server_life_cycle(catalog_path):
    s = StoreServer(catalog_path, variant="b")
    with pytest.raises(RuntimeError, match="not started"):
        _ = s.url
    s.stop()  # before start: harmless
    s.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", s.url)
        r = httpx.get(s.url + "/")
        assert r.status_code == 200 and 'id="search-results"' not in r.text and "variant" not in r.text
        assert s.start() is s, "start twice is a no-op"
    finally:
        s.stop()
        s.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(s.url + "/", timeout=2)


def test_server_binds_only_where_told(server):
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    ip = socket.gethostbyname(socket.gethostname())
    if not ip.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((ip, port), timeout=2).close()


def test_missing_catalog_fails_fast(tmp_path):
    with pytest.raises(FileNotFoundError, match="no catalog database"):
        StoreServer(tmp_path / "nope.db").start()


def test_concurrent_visitors_over_http(server):
    """24 visitors at once, each with its own cookie jar, each adding to its own cart 10 times, while 4 more share
    one session: every cart ends up exactly right."""
    shared_cookie: dict[str, str] = {}
    with httpx.Client(base_url=server.url) as first:
        first.get("/")
        shared_cookie.update(first.cookies)
    barrier = threading.Barrier(28)

    def visitor(i: int) -> int:
        cookies = shared_cookie if i >= 24 else None
        with httpx.Client(base_url=server.url, cookies=cookies) as c:
            c.get("/")
            barrier.wait()
            for _ in range(10):
                r = c.post("/cart/add", data={"asin": MUG, "quantity": "1"})
                assert r.status_code == 303 and r.headers["location"].startswith("/cart?added=")
            page = soup(c.get("/cart"))
            return int(page.find("input", attrs={"name": "quantity"})["value"])

    with ThreadPoolExecutor(28) as pool:
        quantities = list(pool.map(visitor, range(28)))
    assert quantities[:24] == [10] * 24
    assert set(quantities[24:]) <= set(range(10, 41)) and max(quantities[24:]) == 40, "the shared cart got all 40"


# -- the real browser -----------------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("variant", ["a", "b"])
def test_browser_journey_without_javascript(catalog_path, variant):
    """home → search → refine → product → pick options → add to cart → cart → checkout → confirmation."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if find_chromium() is None:
        pytest.skip("no Chromium found (set SHOP_R1_CHROMIUM)")
    expect = sync_api.expect
    with StoreServer(catalog_path, variant=variant) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_kwargs())
        context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)

        page.goto(server.url + "/")
        expect(page.locator('meta[name="shop-variant"]')).to_have_count(0)
        expect(page.get_by_role("heading", level=1)).to_have_text("Find what you need, delivered fast")
        expect(page.get_by_role("navigation", name="Departments").get_by_role("link", name="Shoes")).to_be_visible()

        box = page.get_by_role("searchbox", name="Search products")
        box.fill("running shoes")
        box.press("Enter")
        page.wait_for_url(re.compile(r"/search\?q=running\+shoes$"))
        expect(box).to_have_value("running shoes")
        per_page = 10 if variant == "a" else 20
        expect(page.locator("#result-count")).to_contain_text(f"Showing 1–{per_page} of 30 results")

        refinements = page.get_by_role("complementary", name="Refinements")
        refinements.get_by_role("link", name="Acme", exact=True).click()
        page.wait_for_url(re.compile(r"brand=Acme"))
        expect(page.get_by_role("region", name="Active filters")).to_contain_text("Brand: Acme")
        results = page.get_by_role("region", name="Search results").get_by_role("article")
        expect(results).to_have_count(10)
        for title in results.all_inner_texts():
            assert title.startswith("Acme"), title

        first = results.first
        name = first.get_attribute("aria-label")
        first.get_by_role("link", name=name).click()
        page.wait_for_url(re.compile(r"/product/SHOE\d+"))
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        expect(page.get_by_role("link", name="‹ Back to results")).to_have_attribute("href", re.compile("brand=Acme"))
        buy_label = "Buy Now" if variant == "a" else "Buy now — fast checkout"
        expect(page.get_by_role("button", name=buy_label)).to_be_visible()

        options = page.get_by_role("region", name="Product options")
        options.get_by_role("group", name="Size").get_by_role("link", name="9", exact=True).click()
        page.wait_for_url(re.compile(r"size=9"))
        page.get_by_role("group", name="Color").get_by_role("link", name="Navy Blue").click()
        page.wait_for_url(re.compile(r"color=navy-blue"))
        assert "size=9" in page.url, "picking a colour kept the size"
        expect(page.get_by_role("group", name="Size")).to_contain_text("Selected: 9")
        expect(page.get_by_role("group", name="Color")).to_contain_text("Selected: Navy Blue")
        expect(page.get_by_role("link", name="Navy Blue")).to_have_attribute("aria-current", "true")

        page.get_by_label("Quantity").fill("2")
        page.get_by_role("button", name="Add to Cart").click()
        page.wait_for_url(re.compile(r"/cart\?added=\d+"))
        expect(page.locator("#added-notice")).to_contain_text(f"{name} (Size: 9, Color: Navy Blue)")
        line = page.get_by_role("region", name="Cart items").get_by_role("article")
        expect(line).to_have_count(1)
        expect(line.get_by_label("Quantity")).to_have_value("2")
        expect(page.locator("#cart-count")).to_have_text("2")

        line.get_by_label("Quantity").fill("3")
        line.get_by_role("button", name="Update").click()
        page.wait_for_url(re.compile(r"/cart$"))
        expect(page.get_by_role("region", name="Cart items").get_by_label("Quantity")).to_have_value("3")
        subtotal = page.locator("#subtotal").inner_text()
        assert subtotal.startswith("Subtotal (3 items):")

        page.get_by_role("link", name="Proceed to checkout").click()
        page.wait_for_url(re.compile(r"/checkout$"))
        expect(page.get_by_label("Full name")).to_have_value("Alex Morgan")
        page.get_by_role("button", name="Place order").click()
        page.wait_for_url(re.compile(r"/order/[\w-]+$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Thank you, your order has been placed.")
        expect(page.locator("#order-total")).to_have_text(subtotal.rsplit(" ", 1)[1])
        expect(page.locator("#cart-count")).to_have_text("0")

        page.goto(server.url + f"/product/{SHIRT}?size=nope")
        expect(page.get_by_role("heading", level=1)).to_have_text("Something is wrong with that request")
        context.close()
        browser.close()
