"""Read-only access to a catalog database: product lookup and BM25 search with refinements.

A `Catalog` is safe to share between threads: each thread gets its own read-only SQLite connection.

Search semantics, as on a real shop: a product matches when it contains *every* word of the query (stop words such as
"for" or "the" and the possessive "s" aside), ranked by BM25 with titles weighted most. Only when no product contains
all the words does the search fall back to *any* word, ranked by overlap. Facets and the total count describe the same
matched, refined set as the results.

Speed (see `docs/benchmarks/store.md`): a text search runs the MATCH twice. First for the matching ids alone (no
ranking, no join), which are refined, totalled and counted per (department, brand) in memory, from per-product keys
loaded once per catalog; then to rank, computing BM25 only when sorting by relevance (FTS5 scores every refined match:
about a microsecond each, the main cost of a broad query) and returning the head of the ranking. Browsing without a
query counts and sorts over the narrow, indexed `search_keys` table instead. The page's products are then fetched by
id. The catalog is immutable, so each outcome is kept in a small LRU cache: paging through the head, going back to the
results or re-sorting back costs a dictionary look-up.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .db import PRODUCT_COLUMNS, SEARCH_KEYS_FILL
from .models import Facet, Product, Review, SearchPage, SearchQuery

# BM25 column weights for (title, brand, category, description, bullets): titles matter most, as on a real shop.
BM25_WEIGHTS = (10.0, 5.0, 2.0, 1.0, 1.0)
MAX_QUERY_TOKENS = 16
MAX_TOKEN_LEN = 40
DEPARTMENT_FACETS = 20
BRAND_FACETS = 12
HEAD = 100  # how many top-ranked ids one search statement returns (and the cache keeps): pages 1-10 at 10 a page
_TOKEN = re.compile(r"\w+", re.UNICODE)
# Words that a product need not contain to match an all-words query ("shoes for men", "men's shoes").
STOP_WORDS = frozenset("a an and are as at be by for from i in is it me my of on or our s so that the this to under"
                       " was we what with you your".split())

_ORDER = {
    "relevance": "score ASC, k.id ASC",
    "price_asc": "k.price_min ASC, k.id ASC",
    "price_desc": "k.price_min DESC, k.id ASC",
    "rating": "k.rating DESC, k.review_count DESC, k.id ASC",
}
# Without a text query, "relevance" falls back to popularity.
_BROWSE_ORDER = {**_ORDER, "relevance": "k.review_count DESC, k.rating DESC, k.id ASC"}
_BM25 = f"bm25(products_fts, {', '.join(map(str, BM25_WEIGHTS))})"
_PRODUCT_SELECT = ", ".join("p." + c.strip() for c in PRODUCT_COLUMNS.split(","))
_LEGACY_KEYS = """
CREATE TEMP TABLE facet_values (code INTEGER PRIMARY KEY, department TEXT NOT NULL, brand TEXT NOT NULL);
CREATE TEMP TABLE search_keys (id INTEGER PRIMARY KEY, code INTEGER NOT NULL, price_min REAL NOT NULL,
                               rating REAL NOT NULL, review_count INTEGER NOT NULL);
""" + SEARCH_KEYS_FILL.format(schema="temp.")


def query_tokens(q: str) -> list[str]:
    """The distinct lower-case word tokens of `q`, at most `MAX_QUERY_TOKENS`, each at most `MAX_TOKEN_LEN` chars."""
    tokens: list[str] = []
    for tok in _TOKEN.findall(q.lower()):
        tok = tok.strip("_")[:MAX_TOKEN_LEN]
        if tok and tok not in tokens:
            tokens.append(tok)
            if len(tokens) >= MAX_QUERY_TOKENS:
                break
    return tokens


def fts_expression(q: str, op: str = "OR") -> str | None:
    """Turn free text into a safe FTS5 query: bare word tokens, each quoted, joined by `op` ("OR" or "AND").

    Any FTS5 syntax in the input (quotes, AND/OR/NEAR, `*`, `col:`) is neutralised, because only `\\w+` runs survive
    and each is wrapped in double quotes. Stop words ("for", "the", the "s" of "men's") are left out unless nothing
    else is left. Returns None when no token is left.

    >>> fts_expression('NEAR/3 "red* shoes" col:x')
    '"near" OR "3" OR "red" OR "shoes" OR "col" OR "x"'
    >>> fts_expression("shoes for men's running", op="AND")
    '"shoes" AND "men" AND "running"'
    """
    if op not in ("OR", "AND"):
        raise ValueError(f"Expect op 'OR' or 'AND', actually: {op!r}")
    tokens = query_tokens(q)
    tokens = [t for t in tokens if t not in STOP_WORDS] or tokens
    return f" {op} ".join(f'"{t}"' for t in tokens) or None


@dataclass(frozen=True)
class _Summary:
    """What one search learns: the total, the facets, and the ids of results offset .. offset + len(ids)."""

    total: int
    departments: list[Facet]
    brands: list[Facet]
    ids: list[int]
    offset: int

    def covers(self, offset: int, n: int) -> bool:
        end = self.offset + len(self.ids)
        return offset >= self.total or self.offset <= offset and (offset + n <= end or end >= self.total)


@dataclass(frozen=True)
class _Keys:
    """Search keys indexed by product id: (department, brand) code, lowest price, rating."""

    codes: list[int]
    price: list[float]
    rating: list[float]


def _product(row: sqlite3.Row) -> Product:
    return Product(
        asin=row["asin"], title=row["title"], brand=row["brand"], department=row["department"],
        category=row["category"], price_min=row["price_min"], price_max=row["price_max"], rating=row["rating"],
        review_count=row["review_count"], description=row["description"], bullets=json.loads(row["bullets"]),
        options=json.loads(row["options"]), attributes=json.loads(row["attributes"]), image=row["image"],
    )


class Catalog:
    """A catalog database opened read-only.

    `cache_size` is how many search summaries (total, facets, head of the ranking) to keep; 0 turns the cache off.
    """

    def __init__(self, path: str | Path, cache_size: int = 512):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no catalog database at {self.path}; build one with `shop-r1 store build`")
        if cache_size < 0:
            raise ValueError(f"Expect cache_size >= 0, actually: {cache_size}")
        self._local = threading.local()
        self._cache: OrderedDict[tuple, _Summary] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._keys_cache: _Keys | None = None
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            self.meta = {k: v for k, v in conn.execute("SELECT key, value FROM meta")}
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
        self._legacy = "search_keys" not in tables  # schema 1: derive the search keys per connection, in memory
        codes = self._conn().execute("SELECT code, department, brand FROM facet_values ORDER BY code").fetchall()
        self._facet_of: dict[int, tuple[str, str]] = {c: (d, b) for c, d, b in codes}
        self._codes_by_department: dict[str, list[int]] = {}
        self._codes_by_brand: dict[str, list[int]] = {}
        for code, (department, brand) in self._facet_of.items():
            self._codes_by_department.setdefault(department, []).append(code)
            self._codes_by_brand.setdefault(brand, []).append(code)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            # Memory-map the file: read-only pages are shared through the OS page cache by every thread and process.
            conn.execute("PRAGMA mmap_size = 4294967296")
            conn.execute("PRAGMA cache_size = -16384")  # 16 MiB: pages mostly come from the memory map
            conn.execute("PRAGMA temp_store = MEMORY")
            if self._legacy:
                conn.executescript(_LEGACY_KEYS)
            self._local.conn = conn
        return conn

    def __len__(self) -> int:
        return self._conn().execute("SELECT count(*) FROM products").fetchone()[0]

    def get(self, asin: str) -> Product | None:
        row = self._conn().execute(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE asin = ?", (asin,)).fetchone()
        return _product(row) if row else None

    def product_at(self, index: int) -> Product:
        """The product at position `index` (0-based, catalog order); for deterministic sampling."""
        row = self._conn().execute(f"SELECT {PRODUCT_COLUMNS} FROM products ORDER BY id LIMIT 1 OFFSET ?",
                                   (index,)).fetchone()
        if row is None:
            raise IndexError(f"Expect an index below {len(self)}, actually: {index}")
        return _product(row)

    def products(self, offset: int = 0, limit: int = 100) -> list[Product]:
        """Up to `limit` products from position `offset` (0-based) in catalog order, the order of `product_at`."""
        if offset < 0 or limit < 0:
            raise ValueError(f"Expect offset >= 0 and limit >= 0, actually: offset {offset}, limit {limit}")
        rows = self._conn().execute(f"SELECT {PRODUCT_COLUMNS} FROM products ORDER BY id LIMIT ? OFFSET ?",
                                    (limit, offset)).fetchall()
        return [_product(r) for r in rows]

    def iter_products(self, batch: int = 1000) -> Iterator[Product]:
        """Every product in catalog order, read `batch` rows at a time (by id, so a large catalog costs no OFFSET)."""
        if batch < 1:
            raise ValueError(f"Expect batch >= 1, actually: {batch}")
        last = None
        while True:
            after = "" if last is None else "WHERE id > ? "
            rows = self._conn().execute(
                f"SELECT id, {PRODUCT_COLUMNS} FROM products {after}ORDER BY id LIMIT ?",
                (batch,) if last is None else (last, batch)).fetchall()
            yield from (_product(r) for r in rows)
            if len(rows) < batch:
                return
            last = rows[-1]["id"]

    def brands(self) -> list[str]:
        """Every brand, sorted."""
        return [b for (b,) in self._conn().execute("SELECT DISTINCT brand FROM products ORDER BY brand")]

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

    def clear_cache(self) -> None:
        """Forget cached search summaries (benchmarks use it to time cold searches)."""
        with self._cache_lock:
            self._cache.clear()

    def search(self, query: SearchQuery) -> SearchPage:
        """BM25-ranked results with refinements, a total count, facets and one page of products.

        All words must match; if no product has them all, any word may (see the module docstring).
        """
        offset = (query.page - 1) * query.per_page
        strict = fts_expression(query.q, op="AND")
        summary = self._summary(strict, query, offset)
        if summary.total == 0 and strict is not None:
            loose = fts_expression(query.q, op="OR")
            refined = self._refined_codes(query) is not None or any(
                v is not None for v in (query.price_min, query.price_max, query.min_rating))
            if loose != strict and not (refined and self._any_match(strict)):
                summary = self._summary(loose, query, offset)
        start = offset - summary.offset
        ids = summary.ids[start:start + query.per_page] if start >= 0 else []
        return SearchPage(query=query, total=summary.total, products=self._products(ids),
                          departments=summary.departments, brands=summary.brands)

    # -- internals ----------------------------------------------------------------------------------------------------

    def _filters(self, query: SearchQuery) -> tuple[list[str], list]:
        """SQL conditions on `search_keys k` for the query's refinements, and their parameters."""
        where: list[str] = []
        params: list = []
        codes = self._refined_codes(query)
        if codes is not None:
            where.append(f"k.code IN ({','.join(map(str, sorted(codes)))})" if codes else "0")
        if query.price_min is not None:
            where.append("k.price_min >= ?")
            params.append(query.price_min)
        if query.price_max is not None:
            where.append("k.price_min <= ?")
            params.append(query.price_max)
        if query.min_rating is not None:
            where.append("k.rating >= ?")
            params.append(query.min_rating)
        return where, params

    def _any_match(self, expr: str) -> bool:
        sql = "SELECT 1 FROM products_fts WHERE products_fts MATCH ? LIMIT 1"
        return self._conn().execute(sql, (expr,)).fetchone() is not None

    def _summary(self, expr: str | None, query: SearchQuery, offset: int) -> _Summary:
        """Total, facets and ranked ids covering [offset, offset + per_page), from the cache or the database."""
        key = (expr, query.department, query.brand, query.price_min, query.price_max, query.min_rating, query.sort)
        per_page = query.per_page
        if self._cache_size:
            with self._cache_lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
            if hit is not None and hit.covers(offset, per_page):
                return hit
        # The head of the ranking serves the first pages; deeper pages fetch just themselves.
        limit, start = (HEAD, 0) if offset + per_page <= HEAD else (per_page, offset)
        summary = self._run(expr, query, limit, start)
        if self._cache_size and start == 0:
            with self._cache_lock:
                self._cache[key] = summary
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return summary

    def _keys(self) -> _Keys:
        """Per-product search keys in memory, loaded on the first search (a few MB at 100k products)."""
        keys = self._keys_cache
        if keys is None:
            with self._cache_lock:
                if self._keys_cache is None:
                    rows = self._conn().execute("SELECT id, code, price_min, rating FROM search_keys ORDER BY id")
                    n = 1 + (self._conn().execute("SELECT max(id) FROM search_keys").fetchone()[0] or 0)
                    codes, price, rating = [0] * n, [0.0] * n, [0.0] * n
                    for i, code, price_min, stars in rows:
                        codes[i], price[i], rating[i] = code, price_min, stars
                    self._keys_cache = _Keys(codes=codes, price=price, rating=rating)
                keys = self._keys_cache
        return keys

    def _matching_ids(self, expr: str, query: SearchQuery) -> list[int]:
        """Ids of the products matching `expr` that pass the query's refinements (filtered in memory: no join)."""
        ids = [rowid for (rowid,) in self._conn().execute(
            "SELECT rowid FROM products_fts WHERE products_fts MATCH ?", (expr,))]
        keys = self._keys()
        codes = self._refined_codes(query)
        if codes is not None:
            ids = [i for i in ids if keys.codes[i] in codes]
        lo, hi = query.price_min, query.price_max
        if lo is not None or hi is not None:
            lo = -math.inf if lo is None else lo
            hi = math.inf if hi is None else hi
            price = keys.price
            ids = [i for i in ids if lo <= price[i] <= hi]
        if query.min_rating is not None:
            floor, rating = query.min_rating, keys.rating
            ids = [i for i in ids if rating[i] >= floor]
        return ids

    def _refined_codes(self, query: SearchQuery) -> set[int] | None:
        """The (department, brand) codes the query's department and brand refinements allow; None: all of them."""
        codes: set[int] | None = None
        if query.department:
            codes = set(self._codes_by_department.get(query.department, ()))
        if query.brand:
            brand_codes = set(self._codes_by_brand.get(query.brand, ()))
            codes = brand_codes if codes is None else codes & brand_codes
        return codes

    def _run(self, expr: str | None, query: SearchQuery, limit: int, offset: int) -> _Summary:
        conn = self._conn()
        where, params = self._filters(query)
        cond = " AND ".join(where)
        sort = query.sort
        counts: list[tuple[int, int]]  # (department-and-brand code, matches)
        if expr is not None:
            ids = self._matching_ids(expr, query)
            total = len(ids)
            codes = self._keys().codes
            counts = list(Counter([codes[i] for i in ids]).items())
            # CROSS JOIN pins the join order: walk the FTS matches, look their keys up by id (never the reverse).
            source = "products_fts CROSS JOIN search_keys k ON k.id = products_fts.rowid"
            match = f"products_fts MATCH ?{' AND ' + cond if cond else ''}"
            args = [expr, *params]
            order = _ORDER[sort]
        else:
            source, match, args, order = "search_keys k", cond or "1", list(params), _BROWSE_ORDER[sort]
            counts = conn.execute(f"SELECT k.code, count(*) FROM {source} WHERE {match} GROUP BY k.code",
                                  args).fetchall()
            total = sum(n for _, n in counts)
        per_department: dict[str, int] = {}
        per_brand: dict[str, int] = {}
        for code, n in counts:
            department, brand = self._facet_of[code]
            per_department[department] = per_department.get(department, 0) + n
            per_brand[brand] = per_brand.get(brand, 0) + n
        ranked: list[int] = []
        if offset < total:
            if expr is not None and sort == "relevance" and not cond:
                sql = (f"SELECT rowid, {_BM25} AS score FROM products_fts WHERE products_fts MATCH ?"
                       " ORDER BY score ASC, rowid ASC LIMIT ? OFFSET ?")
            else:  # BM25 is computed only for the refined matches, and only when sorting by relevance
                score = f", {_BM25} AS score" if expr is not None and sort == "relevance" else ""
                sql = f"SELECT k.id{score} FROM {source} WHERE {match} ORDER BY {order} LIMIT ? OFFSET ?"
            ranked = [row[0] for row in conn.execute(sql, [*args, limit, offset])]
        return _Summary(total=total, departments=_top(per_department, DEPARTMENT_FACETS),
                        brands=_top(per_brand, BRAND_FACETS), ids=ranked, offset=offset)

    def _products(self, ids: list[int]) -> list[Product]:
        if not ids:
            return []
        rows = self._conn().execute(
            f"SELECT p.id AS id, {_PRODUCT_SELECT} FROM products p WHERE p.id IN ({','.join('?' * len(ids))})",
            ids).fetchall()
        by_id = {row["id"]: row for row in rows}
        return [_product(by_id[i]) for i in ids if i in by_id]


def _top(counts: dict[str, int], n: int) -> list[Facet]:
    """The `n` most frequent values, ties broken alphabetically, as the facets list them."""
    return [Facet(value=v, count=c) for v, c in sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))[:n]]
