"""Intents from a product export (`agent.runtime.products`, `sample_from_products`, `simulate --products`): products
read from a JSONL file or a site's `/api/products` over real HTTP, off-contract exports refused with a clear error, and
the very intents the catalog gives for the same products and seed."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from agent.cli.root import app
from agent.runtime.population import sample_from_products
from agent.runtime.products import (
    ProductSourceError,
    fetch_products,
    load_products,
    products_endpoint,
    read_products_jsonl,
)
from agent.runtime.trace import iter_traces
from agent.wiring import sample_from_catalog
from sites.store.catalog import Catalog
from sites.store.export import write_products_jsonl

runner = CliRunner()
MUG = {"asin": "M1", "title": "Ceramic Mug", "brand": "Kilnware", "department": "Home", "price_min": 9.5,
       "options": {"color": ["Red", "Blue"]}}


@pytest.fixture(scope="module")
def export_file(store_db, tmp_path_factory):
    """The session catalog exported as JSONL (what `shop-r1 store export-products` writes)."""
    path = tmp_path_factory.mktemp("export") / "products.jsonl"
    write_products_jsonl(Catalog(store_db), path)
    return path


# ------------------------------------------------------------------------------------------------ reading products
def test_file_and_url_give_the_catalog_products_in_order(store_url, store_db, export_file):
    catalog = Catalog(store_db)
    from_file = load_products(export_file)
    assert [p.asin for p in from_file] == [catalog.product_at(i).asin for i in range(len(catalog))]
    assert from_file == load_products(f"{store_url}/api/products") == load_products(store_url)
    assert fetch_products(store_url + "/", page_size=37) == from_file  # pages of 37: 9 requests
    first = catalog.product_at(0)
    assert (from_file[0].title, from_file[0].brand, from_file[0].department, from_file[0].price_min,
            from_file[0].options) == (first.title, first.brand, first.department, first.price_min, first.options)


@pytest.mark.parametrize(("n", "seed", "share"), [(10, 0, 0.5), (25, 7, 0.0), (12, 3, 1.0), (400, 1, 0.5)])
def test_intents_from_the_export_equal_the_catalogs(store_url, store_db, export_file, n, seed, share):
    """Same products, same order, same seed: the same personas and intents (400 > 300 products: drawn again)."""
    from_catalog = sample_from_catalog(store_db, n, seed, free_text_share=share)
    assert sample_from_products(load_products(export_file), n, seed, free_text_share=share) == from_catalog
    assert sample_from_products(load_products(store_url), n, seed, free_text_share=share) == from_catalog
    assert sample_from_products(load_products(export_file), n, seed + 1, free_text_share=share) != from_catalog


def test_products_endpoint():
    assert str(products_endpoint("http://127.0.0.1:8000")) == "http://127.0.0.1:8000/api/products"
    assert str(products_endpoint("https://shop.example/")) == "https://shop.example/api/products"
    assert str(products_endpoint("http://shop.example/export/all?v=2")) == "http://shop.example/export/all?v=2"
    for bad in ("ftp://shop.example/api/products", "http://", "http://[::1"):
        with pytest.raises(ProductSourceError, match="Expect an http"):
            products_endpoint(bad)


def _write(tmp_path, *lines: str):
    path = tmp_path / "products.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_lines_are_checked(tmp_path):
    assert read_products_jsonl(_write(tmp_path, json.dumps(MUG), "", json.dumps({**MUG, "extra": 1}))) == \
        read_products_jsonl(_write(tmp_path, json.dumps(MUG), json.dumps(MUG)))
    cases = {
        "not json": r"line 2 .*Invalid JSON",
        json.dumps({**MUG, "title": ""}): r"line 2 .*title",
        json.dumps({k: v for k, v in MUG.items() if k != "brand"}): r"line 2 .*brand: Field required",
        json.dumps({**MUG, "price_min": -1}): r"line 2 .*price_min",
        json.dumps({**MUG, "options": {"color": "Red"}}): r"line 2 .*options\.color",
        "[1, 2]": r"line 2 ",
    }
    for bad, message in cases.items():
        with pytest.raises(ProductSourceError, match=message):
            read_products_jsonl(_write(tmp_path, json.dumps(MUG), bad))
    with pytest.raises(ProductSourceError, match=r"Expect products to draw intents from in .*, actually: none"):
        load_products(_write(tmp_path, "", "  "))
    with pytest.raises(ProductSourceError, match="Expect a JSONL product export at .*, actually: no such file"):
        load_products(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------------------------------ exports off the contract
Route = Callable[[dict[str, list[str]]], tuple[int, str, bytes]]


def _page(offset: int, next_offset: int | None, total: int, n: int) -> bytes:
    products = [{**MUG, "asin": f"M{offset + i}"} for i in range(n)]
    return json.dumps({"total": total, "offset": offset, "next_offset": next_offset, "products": products}).encode()


def _offset(query: dict[str, list[str]]) -> int:
    return int(query.get("offset", ["0"])[0])


ROUTES: dict[str, Route] = {
    "/stuck": lambda q: (200, "application/json", _page(0, 0, 10, 2)),  # next_offset never moves on
    "/skips": lambda q: (200, "application/json", _page(_offset(q), _offset(q) + 5 if _offset(q) < 4 else None, 10,
                                                        2)),
    "/short": lambda q: (200, "application/json", _page(0, None, 5, 2)),  # says 5, gives 2
    "/over": lambda q: (200, "application/json", _page(_offset(q), _offset(q) + 2, 3, 2)),  # more than the total
    "/wrong-offset": lambda q: (200, "application/json", _page(3, None, 5, 2)),
    "/html": lambda q: (200, "text/html", b"<!doctype html><title>Shop</title><h1>Products</h1>"),
    "/missing": lambda q: (404, "application/json", b'{"detail": "Not Found"}'),
    "/moved": lambda q: (302, "text/plain", b""),
    "/ok": lambda q: (200, "application/json", _page(_offset(q), _offset(q) + 2 if _offset(q) < 2 else None, 4, 2)),
}


@pytest.fixture(scope="module")
def export_site():
    """A real HTTP server on loopback answering each path of `ROUTES`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, content_type, body = ROUTES[parts.path](parse_qs(parts.query))
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            if status == 302:
                self.send_header("location", "/ok")
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(("path", "message"), [
    ("/stuck", r"Expect next_offset 2 from .*, actually: 0"),
    ("/skips", r"Expect next_offset 2 from .*, actually: 5"),
    ("/short", r"Expect 5 products \(the total\) from .*, actually: 2"),
    ("/over", r"Expect at most 3 products \(the total\) from .*, actually: 4"),
    ("/wrong-offset", r"Expect the page at offset 0 from .*, actually: offset 3"),
    ("/html", r"Expect a JSON page of products from .*, actually: Invalid JSON"),
    ("/missing", r"Expect 200 from .*, actually: 404"),
    ("/moved", r"Expect 200 from .*, actually: 302"),
])
def test_an_export_off_the_contract_is_refused(export_site, path, message):
    with pytest.raises(ProductSourceError, match=message):
        load_products(export_site + path, timeout=10)


def test_a_well_formed_foreign_export_is_read(export_site):
    assert [p.asin for p in load_products(export_site + "/ok", timeout=10)] == ["M0", "M1", "M2", "M3"]


def test_no_server_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    with pytest.raises(ProductSourceError, match=r"Expect products from http://127.0.0.1:\d+/api/products, "
                                                 r"actually: ConnectError"):
        load_products(f"http://127.0.0.1:{port}", timeout=5)


# ---------------------------------------------------------------------------------------------- simulate --products
def _simulate(*argv: str):
    return runner.invoke(app, ["simulate", "--policy", "scripted", "--backend", "http", "--no-report", *argv])


@pytest.mark.parametrize("source", ["url", "file"])
def test_simulate_draws_intents_from_the_export(source, store_url, store_db, export_file, tmp_path):
    """From a site's /api/products with --site, or from a JSONL file with --embedded: the catalog's intents."""
    out = tmp_path / "run"
    if source == "url":
        products = f"{store_url}/api/products"
        where = ["--site", store_url]
    else:
        products = str(export_file)
        where = ["--embedded", "--catalog", str(store_db)]
    result = _simulate(*where, "--products", products, "--sessions", "3", "--concurrency", "3", "--max-steps", "3",
                       "--seed", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    traces = list(iter_traces(out))
    want = sample_from_catalog(store_db, 3, 5)
    assert [t.header.intent for t in traces] == [item.intent.model_dump(mode="json") for item in want]
    assert [t.header.persona for t in traces] == [item.persona.model_dump(mode="json") for item in want]
    assert json.loads((out / "run.json").read_text())["products"] == products


@pytest.mark.parametrize(("argv", "message"), [
    (["--personas", "p.jsonl"], "Expect one of --personas FILE.jsonl or --products FILE|URL, actually: both"),
    (["--catalog", "c.db"], "Expect one of --products FILE|URL or --catalog DB to draw intents from with --site, "
                            "actually: both"),
])
def test_simulate_refuses_two_sources_of_intents(store_url, tmp_path, argv, message):
    result = _simulate("--site", store_url, "--products", "x.jsonl", *argv, "--out", str(tmp_path / "run"))
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_simulate_with_a_bad_export_is_a_usage_error(store_url, tmp_path):
    result = _simulate("--site", store_url, "--products", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "Expect a JSONL product export at" in result.output, result.output
    assert not list((tmp_path / "r").glob("sessions/*.jsonl"))
