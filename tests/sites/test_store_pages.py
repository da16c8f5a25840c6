"""The store's pages, in-process: what each page shows, its links and its markup, in both layout variants."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from store_fixtures import LAMP, MUG, N_SHOES, SHIRT, XSS, build_test_catalog, query_of, soup, text_of

from sites.store.app import create_app
from sites.store.routers.search import page_numbers
from sites.store.web import VARIANTS, safe_back_path, search_url


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory):
    return build_test_catalog(tmp_path_factory.mktemp("store") / "catalog.db")


@pytest.fixture(params=["a", "b"])
def client(request, catalog_path):
    with TestClient(create_app(catalog_path, variant=request.param)) as c:
        yield c


@pytest.fixture
def client_a(catalog_path):
    with TestClient(create_app(catalog_path, variant="a")) as c:
        yield c


@pytest.fixture
def client_b(catalog_path):
    with TestClient(create_app(catalog_path, variant="b")) as c:
        yield c


def variant_of(client: TestClient) -> str:
    return client.app.state.variant.name


# -- every page ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/search?q=running+shoes", "/search", f"/product/{SHIRT}", "/cart", "/checkout"])
def test_page_renders_with_landmarks(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = soup(r)
    assert not page.find("meta", attrs={"name": "shop-variant"}) and "variant" not in r.text, "shoppers never see it"
    assert page.find("header") and page.find("main") and page.find("footer")
    form = page.find("form", attrs={"role": "search"})
    assert form["aria-label"] == "Search" and form["method"] == "get" and form["action"] == "/search"
    box = form.find("input", attrs={"name": "q"})
    assert page.find("label", attrs={"for": box["id"]}), "the search box has a label"
    assert page.find("a", id="cart-link")["aria-label"] == "Cart"
    for img in page.find_all("img"):
        assert img.get("alt"), img


def test_all_inputs_are_labelled(client):
    for path in ("/", "/search?q=shoes&brand=Acme", f"/product/{SHIRT}?size=m", "/checkout"):
        page = soup(client.get(path))
        for inp in page.find_all(["input", "select", "textarea"]):
            if inp.get("type") == "hidden":
                continue
            assert inp.get("id") and page.find("label", attrs={"for": inp["id"]}), (path, inp)


def test_nothing_loads_from_the_network(client):
    """Every asset is vendored: no absolute URLs in src/href/action, no scripts at all."""
    for path in ("/", "/search?q=shoes", f"/product/{SHIRT}", "/cart", "/checkout", "/nope"):
        html = client.get(path).text
        assert "<script" not in html.replace("&lt;script", "")
        page = soup(client.get(path))
        for tag in page.find_all(True):
            for attr in ("src", "href", "action", "formaction"):
                value = tag.get(attr)
                if value:
                    assert value.startswith(("/", "#")), (path, tag.name, attr, value)


def test_security_headers(client):
    r = client.get("/")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_static_css_is_served(client):
    r = client.get("/static/store.css")
    assert r.status_code == 200 and "text/css" in r.headers["content-type"]
    assert "http" not in r.text  # no @import of remote fonts


# -- home ---------------------------------------------------------------------------------------------------------

def test_home_has_departments_and_featured(client):
    page = soup(client.get("/"))
    nav = page.find("nav", attrs={"aria-label": "Departments"})
    links = {text_of(a): a["href"] for a in nav.find_all("a")}
    assert set(links) == {"Clothing", "Electronics", "Home & Kitchen", "Shoes"}
    assert query_of(links["Home & Kitchen"]) == {"department": ["Home & Kitchen"]}
    featured = page.find(id="featured").find_all("article")
    assert 1 <= len(featured) <= 8
    for art in featured:
        assert art.find("a", href=re.compile(r"^/product/"))


# -- search ---------------------------------------------------------------------------------------------------------

def test_query_stays_in_the_box_and_heading(client):
    page = soup(client.get("/search", params={"q": 'running "shoes" <b>'}))
    assert page.find("input", id="search-input")["value"] == 'running "shoes" <b>'
    assert "Results for “running \"shoes\" <b>”" in text_of(page.find("h1"))


def test_result_cards(client):
    page = soup(client.get("/search?q=coffee+mug"))
    results = page.find("section", attrs={"aria-label": "Search results"})
    articles = results.find_all("article")
    assert articles[0]["aria-label"] == "Ceramic Coffee Mug 12 oz"
    card = articles[0]
    title = card.find("a")
    assert text_of(title) == "Ceramic Coffee Mug 12 oz" and title["href"].startswith(f"/product/{MUG}?from=")
    assert safe_back_path(query_of(title["href"])["from"][0]) == "/search?q=coffee+mug"
    assert "by Kilnware" in text_of(card) and "$9.50" in text_of(card)
    assert "4.7" in text_of(card) and "(221 ratings)" in text_of(card)
    assert card.find("img")["src"] == f"/img/{MUG}.svg" and card.find("img")["alt"] == "Ceramic Coffee Mug 12 oz"
    assert len(card.find_all("a")) == 1, "one link per result: no duplicate image link"


def test_fts_syntax_is_plain_text(client):
    for q in ['"', "AND(", "NEAR/3 shoes", "shoe*", "title:mug", "mug OR", "') OR 1=1 --"]:
        r = client.get("/search", params={"q": q})
        assert r.status_code == 200, q
        assert soup(r).find("input", id="search-input")["value"] == q


def test_refinement_links_keep_other_params(client):
    page = soup(client.get("/search?q=running+shoes&sort=price_asc&min_rating=3&page=2"))
    aside = page.find("aside", attrs={"aria-label": "Refinements"})
    brand = aside.find("a", string="Acme")
    assert query_of(brand["href"]) == {"q": ["running shoes"], "brand": ["Acme"], "min_rating": ["3"],
                                       "sort": ["price_asc"]}, "refining keeps q, sort and filters and resets the page"
    price = aside.find("a", string="$25 to $50")
    assert query_of(price["href"]) == {"q": ["running shoes"], "price_min": ["25"], "price_max": ["50"],
                                       "min_rating": ["3"], "sort": ["price_asc"]}
    rating = aside.find("a", string="4 stars & up")
    assert query_of(rating["href"])["min_rating"] == ["4"]
    dept = aside.find("a", string="Shoes")
    assert query_of(dept["href"])["department"] == ["Shoes"]


def test_refinements_filter_results(client):
    page = soup(client.get("/search?q=running+shoes&brand=Stride&price_max=60"))
    titles = [a["aria-label"] for a in page.find("section", attrs={"aria-label": "Search results"}).find_all("article")]
    assert titles and all(t.startswith("Stride") for t in titles)
    assert "Showing 1–3 of 3 results" in text_of(page.find(id="result-count"))  # Stride 1, 4, 7: $25, $40, $55
    selected = page.find("aside").find(attrs={"aria-current": "true"})
    assert text_of(selected) == "Stride" and selected.name == "span", "the chosen refinement is shown, not linked"


def test_active_filters_have_clear_links(client):
    page = soup(client.get("/search?q=running+shoes&brand=Acme&price_min=25&price_max=50&sort=rating"))
    area = page.find("section", attrs={"aria-label": "Active filters"})
    clears = {a["aria-label"]: a["href"] for a in area.find_all("a", class_="chip-clear")}
    assert set(clears) == {"Clear Brand: Acme", "Clear Price: $25 to $50"}
    assert query_of(clears["Clear Brand: Acme"]) == {"q": ["running shoes"], "price_min": ["25"],
                                                     "price_max": ["50"], "sort": ["rating"]}
    assert query_of(clears["Clear Price: $25 to $50"]) == {"q": ["running shoes"], "brand": ["Acme"],
                                                           "sort": ["rating"]}
    clear_all = area.find("a", string="Clear all filters")
    assert query_of(clear_all["href"]) == {"q": ["running shoes"], "sort": ["rating"]}
    assert soup(client.get("/search?q=shoes")).find("section", attrs={"aria-label": "Active filters"}) is None


def test_price_form_keeps_other_params_and_accepts_blanks(client):
    page = soup(client.get("/search?q=running+shoes&brand=Acme&sort=price_desc"))
    form = page.find("aside").find("form")
    hidden = {i["name"]: i["value"] for i in form.find_all("input", type="hidden")}
    assert hidden == {"q": "running shoes", "brand": "Acme", "sort": "price_desc"}
    r = client.get("/search", params={**hidden, "price_min": "", "price_max": "40"})
    assert r.status_code == 200
    prices = [float(p.text.strip("$")) for p in soup(r).select("#search-results .price")]
    assert prices and max(prices) <= 40


def test_price_range_upside_down_is_swapped(client):
    page = soup(client.get("/search?q=running+shoes&price_min=50&price_max=25"))
    assert "Price: $25 to $50" in text_of(page.find("section", attrs={"aria-label": "Active filters"}))


@pytest.mark.parametrize("sort,key,reverse", [("price_asc", "price", False), ("price_desc", "price", True)])
def test_sort_links_and_order(client, sort, key, reverse):
    page = soup(client.get("/search?q=running+shoes&brand=Acme"))
    nav = page.find("nav", attrs={"aria-label": "Sort"})
    assert text_of(nav.find(attrs={"aria-current": "true"})) == "Relevance"
    links = {text_of(a): a["href"] for a in nav.find_all("a")}
    assert set(links) == {"Price: Low to High", "Price: High to Low", "Avg. Customer Review"}
    label = "Price: Low to High" if sort == "price_asc" else "Price: High to Low"
    assert query_of(links[label]) == {"q": ["running shoes"], "brand": ["Acme"], "sort": [sort]}
    page = soup(client.get(links[label]))
    prices = [float(p.text.strip("$")) for p in page.select("#search-results .price")]
    assert prices == sorted(prices, reverse=reverse)


def test_sort_by_rating(client):
    page = soup(client.get("/search?q=running+shoes&sort=rating"))
    ratings = [float(s.text) for s in page.select("#search-results .rating-value")]
    assert ratings == sorted(ratings, reverse=True)


def _pagination(page):
    nav = page.find("nav", attrs={"aria-label": "Pagination"})
    if nav is None:
        return None, None, None
    prev = nav.find("a", string="Previous")
    nxt = nav.find("a", string="Next")
    current = nav.find(attrs={"aria-current": "page"})
    return prev, nxt, current


def test_pagination_bounds(client):
    per_page = VARIANTS[variant_of(client)].per_page
    pages = -(-N_SHOES // per_page)
    first = soup(client.get("/search?q=running+shoes"))
    prev, nxt, current = _pagination(first)
    assert prev is None and nxt is not None and text_of(current) == "1"
    assert f"Showing 1–{per_page} of {N_SHOES} results" in text_of(first.find(id="result-count"))
    assert query_of(nxt["href"]) == {"q": ["running shoes"], "page": ["2"]}

    last = soup(client.get(f"/search?q=running+shoes&page={pages}"))
    prev, nxt, current = _pagination(last)
    assert nxt is None, "no dead Next on the last page"
    assert query_of(prev["href"])["page"] == [str(pages - 1)] if pages > 2 else "page" not in query_of(prev["href"])
    assert text_of(current) == str(pages)
    start = (pages - 1) * per_page + 1
    assert f"Showing {start}–{N_SHOES} of {N_SHOES} results" in text_of(last.find(id="result-count"))
    numbered = [a for a in last.find("nav", attrs={"aria-label": "Pagination"}).find_all("a") if a.get("aria-label")]
    assert [a["aria-label"] for a in numbered] == [f"Page {n}" for n in range(1, pages)]


def test_middle_page_has_both_links_variant_a(client_a):
    page = soup(client_a.get("/search?q=running+shoes&page=2"))
    prev, nxt, current = _pagination(page)
    assert prev is not None and nxt is not None and text_of(current) == "2"
    assert "page" not in query_of(prev["href"]), "page 1 is the default and left out"
    assert "Showing 11–20 of 30 results" in text_of(page.find(id="result-count"))


def test_single_page_has_no_pagination(client):
    page = soup(client.get("/search?q=coffee+mug"))
    assert page.find("nav", attrs={"aria-label": "Pagination"}) is None


def test_page_past_the_end(client):
    r = client.get("/search?q=running+shoes&page=99")
    assert r.status_code == 200
    page = soup(r)
    assert "No results on page 99" in text_of(page.find(id="result-count"))
    back = page.find(id="no-results").find("a")
    pages = -(-N_SHOES // VARIANTS[variant_of(client)].per_page)
    assert query_of(back["href"]) == {"q": ["running shoes"], "page": [str(pages)]}
    assert page.find("nav", attrs={"aria-label": "Pagination"}) is None


def test_no_results(client):
    page = soup(client.get("/search?q=zzzzqqqq"))
    assert "No results for “zzzzqqqq”" in text_of(page.find(id="result-count"))
    assert page.find("section", attrs={"aria-label": "Search results"}) is None


def test_empty_query_browses_everything(client):
    page = soup(client.get("/search"))
    assert "of 34 results" in text_of(page.find(id="result-count"))
    assert text_of(page.find("h1")) == "All products"


def test_page_numbers_window():
    assert page_numbers(1, 1) == [1]
    assert page_numbers(1, 3) == [1, 2, 3]
    assert page_numbers(6, 14) == [1, None, 4, 5, 6, 7, 8, None, 14]
    assert page_numbers(14, 14) == [1, None, 12, 13, 14]


def test_search_url_leaves_out_defaults():
    assert search_url({"q": "a b", "sort": "relevance", "page": 1, "brand": None}) == "/search?q=a+b"
    assert search_url({"q": "x"}, price_min=25.0, page=3) == "/search?q=x&price_min=25&page=3"
    assert search_url({}) == "/search"


# -- product --------------------------------------------------------------------------------------------------------

def test_product_page_content(client):
    page = soup(client.get(f"/product/{SHIRT}"))
    assert text_of(page.find("h1")) == "Classic Cotton T-Shirt"
    main = text_of(page.find("main"))
    for expected in ("Threadly", "$15.99", "4.4", "(812 ratings)", "100% cotton", "A soft everyday tee.",
                     "Fits true to size and washes well.", "Great fit", "Fabric"):
        assert expected in main, expected
    reviews = page.find("section", id="reviews").find_all("article")
    assert [r["aria-label"] for r in reviews] == ["Review by Sam", "Review by Lee"]
    assert page.find("img")["alt"] == "Classic Cotton T-Shirt"


def test_price_range_product(client):
    assert "$34.00 - $49.00" in text_of(soup(client.get(f"/product/{LAMP}")).find(id="price"))


def test_option_groups_are_fieldsets_of_links(client):
    page = soup(client.get(f"/product/{SHIRT}"))
    section = page.find("section", attrs={"aria-label": "Product options"})
    groups = {text_of(f.legend): f for f in section.find_all("fieldset")}
    assert set(groups) == {"Size", "Color"}
    assert [text_of(a) for a in groups["Color"].find_all("a")] == ["White", "Navy", "Heather Grey"]
    assert "Choose a size" in text_of(groups["Size"])
    assert not section.find(attrs={"aria-current": True})


def test_option_links_preserve_other_selections(client):
    page = soup(client.get(f"/product/{SHIRT}?size=m&from=/search%3Fq%3Dshirt"))
    color = page.find("fieldset", id="option-color")
    navy = color.find("a", string="Navy")
    assert query_of(navy["href"]) == {"size": ["m"], "color": ["navy"], "from": ["/search?q=shirt"]}
    grey = color.find("a", string="Heather Grey")
    assert query_of(grey["href"])["color"] == ["heather-grey"]
    size = page.find("fieldset", id="option-size")
    assert "Selected: M" in text_of(size)
    current = size.find(attrs={"aria-current": "true"})
    assert text_of(current) == "M"
    page = soup(client.get(navy["href"]))
    assert "Selected: Navy" in text_of(page.find("fieldset", id="option-color"))
    assert "Selected: M" in text_of(page.find("fieldset", id="option-size"))
    large = page.find("fieldset", id="option-size").find("a", string="L")
    assert query_of(large["href"])["color"] == ["navy"] and query_of(large["href"])["size"] == ["l"]


def test_option_values_match_exact_and_case_insensitive(client):
    for query in ("color=Heather%20Grey", "color=heather-grey", "color=HEATHER-GREY"):
        page = soup(client.get(f"/product/{SHIRT}?{query}"))
        assert "Selected: Heather Grey" in text_of(page.find("fieldset", id="option-color")), query


def test_purchase_forms_carry_asin_options_quantity(client):
    page = soup(client.get(f"/product/{SHIRT}?size=l&color=white"))
    buy_box = page.find("form", id="buy-box")
    assert buy_box["method"] == "post" and buy_box["action"] == "/cart/add"
    fields = {i["name"]: i.get("value") for i in buy_box.find_all("input")}
    assert fields == {"asin": SHIRT, "option_size": "L", "option_color": "White", "quantity": "1"}
    assert page.find("label", attrs={"for": "quantity"})
    buy_now = page.find(id="buy-now")
    form = buy_now.find_parent("form")
    assert buy_now.get("formaction") == "/buy-now" or form["action"] == "/buy-now"
    assert {i["name"] for i in form.find_all("input", type="hidden")} >= {"asin", "option_size", "option_color"}


def test_back_to_results_uses_safe_from(client):
    page = soup(client.get(f"/product/{MUG}?from=/search%3Fq%3Dmug%26sort%3Drating"))
    assert page.find(id="back-to-results")["href"] == "/search?q=mug&sort=rating"
    assert text_of(page.find(id="back-to-results")) == "‹ Back to results"


@pytest.mark.parametrize("evil", ["https://evil.example/", "//evil.example/search", "/\\evil.example", "/cart",
                                  "javascript:alert(1)", "/search\r\nSet-Cookie: x=1", "search?q=x", "http:/search"])
def test_back_link_is_never_an_open_redirect(client, evil):
    page = soup(client.get(f"/product/{MUG}", params={"from": evil}))  # a fresh session: no fallback either
    assert page.find(id="back-to-results") is None
    for a in page.find_all("a"):
        assert a["href"].startswith(("/", "#")) and not a["href"].startswith("//")


def test_back_link_falls_back_to_the_session_search(client):
    client.get("/search?q=lamp&sort=price_asc")
    page = soup(client.get(f"/product/{LAMP}"))
    assert page.find(id="back-to-results")["href"] == "/search?q=lamp&sort=price_asc"


def test_safe_back_path():
    assert safe_back_path("/search?q=x") == "/search?q=x"
    assert safe_back_path("/") == "/"
    for bad in (None, "", "//x", "/\\x", "https://x/search", "/product/x", "/search\n", "x" * 5000):
        assert safe_back_path(bad) is None, bad


# -- escaping -------------------------------------------------------------------------------------------------------

def test_markup_in_catalog_text_is_escaped(client):
    r = client.get(f"/product/{XSS}")
    assert r.status_code == 200
    assert "<script>" not in r.text and "<b>Evil</b>" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Gadget" in r.text
    page = soup(r)
    assert text_of(page.find("h1")) == "<script>alert(1)</script> Gadget"
    assert "<b>Evil</b> & Co" in text_of(page.find(class_="product-brand"))
    assert "<script>alert(3)</script>" in text_of(page.find(id="reviews"))
    results = client.get("/search?q=gadget")
    assert "<script>" not in results.text and soup(results).find("article")["aria-label"].startswith("<script>")


def test_search_text_is_escaped(client):
    r = client.get("/search", params={"q": '"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in r.text
    assert soup(r).find("input", id="search-input")["value"] == '"><script>alert(1)</script>'


# -- images ---------------------------------------------------------------------------------------------------------

def test_placeholder_images(client):
    r = client.get(f"/img/{SHIRT}.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert ">CC<" in r.text and "Clothing" in r.text
    assert client.get(f"/img/{SHIRT}.svg").content == r.content, "deterministic"
    shoe_a, shoe_b = client.get("/img/SHOE000001.svg").text, client.get("/img/SHOE000002.svg").text
    assert re.search(r'fill="(#\w+)"', shoe_a).group(1) == re.search(r'fill="(#\w+)"', shoe_b).group(1)
    xss = client.get(f"/img/{XSS}.svg").text
    assert "<script" not in xss
    assert client.get("/img/NOPE.svg").status_code == 404


# -- variants -------------------------------------------------------------------------------------------------------

def test_variant_a_layout(client_a):
    page = soup(client_a.get("/search?q=running+shoes"))
    aside = page.find("aside", attrs={"aria-label": "Refinements"})
    assert "refinements-sidebar" in aside["class"]
    results = page.find("section", attrs={"aria-label": "Search results"})
    assert "results-list" in results["class"] and len(results.find_all("article")) == 10
    assert results.find("ul", class_="card-bullets"), "the list shows feature bullets"
    product = soup(client_a.get(f"/product/{SHIRT}"))
    buy_box = product.find("form", id="buy-box")
    buttons = [text_of(b) for b in buy_box.find_all("button")]
    assert buttons == ["Add to Cart", "Buy Now"], "Buy Now sits under Add to Cart, in the same form"


def test_variant_b_layout(client_b):
    page = soup(client_b.get("/search?q=running+shoes"))
    aside = page.find("aside", attrs={"aria-label": "Refinements"})
    assert "refinements-topbar" in aside["class"]
    results = page.find("section", attrs={"aria-label": "Search results"})
    assert "results-grid" in results["class"] and len(results.find_all("article")) == 20
    assert not results.find("ul", class_="card-bullets")
    product = soup(client_b.get(f"/product/{SHIRT}"))
    buy_now = product.find(id="buy-now")
    assert text_of(buy_now) == "Buy now — fast checkout"
    assert buy_now.find_parent("form")["action"] == "/buy-now"
    html = str(product)
    assert html.index('id="buy-now"') < html.index('id="product-options"'), "above the options"
    assert [text_of(b) for b in product.find("form", id="buy-box").find_all("button")] == ["Add to Cart"]


def test_unknown_variant_is_refused(catalog_path):
    with pytest.raises(ValueError, match="Expect a variant in a, b, hidden-search, .*; actually: 'c'"):
        create_app(catalog_path, variant="c")
