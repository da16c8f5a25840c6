"""Bad input never makes a 500: hostile queries, ids, numbers and paths get a normal page or a clear 4xx page."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_fixtures import SHIRT, build_test_catalog, soup, text_of

from sites.store.app import create_app
from sites.store.web import MAX_QUERY_CHARS


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory):
    return build_test_catalog(tmp_path_factory.mktemp("store") / "catalog.db")


@pytest.fixture(scope="module")
def app(catalog_path):
    return create_app(catalog_path, variant="a")


@pytest.fixture(scope="module")
def client(app):
    # raise_server_exceptions=False: a bug must show up as a 500 response (and fail the test), not as a crash mid-run
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def asgi_get(app, path: str, query: bytes, headers: dict | None = None) -> tuple[int, bytes]:
    """GET with a raw path and query string, bypassing the HTTP client's URL checks (length, encoding, `//`)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
             "state": {}}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    status = start["status"]
    if headers is not None:
        headers.update((k.decode(), v.decode()) for k, v in start["headers"])
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def assert_html_page(r, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    assert "Traceback" not in r.text


HOSTILE_QUERIES = [
    '"', '""', "'", "AND(", "OR", "NOT", "NEAR/3", "NEAR(a b, 2)", "*", "shoe*", "^shoe", "title:shoe", "col:x",
    "{title brand}: x", "(", ")", "a AND (b OR", "-shoe", "+shoe", "shoe\x00mug", "🙂 running 👟", "ÄÖÜ straße",
    "日本語 の 靴", "\u202e\u200b", "' OR 1=1 --", "'; DROP TABLE products; --", "1; SELECT * FROM meta",
    "%", "%%", "\\", "\n\r\t", " ", "   ", "", "<script>alert(1)</script>", "{{7*7}}", "{% raw %}", "${x}",
    "a" * 5000, "word " * 2000,
]


@pytest.mark.parametrize("q", HOSTILE_QUERIES)
def test_hostile_queries_get_a_normal_page(client, q):
    r = client.get("/search", params={"q": q})
    assert_html_page(r, 200)
    box = soup(r).find("input", id="search-input")["value"]
    assert len(box) <= MAX_QUERY_CHARS
    if "{{7*7}}" in q:
        assert "49" not in text_of(soup(r).find("h1"))


def test_100kb_query_is_cut_and_echoed_safely(app):
    q = ("<b>x</b> " * 12_000)[:100_000]
    status, body = asgi_get(app, "/search", b"q=" + quote(q).encode())
    assert status == 200
    html = body.decode()
    assert "<b>x</b>" not in html and len(html) < 60_000
    value = soup(type("R", (), {"text": html})()).find("input", id="search-input")["value"]
    assert 0 < len(value) <= MAX_QUERY_CHARS


@pytest.mark.parametrize("query", [
    b"q=%ff%fe%fd", b"q=\xff\xfe", b"q=%00", b"q=%", b"q=%zz", b"&&&==&q", b"q", b"page=%ff", b"brand=%c0%80",
    b"q=a&q=b&page=1&page=2", b"department=" + b"x" * 20000,
])
def test_raw_query_strings(app, query):
    status, _ = asgi_get(app, "/search", query)
    assert status < 500


@pytest.mark.parametrize("page", ["0", "-1", "abc", str(10**20), "1.5", "1e3", "NaN", " ", "0x10", "²"])
def test_bad_page_numbers_are_a_clear_422_page(client, page):
    r = client.get("/search", params={"q": "shoes", "page": page})
    if page == " ":
        assert_html_page(r, 200)  # blank means the default
        return
    assert_html_page(r, 422)
    message = text_of(soup(r).find("main"))
    assert "“page”" in message
    back = soup(r).find("a", string=lambda s: s and s.startswith("Search for “shoes”"))
    assert back["href"] == "/search?q=shoes"


@pytest.mark.parametrize("param,value", [
    ("price_min", "abc"), ("price_min", "nan"), ("price_max", "inf"), ("price_min", "-1"), ("price_max", "1e400"),
    ("min_rating", "6"), ("min_rating", "-0.5"), ("sort", "bogus"), ("sort", "price_asc; DROP"), ("brand", "x" * 301),
])
def test_bad_refinements_are_a_clear_422_page(client, param, value):
    r = client.get("/search", params={"q": "shoes", param: value})
    assert_html_page(r, 422)
    assert f"“{param}”" in text_of(soup(r).find("main"))


@pytest.mark.parametrize("path", [
    "/product/NOPE", "/product/%00", "/product/" + "A" * 500, "/product/..%2F..%2Fetc%2Fpasswd",
    "/product/'%20OR%201=1",
    "/product/%3Cscript%3E", "/img/NOPE.svg", "/img/..%2Fapp.py.svg", "/static/../app.py", "/static/%2e%2e/app.py",
    "/order/NOPE", "/order/" + "1" * 200, "/nope", "/search/extra", "/product", "/api/analytics/sessions/x",
    "/api/products/x",
    "/%ff", "/" + "x" * 5000, "/.env", "/admin",
])
def test_bad_paths_are_4xx(client, path):
    r = client.get(path)
    assert 400 <= r.status_code < 500, (path, r.status_code)


@pytest.mark.parametrize("path", ["/cart/", "/search/", "//evil.example/search/", "/\\evil.example/cart/",
                                  "///evil.example/search/"])
def test_trailing_slash_redirects_stay_on_site(app, path):
    headers: dict[str, str] = {}
    status, _ = asgi_get(app, path, b"", headers)
    assert status < 500
    if status in (301, 302, 307, 308):
        assert headers["location"].startswith("http://testserver/"), headers["location"]


def test_not_found_page_is_friendly_html(client):
    r = client.get("/product/NOPE")
    assert_html_page(r, 404)
    page = soup(r)
    assert text_of(page.find("h1")) == "Page not found" and "NOPE" in text_of(page.find("main"))
    assert page.find("a", id="error-home")["href"] == "/"
    assert client.get("/definitely/not/here").status_code == 404


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "POST"])
def test_wrong_methods(client, method):
    r = client.request(method, "/search?q=x")
    assert r.status_code == 405


def test_hostile_forms(client):
    cases = [
        {"asin": SHIRT, "quantity": "1", "option_size": "M", "option_color": "<script>"},
        {"asin": SHIRT, "quantity": "1" * 5000},
        {"asin": "\x00", "quantity": "1"},
        {"asin": "x" * 10_000},
        {"asin": SHIRT, "option_": "x", "quantity": "2"},
        {},
    ]
    for data in cases:
        for route in ("/cart/add", "/buy-now"):
            r = client.post(route, data=data, follow_redirects=False)
            assert 400 <= r.status_code < 500, (route, data, r.status_code)
    for data in ({"line_id": "1", "quantity": "1e9"}, {"line_id": "\x00"}, {"line_id": "1" * 40}, {}):
        assert 400 <= client.post("/cart/update", data=data).status_code < 500
        assert 400 <= client.post("/cart/remove", data=data).status_code < 500
    form_type = {"content-type": "application/x-www-form-urlencoded"}
    r = client.post("/checkout", content=b"\xff\xfe=\x00&&=", headers=form_type)
    assert r.status_code < 500
    r = client.post("/cart/add", files={"asin": ("a.txt", b"x")})
    assert r.status_code < 500


# -- fuzzing --------------------------------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
numberish = st.one_of(text, st.integers(-10**25, 10**25).map(str), st.floats(allow_nan=True).map(repr),
                      st.sampled_from(["", " ", "1", "2", "99", "100", "0", "-0", "1e308", "inf", "NaN", "0x1"]))
search_params = st.fixed_dictionaries({}, optional={
    "q": text, "department": st.one_of(text, st.sampled_from(["Shoes", "Clothing"])),
    "brand": st.one_of(text, st.sampled_from(["Acme", "Stride"])), "price_min": numberish, "price_max": numberish,
    "min_rating": numberish, "sort": st.one_of(text, st.sampled_from(["relevance", "price_asc", "rating"])),
    "page": numberish,
})


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=search_params)
def test_fuzz_search(client, params):
    r = client.get("/search", params=params)
    assert r.status_code in (200, 422), (params, r.status_code)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asin=st.one_of(text, st.just(SHIRT)), params=st.dictionaries(
    st.sampled_from(["size", "color", "from", "finish", "x", ""]), text, max_size=4))
def test_fuzz_product(client, asin, params):
    r = client.get(f"/product/{quote(asin, safe='')}", params=params)
    assert r.status_code < 500, (asin, params, r.status_code)
    if r.status_code == 200:
        for a in soup(r).find_all("a"):
            assert a["href"].startswith(("/", "#")) and not a["href"].startswith("//"), a["href"]


def test_fuzz_seeded_mixed_requests(client):
    """1,500 seeded random requests over every route, GET and POST, with hostile pieces mixed in."""
    rng = random.Random(1234)
    pieces = HOSTILE_QUERIES[:-2] + ["M", "Navy", SHIRT, "1", "0", "-1", "99", "100", "abc", "", "%00", "/search?q=x",
                                     "https://evil.example", "1e999", "10.5", "navy-blue", "\u0000", "☃"]
    paths = ["/", "/search", "/product/{x}", "/cart", "/checkout", "/order/{x}", "/img/{x}.svg", "/{x}",
             "/api/analytics/sessions", "/api/analytics/sessions/{x}", "/api/products"]
    posts = {"/cart/add": ["asin", "quantity", "option_size", "option_color", "from"],
             "/buy-now": ["asin", "quantity", "option_size"], "/cart/update": ["line_id", "quantity"],
             "/cart/remove": ["line_id"], "/checkout": ["full_name", "address", "city", "region", "postal_code",
                                                        "country"]}
    keys = ["q", "page", "brand", "department", "sort", "price_min", "price_max", "min_rating", "size", "color",
            "from", "added", "limit", "offset"]
    for i in range(1500):
        if rng.random() < 0.7:
            path = rng.choice(paths).replace("{x}", quote(rng.choice(pieces), safe=""))
            params = {rng.choice(keys): rng.choice(pieces) for _ in range(rng.randint(0, 4))}
            r = client.get(path, params=params)
        else:
            route, fields = rng.choice(list(posts.items()))
            data = {f: rng.choice(pieces) for f in fields if rng.random() < 0.8}
            r = client.post(route, data=data, follow_redirects=rng.random() < 0.5)
        assert r.status_code < 500, (i, r.request.method, str(r.request.url)[:200], r.status_code)
