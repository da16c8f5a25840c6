"""The catalog's SQLite schema and its writer. Readers live in `catalog.py`.

Products are rows of `products`; `products_fts` is an external-content FTS5 index over their text, ranked with BM25.
`search_keys` is a narrow copy of what search filters, sorts and counts by (one small row per product, the department
and brand folded into one integer `code` from `facet_values`), so that a search touches a few megabytes rather than
the wide product rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from .models import Product, Review

SCHEMA_VERSION = 2  # 2: search_keys and facet_values

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    asin TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    brand TEXT NOT NULL,
    department TEXT NOT NULL,
    category TEXT NOT NULL,
    price_min REAL NOT NULL,
    price_max REAL NOT NULL,
    rating REAL NOT NULL,
    review_count INTEGER NOT NULL,
    description TEXT NOT NULL,
    bullets TEXT NOT NULL,      -- JSON list of strings
    options TEXT NOT NULL,      -- JSON {group: [values]}
    attributes TEXT NOT NULL,   -- JSON {key: value}
    image TEXT
);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products(id),
    author TEXT NOT NULL,
    rating INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    date TEXT NOT NULL
);
CREATE TABLE facet_values (
    code INTEGER PRIMARY KEY,
    department TEXT NOT NULL,
    brand TEXT NOT NULL,
    UNIQUE (department, brand)
);
CREATE TABLE search_keys (
    id INTEGER PRIMARY KEY,     -- products.id
    code INTEGER NOT NULL,      -- facet_values.code
    price_min REAL NOT NULL,
    rating REAL NOT NULL,
    review_count INTEGER NOT NULL
);
CREATE VIRTUAL TABLE products_fts USING fts5(
    title, brand, category, description, bullets,
    content='products', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
"""

INDEXES = """
CREATE INDEX reviews_product ON reviews(product_id);
CREATE INDEX products_department ON products(department, rating);
CREATE INDEX products_brand ON products(brand);
CREATE INDEX products_price ON products(price_min);
CREATE INDEX products_rating ON products(rating, review_count);
CREATE INDEX search_keys_popular ON search_keys(review_count DESC, rating DESC);
CREATE INDEX search_keys_price ON search_keys(price_min);
CREATE INDEX search_keys_rating ON search_keys(rating DESC, review_count DESC);
"""

# Derived tables, filled from `products` by `finalize_catalog` (and by `catalog.py` for catalogs of schema 1).
SEARCH_KEYS_FILL = """
INSERT INTO {schema}facet_values (department, brand)
    SELECT DISTINCT department, brand FROM products ORDER BY department, brand;
INSERT INTO {schema}search_keys (id, code, price_min, rating, review_count)
    SELECT p.id, f.code, p.price_min, p.rating, p.review_count
    FROM products p JOIN {schema}facet_values f ON f.department = p.department AND f.brand = p.brand
    ORDER BY p.id;
"""

PRODUCT_COLUMNS = (
    "asin, title, brand, department, category, price_min, price_max, rating, review_count,"
    " description, bullets, options, attributes, image"
)


def create_catalog_db(path: str | Path) -> sqlite3.Connection:
    """Create a fresh, empty catalog at `path` (replacing any file there); return a connection tuned for bulk load."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executescript(SCHEMA)
    return conn


def product_row(p: Product) -> tuple:
    return (
        p.asin, p.title, p.brand, p.department, p.category, p.price_min, p.price_max, p.rating, p.review_count,
        p.description, json.dumps(p.bullets, ensure_ascii=False), json.dumps(p.options, ensure_ascii=False),
        json.dumps(p.attributes, ensure_ascii=False, sort_keys=True), p.image,
    )


def insert_products(conn: sqlite3.Connection, items: Iterable[tuple[Product, list[Review]]]) -> int:
    """Insert products with their reviews, in order. Returns how many products were inserted."""
    n = 0
    for product, reviews in items:
        cur = conn.execute(f"INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ({','.join('?' * 14)})",
                           product_row(product))
        pid = cur.lastrowid
        conn.executemany(
            "INSERT INTO reviews (product_id, author, rating, title, body, date) VALUES (?,?,?,?,?,?)",
            [(pid, r.author, r.rating, r.title, r.body, r.date) for r in reviews],
        )
        n += 1
    return n


def insert_rows(conn: sqlite3.Connection, products: Sequence[tuple], reviews: Iterable[tuple]) -> None:
    """Fast path for bulk loaders: insert plain tuples with explicit ids, skipping model validation.

    `products` rows are `(id, *PRODUCT_COLUMNS)` with bullets/options/attributes already JSON-encoded (see
    `product_row`); `reviews` rows are `(product_id, author, rating, title, body, date)`.
    """
    conn.executemany(f"INSERT INTO products (id, {PRODUCT_COLUMNS}) VALUES ({','.join('?' * 15)})", products)
    conn.executemany("INSERT INTO reviews (product_id, author, rating, title, body, date) VALUES (?,?,?,?,?,?)",
                     reviews)


def finalize_catalog(conn: sqlite3.Connection, meta: dict[str, str]) -> None:
    """Build the FTS index and secondary indexes, write `meta`, and compact the file. Closes `conn`."""
    conn.execute(
        "INSERT INTO products_fts (rowid, title, brand, category, description, bullets)"
        " SELECT id, title, brand, category, description, bullets FROM products"
    )
    conn.execute("INSERT INTO products_fts (products_fts) VALUES ('optimize')")
    conn.executescript(SEARCH_KEYS_FILL.format(schema=""))
    conn.executescript(INDEXES)
    meta = {"schema_version": str(SCHEMA_VERSION), **meta}
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
