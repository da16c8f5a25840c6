"""Catalog search: ranking, refinements, sorts, pagination, facets, caching and hostile input."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sites.store.catalog import HEAD, Catalog, fts_expression, query_tokens
from sites.store.models import SearchPage, SearchQuery

QUERIES = ["running shoes", "wireless headphones", "shampoo", "organic coffee", "sheet set", "yoga mat",
           "men's waterproof shoes", "air fryer", "dark chocolate", "standing desk", "bluetooth speaker", "leggings"]
HOSTILE = ['"', '""', "AND(", "AND", "OR", "NOT", "NEAR/", "NEAR(a b, 3)", "*", "shoe*", "^", "col:", "title:x",
           "{title}: shoes", "-shoes", "+", "(", ")", ":", "'; DROP TABLE products; --", "') OR 1=1 --",
           "1; SELECT * FROM reviews", "\x00", "\\", "%", "_", "__", "😀👟", "shoes 😀", "café crème", "東京 シャツ",
           "ｓｈｏｅｓ", "Ｉ", "\u200b", "\ud7ff", " ", "\n\t", "a" * 5000, "shoes " * 3000, "x" * 100_000,
           " ".join(f"w{i}" for i in range(2000))]


def run(catalog: Catalog, **kw) -> SearchPage:
    return catalog.search(SearchQuery(**kw))


def all_pages(catalog: Catalog, per_page: int = 7, **kw) -> list:
    """Every product of a query, walking the pages."""
    first = run(catalog, per_page=per_page, **kw)
    out = list(first.products)
    for page in range(2, first.pages + 1):
        got = run(catalog, per_page=per_page, page=page, **kw)
        assert got.total == first.total
        out.extend(got.products)
    return out


def reference(catalog_path, q: str, **filters) -> list[sqlite3.Row]:
    """Products that contain every word of `q` and pass the filters, straight from SQL (no ranking)."""
    conn = sqlite3.connect(f"file:{catalog_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT p.* FROM products_fts f JOIN products p ON p.id = f.rowid"
                            " WHERE products_fts MATCH ?", (fts_expression(q, op="AND"),)).fetchall()
    finally:
        conn.close()
    keep = []
    for r in rows:
        if filters.get("department") and r["department"] != filters["department"]:
            continue
        if filters.get("brand") and r["brand"] != filters["brand"]:
            continue
        if filters.get("price_min") is not None and r["price_min"] < filters["price_min"]:
            continue
        if filters.get("price_max") is not None and r["price_min"] > filters["price_max"]:
            continue
        if filters.get("min_rating") is not None and r["rating"] < filters["min_rating"]:
            continue
        keep.append(r)
    return keep


# -- the query language -----------------------------------------------------------------------------------------------

def test_fts_expression_neutralises_syntax():
    assert fts_expression('NEAR/3 "red* shoes" col:x') == '"near" OR "3" OR "red" OR "shoes" OR "col" OR "x"'
    assert fts_expression("shoes for men's running", op="AND") == '"shoes" AND "men" AND "running"'
    assert fts_expression("for the", op="AND") == '"for" AND "the"', "all stop words: keep them"
    assert fts_expression("") is None and fts_expression("*** ---") is None
    assert len(query_tokens(" ".join(f"w{i}" for i in range(100)))) == 16
    with pytest.raises(ValueError, match="op"):
        fts_expression("x", op="NEAR")


# -- ranking ----------------------------------------------------------------------------------------------------------

def test_exact_title_ranks_the_product_first(catalog, catalog_rows):
    first = 0
    for r in catalog_rows:
        page = run(catalog, q=r["title"])
        asins = [p.asin for p in page.products]
        assert r["asin"] in asins[:3], (r["title"], [p.title for p in page.products[:3]])
        first += asins[0] == r["asin"] or page.products[0].title == r["title"]  # twins share a title
    assert first >= 0.99 * len(catalog_rows)


def test_every_result_contains_every_word(catalog, catalog_path):
    matched = 0
    for q in QUERIES:
        want = {r["asin"] for r in reference(catalog_path, q)}
        page = run(catalog, q=q, per_page=50)
        assert page.total > 0, q
        if want:  # else: the any-word fallback
            matched += 1
            assert page.total == len(want) and {p.asin for p in page.products} <= want
            for p in page.products:
                text = " ".join([p.title, p.brand, p.category, p.description, *p.bullets]).lower()
                assert all(w[:3] in text for w in query_tokens(q) if len(w) > 2), (q, p.title)  # porter stems
    assert matched >= len(QUERIES) - 2


def test_titles_outrank_descriptions(catalog):
    page = run(catalog, q="shampoo", per_page=20)
    in_title = [("shampoo" in p.title.lower()) for p in page.products]
    assert in_title[0] and sorted(in_title, reverse=True) == in_title, "title matches come first"


def test_falls_back_to_any_word_when_none_has_all(catalog):
    page = run(catalog, q="shampoo zzzqqq")
    assert page.total == run(catalog, q="shampoo").total > 0
    assert run(catalog, q="zzzqqq xxxyyy").total == 0


def test_no_fallback_when_only_the_filters_exclude_everything(catalog):
    assert run(catalog, q="running shoes").total > 0
    page = run(catalog, q="running shoes", department="grocery")
    assert page.total == 0 and page.products == [] and page.brands == []


def test_results_match_a_plain_sql_reference(catalog, catalog_path):
    for q, filters in [("shoes", {}), ("shoes", {"department": "fashion", "price_max": 90}),
                       ("organic", {"min_rating": 4.2}), ("set", {"price_min": 30, "price_max": 150}),
                       ("waterproof", {"brand": "Northwind"})]:
        want = reference(catalog_path, q, **filters)
        page = run(catalog, q=q, per_page=100, **filters)
        assert page.total == len(want), (q, filters)
        got = all_pages(catalog, q=q, per_page=9, **filters)
        assert sorted(p.asin for p in got) == sorted(r["asin"] for r in want)
        departments = Counter(r["department"] for r in want)
        assert {f.value: f.count for f in page.departments} == dict(departments)
        brands = Counter(r["brand"] for r in want)
        assert [(f.value, f.count) for f in page.brands] == sorted(brands.items(), key=lambda x: (-x[1], x[0]))[:12]


# -- refinements ------------------------------------------------------------------------------------------------------

def test_department_filter(catalog):
    for dept in ("beauty", "electronics", "fashion", "grocery", "home & furniture"):
        page = run(catalog, department=dept, per_page=100)
        assert page.total > 0 and all(p.department == dept for p in page.products)
        assert [f.value for f in page.departments] == [dept]
    assert run(catalog, department="no such department").total == 0


def test_brand_filter(catalog):
    brand = run(catalog, q="shoes").brands[0].value
    page = run(catalog, q="shoes", brand=brand, per_page=100)
    assert page.total > 0 and all(p.brand == brand for p in page.products)
    assert [f.value for f in page.brands] == [brand]
    assert run(catalog, q="shoes", brand="No Such Brand").total == 0


def test_price_range_and_rating_filters(catalog):
    page = run(catalog, price_min=20, price_max=60, min_rating=4.5, per_page=100)
    assert page.total > 0
    assert all(20 <= p.price_min <= 60 and p.rating >= 4.5 for p in all_pages(
        catalog, price_min=20, price_max=60, min_rating=4.5))
    assert run(catalog, price_min=60, price_max=20).total == 0
    assert run(catalog, min_rating=5.0).total == sum(1 for p in all_pages(catalog, per_page=100) if p.rating == 5.0)


def test_combined_filters_narrow(catalog):
    wide = run(catalog, q="organic").total
    narrow = run(catalog, q="organic", department="grocery", price_max=20, min_rating=4).total
    assert 0 < narrow < wide


# -- sorts ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ["", "shoes", "set"])
def test_sorts(catalog, q):
    by_price = [p.price_min for p in all_pages(catalog, q=q, sort="price_asc")]
    assert by_price == sorted(by_price) and len(by_price) == run(catalog, q=q).total
    by_price_desc = [p.price_min for p in all_pages(catalog, q=q, sort="price_desc")]
    assert by_price_desc == sorted(by_price_desc, reverse=True)
    by_rating = [(p.rating, p.review_count) for p in all_pages(catalog, q=q, sort="rating")]
    assert by_rating == sorted(by_rating, reverse=True)


def test_browse_orders_by_popularity(catalog):
    products = run(catalog, per_page=50).products
    keys = [(p.review_count, p.rating) for p in products]
    assert keys == sorted(keys, reverse=True)


# -- pagination -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ["", "shoes", "organic coffee"])
def test_pagination_bounds(catalog, q):
    per_page = 7
    first = run(catalog, q=q, per_page=per_page)
    products = all_pages(catalog, q=q, per_page=per_page)
    assert len(products) == first.total == len({p.asin for p in products})
    last = run(catalog, q=q, per_page=per_page, page=first.pages)
    assert len(last.products) == (first.total % per_page or per_page)
    past = run(catalog, q=q, per_page=per_page, page=first.pages + 1)
    assert past.products == [] and past.total == first.total
    assert run(catalog, q=q, per_page=per_page, page=10**6).total == first.total


def test_browse_everything(catalog, catalog_rows):
    page = run(catalog, per_page=100)
    assert page.total == len(catalog_rows) == len(catalog)
    assert sum(f.count for f in page.departments) == page.total
    assert len(page.brands) == 12 and page.brands[0].count >= page.brands[-1].count


def test_deep_pages_past_the_cached_head(catalog, uncached_catalog):
    per_page = 40
    for page in (1, 2, 3, 4, 5, 9):
        assert (page - 1) * per_page < 500
        a = run(catalog, per_page=per_page, page=page, sort="price_asc")
        b = run(uncached_catalog, per_page=per_page, page=page, sort="price_asc")
        assert a == b
    assert HEAD < 5 * per_page


def test_cache_gives_the_same_pages(catalog, uncached_catalog):
    for q in [*QUERIES, "", "shampoo zzzqqq"]:
        for kw in ({}, {"sort": "price_desc", "page": 2}, {"department": "fashion", "min_rating": 4.0},
                   {"per_page": 3, "page": 5}):
            assert run(catalog, q=q, **kw) == run(uncached_catalog, q=q, **kw)
            assert run(catalog, q=q, **kw) == run(uncached_catalog, q=q, **kw)  # from the cache this time
    catalog.clear_cache()


# -- robustness -------------------------------------------------------------------------------------------------------

def assert_sane(page: SearchPage, per_page: int = 10) -> None:
    assert page.total >= len(page.products) and len(page.products) <= per_page
    assert all(f.count <= page.total for f in [*page.departments, *page.brands])
    if page.products:
        assert page.total > 0


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_never_raise(catalog, q):
    assert_sane(run(catalog, q=q))
    assert_sane(run(catalog, q=q, sort="price_asc", department="fashion", page=3))


def test_sql_in_filters_is_just_text(catalog):
    assert run(catalog, department="fashion' OR '1'='1").total == 0
    assert run(catalog, brand='"; DROP TABLE products; --').total == 0
    assert len(catalog) > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.text(max_size=200), page=st.integers(1, 60), per_page=st.integers(1, 100),
       sort=st.sampled_from(["relevance", "price_asc", "price_desc", "rating"]),
       department=st.one_of(st.none(), st.sampled_from(["fashion", "grocery", "x"]), st.text(max_size=10)),
       price_max=st.one_of(st.none(), st.floats(0, 1e6)), min_rating=st.one_of(st.none(), st.floats(0, 5)))
def test_random_queries_return_sane_pages(catalog, q, page, per_page, sort, department, price_max, min_rating):
    got = run(catalog, q=q, page=page, per_page=per_page, sort=sort, department=department, price_max=price_max,
              min_rating=min_rating)
    assert_sane(got, per_page)


def test_catalogs_of_schema_1_still_search(tmp_path, catalog_path, uncached_catalog):
    """A catalog built before `search_keys` existed derives the keys in memory."""
    old = tmp_path / "old.db"
    shutil.copy(catalog_path, old)
    with sqlite3.connect(old) as conn:
        conn.executescript("DROP TABLE search_keys; DROP TABLE facet_values;"
                           " UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    legacy = Catalog(old, cache_size=0)
    for q in QUERIES[:4]:
        assert run(legacy, q=q, department="fashion") == run(uncached_catalog, q=q, department="fashion")
        assert run(legacy, q=q, sort="rating") == run(uncached_catalog, q=q, sort="rating")


def test_a_catalog_is_shared_between_threads(catalog):
    from concurrent.futures import ThreadPoolExecutor

    want = {q: run(catalog, q=q) for q in QUERIES}
    catalog.clear_cache()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: (q, run(catalog, q=q)), QUERIES * 4))
    assert all(page == want[q] for q, page in got)


def test_bad_cache_size():
    with pytest.raises(ValueError, match="cache_size"):
        Catalog(__file__, cache_size=-1)
