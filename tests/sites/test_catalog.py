"""The synthetic catalog generator: determinism, fields, departments, options, prices and reviews."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
from collections import Counter

import pytest
from catalog_checks import catalog_digest

from sites.store import vocab as V
from sites.store.catalog import Catalog
from sites.store.generate import GENERATOR_VERSION, asin_for, build_catalog, generate_product

ASIN = re.compile(r"B0[0-9A-Z]{8}")
# Sentence ends, not counting the "Co." of brand names.
SENTENCE_END = re.compile(r"(?<!\bCo)[.!?](?=\s|$)")
NEGATIVE = {s for pos_neg in V.ASPECTS.values() for s in pos_neg[1]}
POSITIVE = {s for pos_neg in V.ASPECTS.values() for s in pos_neg[0]}


@pytest.fixture(scope="module")
def reviews(catalog_path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{catalog_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT r.*, p.department, p.category FROM reviews r JOIN products p"
                            " ON p.id = r.product_id ORDER BY r.id").fetchall()
    finally:
        conn.close()


# -- determinism ------------------------------------------------------------------------------------------------------

def test_same_seed_same_catalog_and_different_seed_differs(tmp_path):
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    build_catalog(a, n_products=300, seed=5)
    build_catalog(b, n_products=300, seed=5)
    build_catalog(c, n_products=300, seed=6)
    assert catalog_digest(a) == catalog_digest(b)
    assert a.read_bytes() == b.read_bytes(), "same seed, same SQLite: byte-identical files"
    assert catalog_digest(a) != catalog_digest(c)


def test_generation_is_order_stable(tmp_path):
    """Product i depends only on (seed, i): a small catalog is the prefix of a bigger one."""
    small, big = tmp_path / "small.db", tmp_path / "big.db"
    build_catalog(small, n_products=40, seed=3)
    build_catalog(big, n_products=200, seed=3)
    with sqlite3.connect(small) as s, sqlite3.connect(big) as b:
        assert s.execute("SELECT * FROM products ORDER BY id").fetchall() == \
            b.execute("SELECT * FROM products WHERE id <= 40 ORDER BY id").fetchall()
        assert s.execute("SELECT * FROM reviews ORDER BY id").fetchall() == \
            b.execute("SELECT * FROM reviews WHERE product_id <= 40 ORDER BY id").fetchall()


def test_generate_product_matches_the_built_catalog(catalog):
    for index in (0, 1, 17, 499):
        product, reviews = generate_product(seed=11, index=index)
        assert catalog.get(product.asin) == product
        assert catalog.reviews(product.asin) == reviews


def test_build_returns_a_summary_and_writes_meta(tmp_path):
    stats = build_catalog(tmp_path / "x.db", n_products=25, seed=1, progress=True)
    assert stats.startswith("25 products,") and "reviews" in stats
    meta = Catalog(tmp_path / "x.db").meta
    assert meta["generator_version"] == str(GENERATOR_VERSION) and meta["seed"] == "1"
    assert meta["n_products"] == "25" and meta["source"] == "synthetic"


def test_bad_size_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="n_products"):
        build_catalog(tmp_path / "x.db", n_products=0, seed=0)


def test_asins_are_stable_and_salted():
    assert asin_for(0, 0) == asin_for(0, 0)
    assert asin_for(0, 0) != asin_for(0, 1) != asin_for(1, 0)
    assert asin_for(0, 0) != asin_for(0, 0, salt=1)
    assert all(ASIN.fullmatch(asin_for(9, i)) for i in range(200))


# -- fields -----------------------------------------------------------------------------------------------------------

def test_every_product_is_well_formed(catalog_rows):
    asins = [r["asin"] for r in catalog_rows]
    assert len(set(asins)) == len(asins)
    for r in catalog_rows:
        assert ASIN.fullmatch(r["asin"]), r["asin"]
        assert r["title"].startswith(r["brand"] + " ")
        assert r["category"].startswith(r["department"] + " › ")
        assert 2 <= len(SENTENCE_END.findall(r["description"])) <= 4, r["description"]
        bullets = json.loads(r["bullets"])
        assert 3 <= len(bullets) <= 5 and all(b and b == b.strip() for b in bullets)
        assert 1.0 <= r["rating"] <= 5.0 and round(r["rating"], 1) == r["rating"]
        text = " ".join(str(v) for v in tuple(r))
        assert "{" not in text.replace(r["options"], "").replace(r["attributes"], "").replace(r["bullets"], "")
        assert "  " not in r["title"] + r["description"]


def test_departments_cover_webshop_and_more(catalog):
    departments = {f.value: f.count for f in catalog.departments()}
    assert {"beauty", "electronics", "fashion", "grocery", "home & furniture"} <= set(departments)
    assert len(departments) >= 5
    total = sum(departments.values())
    assert all(n > total / (3 * len(departments)) for n in departments.values()), departments


def test_brands_belong_to_their_department(catalog_rows):
    for r in catalog_rows:
        assert r["brand"] in V.BRANDS[r["department"]]


def test_ratings_skew_toward_four(catalog_rows):
    ratings = [r["rating"] for r in catalog_rows]
    assert 3.9 <= statistics.mean(ratings) <= 4.5
    assert 4.0 <= statistics.median(ratings) <= 4.6
    assert min(ratings) < 3.5, "some poorly rated products"


def test_options_and_prices_are_sane(catalog_rows):
    with_options = ranged = 0
    for r in catalog_rows:
        options = json.loads(r["options"])
        assert r["price_min"] > 0 and r["price_max"] >= r["price_min"]
        for group, values in options.items():
            assert group and values and len(values) == len(set(values)) and all(isinstance(v, str) for v in values)
        with_options += bool(options)
        if r["price_max"] > r["price_min"]:
            ranged += 1
            assert options, "a price range comes from options"
            assert r["price_max"] >= r["price_min"] + 1
        assert re.fullmatch(r"\d+\.\d{1,2}", f"{r['price_min']}") or r["price_min"] == int(r["price_min"])
    n = len(catalog_rows)
    assert 0.5 * n < with_options < n, "most products have options, some have none"
    assert 0.1 * n < ranged < 0.7 * n


def test_option_groups_fit_the_product(catalog_rows):
    groups_by_department: dict[str, Counter] = {}
    for r in catalog_rows:
        groups_by_department.setdefault(r["department"], Counter()).update(list(json.loads(r["options"])))
    assert "flavor" in groups_by_department["grocery"] and "size" in groups_by_department["fashion"]
    assert "flavor" not in groups_by_department["fashion"] and "shade" not in groups_by_department["grocery"]


def test_text_is_varied(catalog_rows, reviews):
    titles = [r["title"] for r in catalog_rows]
    assert len(set(titles)) > 0.97 * len(titles)
    descriptions = [r["description"] for r in catalog_rows]
    assert len(set(descriptions)) > 0.97 * len(descriptions)
    bodies = [r["body"] for r in reviews]
    assert len(set(bodies)) > 0.8 * len(bodies)


# -- reviews ----------------------------------------------------------------------------------------------------------

def test_every_product_has_one_to_six_reviews(catalog_path, catalog_rows):
    with sqlite3.connect(catalog_path) as conn:
        counts = dict(conn.execute("SELECT product_id, count(*) FROM reviews GROUP BY product_id"))
    for r in catalog_rows:
        assert 1 <= counts.get(r["id"], 0) <= 6
        assert r["review_count"] >= counts[r["id"]]
    assert set(Counter(counts.values())) == {1, 2, 3, 4, 5, 6}


def test_reviews_are_well_formed(reviews):
    for r in reviews:
        assert 1 <= r["rating"] <= 5
        assert re.fullmatch(r"20(2[1-5])-\d\d-\d\d", r["date"])
        assert r["author"] and r["title"] and 20 < len(r["body"]) < 600
    assert {r["rating"] for r in reviews} == {1, 2, 3, 4, 5}


def test_review_text_follows_the_stars(reviews):
    for r in reviews:
        sentences = set(re.split(r"(?<=[.!])\s+", r["body"]))
        if r["rating"] == 5:
            assert not sentences & NEGATIVE, r["body"]
        if r["rating"] <= 2:
            assert not sentences & POSITIVE, r["body"]
            assert "Highly recommend" not in r["body"]
        if r["rating"] == 1:
            assert "Five stars" not in r["body"]


def test_review_text_fits_the_department(reviews):
    for r in reviews:
        body = r["body"].lower()
        if r["department"] == "grocery":
            assert "battery" not in body and "bluetooth" not in body and "runs small" not in body
        if r["department"] == "electronics":
            assert "taste" not in body and "broke me out" not in body
        if r["department"] == "fashion":
            assert "taste" not in body and "battery" not in body


def test_low_ratings_complain_about_the_product(reviews):
    complaints = Counter()
    for r in reviews:
        if r["rating"] <= 2:
            body = r["body"].lower()
            complaints[r["department"]] += any(w in body for w in (
                "size", "fit", "tight", "battery", "taste", "stale", "sound", "flimsy", "broke", "apart", "assembly",
                "wobble", "scent", "smell", "leak", "overpriced", "money", "cheap", "color", "stopped", "slow",
                "itchy", "greasy", "soaked", "dry", "dim", "peel", "stick", "crushed", "grainy", "lag", "light"))
    assert complaints and all(n > 0 for n in complaints.values())


def test_doctests():
    import doctest

    from sites.store import catalog, generate

    for module in (generate, catalog):
        assert doctest.testmod(module).failed == 0, module.__name__
