"""A small hand-written catalog for the store web-app tests (independent of the generator).

- 30 "Trail Runner" shoes from three brands, so that a search for "running shoes" has 3 pages in variant a;
- shirts with size and colour options, a mug, a lamp, and one product whose title is a script tag (escaping tests).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup

from sites.store.db import create_catalog_db, finalize_catalog, insert_products
from sites.store.models import Product, Review

SHIRT = "SHIRT00001"
MUG = "MUG0000001"
LAMP = "LAMP000001"
XSS = "XSS0000001"
SHOE_BRANDS = ("Acme", "Stride", "Peakline")
N_SHOES = 30


def products() -> list[tuple[Product, list[Review]]]:
    out: list[tuple[Product, list[Review]]] = []
    for i in range(N_SHOES):
        brand = SHOE_BRANDS[i % 3]
        out.append((Product(
            asin=f"SHOE{i:06d}", title=f"{brand} Trail Runner {i} Running Shoes", brand=brand,
            department="Shoes", category="Shoes › Athletic › Running", price_min=20.0 + 5 * i, price_max=20.0 + 5 * i,
            rating=round(2.5 + (i % 6) * 0.5, 1), review_count=10 * i + 3,
            description=f"A light running shoe, model {i}. Breathable mesh and a grippy sole.",
            bullets=["Breathable mesh upper", "Cushioned midsole", "Rubber outsole"],
            options={"size": ["7", "8", "9", "10", "10.5"], "color": ["Black", "Navy Blue"]},
            attributes={"Material": "Mesh"},
        ), [Review(author=f"Runner {i}", rating=4, title="Comfortable", body=f"Ran 10k in pair {i}.",
                   date="2024-05-17")]))
    out.append((Product(
        asin=SHIRT, title="Classic Cotton T-Shirt", brand="Threadly", department="Clothing",
        category="Clothing › Men › Shirts", price_min=15.99, price_max=15.99, rating=4.4, review_count=812,
        description="A soft everyday tee.\nPre-shrunk cotton.", bullets=["100% cotton", "Machine washable"],
        options={"size": ["S", "M", "L", "XL"], "color": ["White", "Navy", "Heather Grey"]},
        attributes={"Fabric": "Cotton", "Fit": "Regular"},
    ), [
        Review(author="Sam", rating=5, title="Great fit", body="Fits true to size and washes well.", date="2024-02-01"),
        Review(author="Lee", rating=3, title="Thin", body="A bit thin, but fine for the price.", date="2024-03-09"),
    ]))
    out.append((Product(
        asin=MUG, title="Ceramic Coffee Mug 12 oz", brand="Kilnware", department="Home & Kitchen",
        category="Home & Kitchen › Kitchen › Mugs", price_min=9.5, price_max=9.5, rating=4.7, review_count=221,
        description="Dishwasher-safe stoneware mug.", bullets=["12 oz", "Dishwasher safe"],
    ), []))
    out.append((Product(
        asin=LAMP, title="LED Desk Lamp with USB Port", brand="Lumio", department="Home & Kitchen",
        category="Home & Kitchen › Lighting › Desk Lamps", price_min=34.0, price_max=49.0, rating=4.1,
        review_count=95, description="Dimmable desk lamp.", bullets=["5 brightness levels"],
        options={"finish": ["Black", "White"]},
    ), []))
    out.append((Product(
        asin=XSS, title="<script>alert(1)</script> Gadget", brand="<b>Evil</b> & Co", department="Electronics",
        category="Electronics › Gadgets", price_min=1.0, price_max=1.0, rating=1.0, review_count=1,
        description='"><img src=x onerror=alert(2)>', bullets=["<i>bullet</i>"],
    ), [Review(author="<script>x</script>", rating=1, title="<b>bad</b>", body="<script>alert(3)</script>",
               date="2024-01-01")]))
    return out


def build_test_catalog(path: str | Path) -> Path:
    """Write the test catalog to `path` and return it."""
    path = Path(path)
    conn = create_catalog_db(path)
    insert_products(conn, products())
    finalize_catalog(conn, {"source": "tests"})
    return path


def soup(response) -> BeautifulSoup:
    """The response body parsed as HTML."""
    return BeautifulSoup(response.text, "html.parser")


def text_of(node) -> str:
    """An element's visible text with whitespace collapsed."""
    return " ".join(node.get_text(" ").split())


def query_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query, keep_blank_values=True)
