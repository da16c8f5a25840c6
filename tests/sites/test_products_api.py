"""The product export: `GET /api/products` over real HTTP (pages in catalog order, product text as JSON data, a 422
for every hostile offset or limit) and `shop-r1 store export-products` (the same records as JSONL)."""

from __future__ import annotations

import json

import httpx
import pytest
from store_fixtures import XSS, build_test_catalog
from typer.testing import CliRunner

from sites.store.catalog import Catalog
from sites.store.cli import app as store_cli
from sites.store.export import MAX_PAGE, ExportedProduct
from sites.store.server import StoreServer

FIELDS = {"asin", "title", "brand", "department", "category", "price_min", "price_max", "options"}


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory):
    return build_test_catalog(tmp_path_factory.mktemp("export") / "catalog.db")


@pytest.fixture(scope="module")
def store(catalog_path):
    with StoreServer(catalog_path) as server:
        yield server


def expected(catalog_path) -> list[dict]:
    """Every product of the catalog as the export should give it, in catalog order (by `product_at`)."""
    catalog = Catalog(catalog_path)
    return [ExportedProduct.of(catalog.product_at(i)).model_dump(mode="json") for i in range(len(catalog))]


def test_first_page(store, catalog_path):
    r = httpx.get(f"{store.url}/api/products")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    want = expected(catalog_path)
    assert (body["total"], body["offset"], body["limit"], body["next_offset"]) == (len(want), 0, 100, None)
    assert body["products"] == want
    assert all(set(p) == FIELDS for p in body["products"])


def test_pages_in_catalog_order(store, catalog_path):
    got, offset, seen_offsets = [], 0, []
    while offset is not None:
        body = httpx.get(f"{store.url}/api/products", params={"offset": offset, "limit": 7}).json()
        assert body["offset"] == offset and len(body["products"]) <= 7
        seen_offsets.append(offset)
        got.extend(body["products"])
        offset = body["next_offset"]
    want = expected(catalog_path)
    assert got == want
    assert seen_offsets == list(range(0, len(want), 7))


@pytest.mark.parametrize("offset", ["34", "35", "1000000000"])
def test_past_the_end_is_an_empty_last_page(store, offset):
    r = httpx.get(f"{store.url}/api/products?offset={offset}&limit={MAX_PAGE}")
    assert r.status_code == 200
    body = r.json()
    assert body["products"] == [] and body["next_offset"] is None and body["total"] == 34


def test_product_text_is_json_data_not_html(store):
    r = httpx.get(f"{store.url}/api/products?limit=1000")
    xss = next(p for p in r.json()["products"] if p["asin"] == XSS)
    assert xss["title"] == "<script>alert(1)</script> Gadget" and xss["brand"] == "<b>Evil</b> & Co"
    assert "&lt;" not in r.text and "&amp;" not in r.text  # not escaped for a page: it is no page
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("query", "param"), [
    ("offset=-1", "offset"), ("offset=1000000001", "offset"), ("offset=" + "9" * 40, "offset"),
    ("offset=abc", "offset"), ("offset=1.5", "offset"), ("offset=²", "offset"), ("offset=1e3", "offset"),
    ("offset=", "offset"), ("offset=%00", "offset"),
    ("limit=0", "limit"), ("limit=-5", "limit"), ("limit=1001", "limit"), ("limit=" + "9" * 40, "limit"),
    ("limit=ten", "limit"), ("limit=NaN", "limit"), ("limit=", "limit"),
    ("offset=-1&limit=0", "offset"),
])
def test_hostile_offset_or_limit_is_a_422_naming_it(store, query, param):
    r = httpx.get(f"{store.url}/api/products?{query}")
    assert r.status_code == 422, f"Expect 422 for /api/products?{query}, actually: {r.status_code} {r.text[:200]}"
    assert r.headers["content-type"] == "application/json"
    assert any(f"“{param}”" in message for message in r.json()["detail"]), r.json()


def test_the_largest_page(store_url, store_db):
    body = httpx.get(f"{store_url}/api/products", params={"limit": MAX_PAGE}).json()
    assert body["total"] == len(Catalog(store_db)) == len(body["products"]) and body["limit"] == MAX_PAGE


def test_export_products_writes_the_api_records_as_jsonl(store, catalog_path, tmp_path):
    out = tmp_path / "products.jsonl"
    result = CliRunner().invoke(store_cli, ["export-products", "--catalog", str(catalog_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "(34 products)" in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == httpx.get(f"{store.url}/api/products").json()["products"]
    assert not list(tmp_path.glob("*.tmp"))


def test_export_products_refuses_a_file_that_is_no_catalog(tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_text("not a database")
    result = CliRunner().invoke(store_cli, ["export-products", "--catalog", str(bogus), "--out",
                                            str(tmp_path / "p.jsonl")])
    assert result.exit_code == 2 and "Expect a catalog database" in result.output, result.output
    assert not (tmp_path / "p.jsonl").exists()


def test_iter_products_is_catalog_order_across_batches(catalog_path):
    catalog = Catalog(catalog_path)
    every = [catalog.product_at(i) for i in range(len(catalog))]
    assert list(catalog.iter_products(batch=5)) == every == catalog.products(0, 1000)
    assert list(catalog.iter_products(batch=len(every))) == every
    assert catalog.products(30, 10) == every[30:]
    with pytest.raises(ValueError, match="Expect offset >= 0"):
        catalog.products(-1, 3)
