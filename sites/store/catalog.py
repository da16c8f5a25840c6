"""Read-only access to a catalog database: product lookup and BM25 search with refinements.

A `Catalog` is safe to share between threads: each thread gets its own read-only SQLite connection.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path

from .db import PRODUCT_COLUMNS
from .models import Facet, Product, Review, SearchPage, SearchQuery

# BM25 column weights for (title, brand, category, description, bullets): titles matter most, as on a real shop.
BM25_WEIGHTS = (10.0, 5.0, 2.0, 1.0, 1.0)
MAX_QUERY_TOKENS = 16
MAX_TOKEN_LEN = 40
_TOKEN = re.compile(r"\w+", re.UNICODE)

_ORDER = {
    "relevance": "score ASC, p.id ASC",
    "price_asc": "p.price_min ASC, p.id ASC",
    "price_desc": "p.price_min DESC, p.id ASC",
    "rating": "p.rating DESC, p.review_count DESC, p.id ASC",
}
# Without a text query, "relevance" falls back to popularity.
_BROWSE_ORDER = {**_ORDER, "relevance": "p.review_count DESC, p.rating DESC, p.id ASC"}


def fts_expression(q: str) -> str | None:
    """Turn free text into a safe FTS5 query: bare word tokens, each quoted, OR-ed (BM25 ranks by overlap).

    Any FTS5 syntax in the input (quotes, AND/OR/NEAR, `*`, `col:`) is neutralised, because only `\\w+` runs survive
    and each is wrapped in double quotes. Returns None when no token is left.

    >>> fts_expression('NEAR/3 "red* shoes" col:x')
    '"near" OR "3" OR "red" OR "shoes" OR "col" OR "x"'
    """
    tokens: list[str] = []
    for tok in _TOKEN.findall(q.lower()):
        tok = tok.strip("_")[:MAX_TOKEN_LEN]
        if tok and tok not in tokens:
            tokens.append(tok)
        if len(tokens) >= MAX_QUERY_TOKENS:
            break
    return " OR ".join(f'"{t}"' for t in tokens) or None


def _product(row: sqlite3.Row) -> Product:
    return Product(
        asin=row["asin"], title=row["title"], brand=row["brand"], department=row["department"],
        category=row["category"], price_min=row["price_min"], price_max=row["price_max"], rating=row["rating"],
        review_count=row["review_count"], description=row["description"], bullets=json.loads(row["bullets"]),
        options=json.loads(row["options"]), attributes=json.loads(row["attributes"]), image=row["image"],
    )


class Catalog:
    """A catalog database opened read-only."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no catalog database at {self.path}; build one with `shop-r1 store build`")
        self._local = threading.local()
        self.meta = {k: v for k, v in self._conn().execute("SELECT key, value FROM meta")}

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def __len__(self) -> int:
        return self._conn().execute("SELECT count(*) FROM products").fetchone()[0]

    def get(self, asin: str) -> Product | None:
        row = self._conn().execute(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE asin = ?", (asin,)).fetchone()
        return _product(row) if row else None

    def reviews(self, asin: str, limit: int = 20) -> list[Review]:
        rows = self._conn().execute(
            "SELECT r.author, r.rating, r.title, r.body, r.date FROM reviews r JOIN products p ON p.id = r.product_id"
            " WHERE p.asin = ? ORDER BY r.id LIMIT ?", (asin, limit)).fetchall()
        return [Review(**dict(r)) for r in rows]

    def departments(self) -> list[Facet]:
        rows = self._conn().execute(
            "SELECT department, count(*) FROM products GROUP BY department ORDER BY department").fetchall()
        return [Facet(value=d, count=c) for d, c in rows]

    def featured(self, n: int = 8) -> list[Product]:
        """The best-reviewed products, round-robin over departments: deterministic for a given catalog."""
        per_dept: list[list[Product]] = []
        for dept in self.departments():
            rows = self._conn().execute(
                f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE department = ?"
                " ORDER BY rating * review_count DESC, id LIMIT ?", (dept.value, n)).fetchall()
            per_dept.append([_product(r) for r in rows])
        out: list[Product] = []
        for i in range(n):
            out.extend(group[i] for group in per_dept if i < len(group))
        return out[:n]

    def search(self, query: SearchQuery) -> SearchPage:
        """BM25-ranked results with refinements, a total count, facets and one page of products."""
        expr = fts_expression(query.q)
        where, params = [], []
        if query.department:
            where.append("p.department = ?")
            params.append(query.department)
        if query.brand:
            where.append("p.brand = ?")
            params.append(query.brand)
        if query.price_min is not None:
            where.append("p.price_min >= ?")
            params.append(query.price_min)
        if query.price_max is not None:
            where.append("p.price_min <= ?")
            params.append(query.price_max)
        if query.min_rating is not None:
            where.append("p.rating >= ?")
            params.append(query.min_rating)
        if expr is not None:
            source = ("(SELECT rowid AS id, bm25(products_fts, %s) AS score FROM products_fts"
                      " WHERE products_fts MATCH ?) m JOIN products p ON p.id = m.id" % ", ".join(map(str, BM25_WEIGHTS)))
            src_params: list = [expr]
            order = _ORDER[query.sort]
        else:
            source, src_params, order = "products p", [], _BROWSE_ORDER[query.sort]
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        conn = self._conn()
        offset = (query.page - 1) * query.per_page
        rows = conn.execute(
            f"SELECT {', '.join('p.' + c.strip() for c in PRODUCT_COLUMNS.split(','))}, count(*) OVER () AS total"
            f" FROM {source}{cond} ORDER BY {order} LIMIT ? OFFSET ?",
            [*src_params, *params, query.per_page, offset]).fetchall()
        if rows:
            total = rows[0]["total"]
        else:
            total = conn.execute(f"SELECT count(*) FROM {source}{cond}", [*src_params, *params]).fetchone()[0]

        def facet(column: str, limit: int) -> list[Facet]:
            got = conn.execute(
                f"SELECT p.{column}, count(*) AS n FROM {source}{cond} GROUP BY p.{column} ORDER BY n DESC, p.{column}"
                " LIMIT ?", [*src_params, *params, limit]).fetchall()
            return [Facet(value=v, count=c) for v, c in got]

        return SearchPage(query=query, total=total, products=[_product(r) for r in rows],
                          departments=facet("department", 20), brands=facet("brand", 12))
