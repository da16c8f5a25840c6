"""Importing WebShop's product JSON: field mapping, robust prices, skipped items, determinism."""

from __future__ import annotations

import doctest
import json
import logging
from pathlib import Path

import pytest
from catalog_checks import catalog_digest

from sites.store import webshop
from sites.store.catalog import Catalog
from sites.store.models import SearchQuery
from sites.store.webshop import derived_rating, derived_review_count, import_webshop, parse_price, webshop_product

ITEMS = Path(__file__).parent / "data" / "webshop_items.json"


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Catalog, str]:
    out = tmp_path_factory.mktemp("webshop") / "webshop.db"
    stats = import_webshop(ITEMS, out)
    return Catalog(out), stats


def test_summary_counts_imports_and_skips(imported):
    _, stats = imported
    assert stats.startswith("6 products, 3 reviews, 4 skipped")
    for reason in ("duplicate asin: 1", "malformed price: 1", "no name: 1", "no price: 1"):
        assert reason in stats


def test_skips_are_logged(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sites.store.webshop"):
        import_webshop(ITEMS, tmp_path / "x.db")
    messages = [r.getMessage() for r in caplog.records]
    assert any("B07NOPRICE" in m and "no price" in m for m in messages)
    assert any("B07BADPRICE" in m and "malformed price" in m for m in messages)
    assert any("B09QKP7XQL" in m and "duplicate" in m for m in messages)


def test_fields_are_mapped(imported):
    catalog, _ = imported
    shampoo = catalog.get("B09QKP7XQL")
    assert shampoo.title.startswith("Herbal Essences Argan Oil Shampoo")  # the first of two items with this asin
    assert shampoo.brand == "Herbal Essences"  # from the "Brand:" bullet
    assert shampoo.department == "beauty"
    assert shampoo.category == "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos"
    assert (shampoo.price_min, shampoo.price_max) == (8.99, 8.99)
    assert shampoo.options == {"scent": ["Argan Oil", "Coconut Milk"],
                               "size": ["13.5 Fl Oz (Pack of 1)", "13.5 Fl Oz (Pack of 2)"]}
    assert shampoo.image is None, "remote images are not loaded"

    shoes = catalog.get("B07SN7XMVF")
    assert shoes.department == "fashion" and shoes.brand == "Ultralight"  # first word of the name
    assert (shoes.price_min, shoes.price_max) == (24.99, 39.99) and shoes.price_label == "$24.99 - $39.99"
    assert shoes.bullets == ["Rubber sole", "Breathable knit upper", "Machine washable"]  # from one string
    assert shoes.options == {"color": ["Black", "Grey"], "size": ["8", "9", "10.5"]}  # duplicates dropped

    tv = catalog.get("B08L5NP6NG")
    assert tv.price_min == tv.price_max == 1299.0 and tv.options == {}
    assert tv.rating == 4.6 and tv.review_count == 1204

    tea = catalog.get("B00TEAGOLD")
    assert tea.department == "grocery" and (tea.price_min, tea.price_max) == (12.5, 20.0)
    assert tea.options == {"flavor name": ["Jasmine", "Mint"]}
    reviews = catalog.reviews("B00TEAGOLD")
    assert [(r.rating, r.title) for r in reviews] == [(5, "Lovely tea"), (2, "Too weak")]
    assert reviews[0].date == "2021-06-02" and reviews[0].author == "Ana"
    assert reviews[1].author == "Verified Buyer" and len(reviews[1].date) == 10
    assert tea.rating == 3.5, "no average_rating: the mean of its reviews"

    lamp = catalog.get("B0DESKLAMP")
    assert lamp.department == "other" and lamp.category == "other" and lamp.brand == "LED"
    assert lamp.description == "Touch control Three colour temperatures", "empty description: the bullets"
    assert [r.rating for r in catalog.reviews("B0DESKLAMP")] == [4]

    sofa = catalog.get("B0SOFA0002")
    assert sofa.department == "home & furniture" and sofa.rating == 4.2

    for skipped in ("B07NOPRICE", "B07BADPRICE", "B0SOFA0001"):
        assert catalog.get(skipped) is None


def test_missing_ratings_are_derived_from_the_asin(imported):
    catalog, _ = imported
    shampoo = catalog.get("B09QKP7XQL")
    assert shampoo.rating == derived_rating("B09QKP7XQL") and 3.0 <= shampoo.rating <= 5.0
    assert shampoo.review_count == derived_review_count("B09QKP7XQL")
    ratings = [derived_rating(f"B0{i:08d}") for i in range(2000)]
    assert all(3.0 <= r <= 5.0 for r in ratings) and 4.0 < sum(ratings) / len(ratings) < 4.6


def test_import_is_deterministic(tmp_path):
    import_webshop(ITEMS, tmp_path / "a.db")
    import_webshop(ITEMS, tmp_path / "b.db", progress=True)
    assert catalog_digest(tmp_path / "a.db") == catalog_digest(tmp_path / "b.db")
    assert (tmp_path / "a.db").read_bytes() == (tmp_path / "b.db").read_bytes()


def test_imported_catalog_is_searchable(imported):
    catalog, _ = imported
    page = catalog.search(SearchQuery(q="argan shampoo"))
    assert [p.asin for p in page.products] == ["B09QKP7XQL"]
    assert catalog.search(SearchQuery(q="sofa", department="home & furniture")).total == 1
    assert catalog.search(SearchQuery()).total == 6


def test_json_lines_input(tmp_path):
    items = json.loads(ITEMS.read_text())
    lines = tmp_path / "items.jsonl"
    lines.write_text("\n".join(json.dumps(i) for i in items) + "\nnot json\n")
    stats = import_webshop(lines, tmp_path / "x.db")
    assert stats.startswith("6 products") and "not an object: 1" in stats


@pytest.mark.parametrize("value, want", [
    ("$16.99", (16.99, 16.99)), ("$11.78 - $50.28", (11.78, 50.28)), ("$1,299.00", (1299.0, 1299.0)),
    ("$1,299.00 - $2,100", (1299.0, 2100.0)), ("19.5", (19.5, 19.5)), ("$5 to $7", (5.0, 7.0)),
    ("$30.00 - $10.00", (10.0, 30.0)), (12, (12.0, 12.0)), (9.5, (9.5, 9.5)), ([3, 1.5, "2"], (1.5, 3.0)),
    ("", None), ("   ", None), (None, None), ([], None), ("call for price", None), ("$", None),
    ("$5 or best offer", None), ("free", None), ("-$5", None), (-3, None), (float("nan"), None),
    (float("inf"), None), (True, None), ({"amount": 3}, None), (["$3", "n/a"], None), ("$1.2.3", None),
])
def test_parse_price(value, want):
    assert parse_price(value) == want


@pytest.mark.parametrize("item, reason", [
    ("not a dict", "not an object"), ({"name": "x", "pricing": "$1"}, "no asin"),
    ({"asin": "B1", "pricing": "$1"}, "no name"), ({"asin": "B1", "name": "x"}, "no price"),
    ({"asin": "B1", "name": "x", "pricing": "$one"}, "malformed price"),
])
def test_unusable_items_say_why(item, reason):
    assert webshop_product(item) == reason


def test_odd_fields_are_tolerated():
    product, reviews = webshop_product({
        "asin": "B1", "name": "Thing", "pricing": "$3", "small_description": None, "customization_options": [],
        "average_rating": "not rated", "Reviews": "none", "category": 7, "product_category": ["a", "b"],
        "attributes": {"Brand": "Acme", "Weight": 2, "bad": None},
    })
    assert product.brand == "Acme" and product.attributes == {"Brand": "Acme", "Weight": "2"}
    assert product.options == {} and product.bullets == [] and reviews == []
    assert product.department == "a b" and 3.0 <= product.rating <= 5.0


def test_doctests():
    assert doctest.testmod(webshop).failed == 0


def test_warnings_are_capped_per_reason(tmp_path, caplog):
    items = [{"asin": f"B{i:09d}", "name": f"Thing {i}", "pricing": ""} for i in range(50)]
    items.append({"asin": "B999999999", "name": "Kept", "pricing": "$2"})
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items))
    with caplog.at_level(logging.WARNING, logger="sites.store.webshop"):
        stats = import_webshop(path, tmp_path / "x.db")
    assert stats.startswith("1 products") and "no price: 50" in stats
    assert len(caplog.records) == webshop.MAX_WARNINGS_PER_REASON + 1
    assert "50 items skipped in all for 'no price'" in caplog.records[-1].getMessage()
