"""Finding 7 (a 500 on superscript digits) and 13 (imported ASINs with '/' 404 on their own links)."""

from __future__ import annotations

import json

import httpx
import pytest

from sites.store.server import StoreServer
from sites.store.webshop import import_webshop

# Characters `str.isdigit()` accepts (or `int()` accepts) that are not ASCII digits, and other number look-alikes.
NOT_ASCII_NUMBERS = ["²", "¹²", "٣", "३", "①", "1_0", "+3", "-1", "1e2", "0x1", " ", "", "9" * 13, "3\x00"]


@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS)
def test_cart_added_param_never_500s(store_url, raw):
    r = httpx.get(f"{store_url}/cart", params={"added": raw})
    assert r.status_code == 200, f"Expect 200 for /cart?added={raw!r}, actually: {r.status_code}"


@pytest.mark.parametrize("path", ["/cart/update", "/cart/remove"])
@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS)
def test_cart_line_id_never_500s(store_url, path, raw):
    r = httpx.post(f"{store_url}{path}", data={"line_id": raw, "quantity": "1"})
    assert r.status_code == 400, f"Expect 400 for {path} line_id={raw!r}, actually: {r.status_code}"


@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS)
def test_quantity_is_ascii_digits_only(store_url, product_asin, raw):
    r = httpx.post(f"{store_url}/cart/add", data={"asin": product_asin, "quantity": raw})
    assert r.status_code == 400, f"Expect 400 for quantity={raw!r}, actually: {r.status_code}"


def test_query_numbers_never_500(store_url):
    for query in ("page=²", "price_min=²", "price_max=٣", "min_rating=①", "page=1_0"):
        r = httpx.get(f"{store_url}/search?q=mug&{query}")
        assert r.status_code in (200, 422), f"Expect 200 or 422 for /search?{query}, actually: {r.status_code}"


@pytest.fixture(scope="module")
def slash_store(tmp_path_factory):
    items = [{"asin": asin, "name": f"Slashed thing {asin}", "pricing": "$12.50", "category": "beauty",
              "product_category": "Beauty › Tools", "small_description": ["A thing."]}
             for asin in ("B0/SLASH/1", "B0%2FPCT", "B0..%2F")]
    src = tmp_path_factory.mktemp("slash") / "items.json"
    src.write_text(json.dumps(items))
    out = src.parent / "catalog.db"
    import_webshop(src, out)
    with StoreServer(out) as server:
        yield server


@pytest.mark.parametrize("asin", ["B0/SLASH/1", "B0%2FPCT"])
def test_asin_with_slash_opens_its_own_link(slash_store, asin):
    with httpx.Client(base_url=slash_store.url) as client:
        page = client.get("/search", params={"q": "slashed thing"})
        assert page.status_code == 200
        from urllib.parse import quote

        link = f"/product/{quote(asin, safe='')}"
        assert link in page.text, f"Expect a link {link} on the results page, actually: none"
        r = client.get(link)
        assert r.status_code == 200 and f"Slashed thing {asin}" in r.text, \
            f"Expect the product page for {asin!r}, actually: {r.status_code}"
        image = client.get(f"/img/{quote(asin, safe='')}.svg")
        assert image.status_code == 200, f"Expect the product image, actually: {image.status_code}"
