"""Products to draw shopper intents from, read from a site's product export: a JSONL file or a `/api/products` URL.

Any site can offer the export; the local store does (`shop-r1 store export-products`, `GET /api/products`). Each record
is a JSON object with at least `asin`, `title`, `brand`, `department`, `price_min` and `options` (group -> values);
other fields are ignored. Over HTTP the export comes a page at a time:

    GET <url>?offset=0&limit=1000  ->  {"total": N, "offset": 0, "next_offset": 1000 | null, "products": [...]}

`agent.runtime.population.sample_from_products` draws intents from the records: for the same products in the same
order and the same seed, the very intents that `agent.wiring.sample_from_catalog` draws from the store's catalog.

>>> products = load_products("products.jsonl")                          # doctest: +SKIP
>>> products = load_products("http://127.0.0.1:8000/api/products")      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["ExportedProduct", "ProductSourceError", "fetch_products", "load_products", "products_endpoint",
           "read_products_jsonl"]

PAGE_SIZE = 1000  # products asked for per request (a site may answer with fewer: `next_offset` says where to go on)
MAX_PAGE_BYTES = 64 * 1024 * 1024  # one page's body at most; a larger one is refused, not read into memory
MAX_PRODUCTS = 10_000_000


class ProductSourceError(ValueError):
    """A product export that cannot be read: a missing file, a bad line, an HTTP error or a page off the contract."""


class ExportedProduct(BaseModel):
    """One product of a site's export: what an intent is written from (`agent.runtime.population.ProductRecord`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    asin: str = Field(min_length=1)
    title: str = Field(min_length=1)
    brand: str
    department: str
    price_min: float = Field(ge=0, allow_inf_nan=False)
    options: dict[str, list[str]] = Field(default_factory=dict)
    category: str = ""
    price_max: float | None = None


class _Page(BaseModel):
    total: int = Field(ge=0, le=MAX_PRODUCTS)
    offset: int = Field(ge=0)
    next_offset: int | None
    products: list[ExportedProduct]


def _reason(exc: ValidationError) -> str:
    """The first problem ('options.color: Input should be a valid list'), and how many more there are."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{first.get('msg', 'invalid')}{more}"


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def load_products(source: str | Path, *, timeout: float = 30.0) -> list[ExportedProduct]:
    """The products of an export, in its order: `source` is an http(s) URL (`fetch_products`) or a JSONL file
    (`read_products_jsonl`). An export without products is an error."""
    products = fetch_products(str(source), timeout=timeout) if is_url(source) else read_products_jsonl(source)
    if not products:
        raise ProductSourceError(f"Expect products to draw intents from in {source}, actually: none")
    return products


def read_products_jsonl(path: str | Path) -> list[ExportedProduct]:
    """The products of a JSONL file, one JSON object a line (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ProductSourceError(f"Expect a JSONL product export at {path}, actually: no such file")
    products = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                products.append(ExportedProduct.model_validate_json(line))
            except ValidationError as exc:
                raise ProductSourceError(f"Expect a product JSON object on line {lineno} of {path}, actually: "
                                         f"{_reason(exc)}") from None
    return products


def products_endpoint(url: str) -> httpx.URL:
    """The export's URL: `url` itself, or `<url>/api/products` when `url` is a bare site (no path, or '/')."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ProductSourceError(f"Expect an http(s) URL of a product export, actually: {url!r} ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProductSourceError(f"Expect an http(s) URL of a product export, actually: {url!r}")
    return parsed.copy_with(path="/api/products") if parsed.path in ("", "/") else parsed


def _get_page(client: httpx.Client, url: httpx.URL) -> _Page:
    with client.stream("GET", url, headers={"accept": "application/json"}) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_PAGE_BYTES:
                raise ProductSourceError(f"Expect a page of at most {MAX_PAGE_BYTES} bytes from {url}, actually: more")
    if response.status_code != 200:
        shown = body[:200].decode("utf-8", "replace")
        raise ProductSourceError(f"Expect 200 from {url}, actually: {response.status_code} {shown}")
    try:
        return _Page.model_validate_json(bytes(body))
    except ValidationError as exc:
        raise ProductSourceError(f"Expect a JSON page of products from {url}, actually: {_reason(exc)}") from None


def fetch_products(url: str, *, timeout: float = 30.0, page_size: int = PAGE_SIZE) -> list[ExportedProduct]:
    """Every product of a site's `/api/products` export (`products_endpoint(url)`), page by page, in its order.

    Each page must start where the last one ended (`offset`, then `next_offset = offset + len(products)`), and the
    pages together must hold `total` products; anything else is a `ProductSourceError`, as are HTTP errors.
    """
    if page_size < 1:
        raise ValueError(f"Expect page_size >= 1, actually: {page_size}")
    endpoint = products_endpoint(url)
    products: list[ExportedProduct] = []
    offset = 0
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            while True:
                page_url = endpoint.copy_merge_params({"offset": offset, "limit": page_size})
                page = _get_page(client, page_url)
                if page.offset != offset:
                    raise ProductSourceError(f"Expect the page at offset {offset} from {page_url}, actually: "
                                             f"offset {page.offset}")
                products.extend(page.products)
                if len(products) > page.total:
                    raise ProductSourceError(f"Expect at most {page.total} products (the total) from {endpoint}, "
                                             f"actually: {len(products)}")
                if page.next_offset is None:
                    break
                if not page.products or page.next_offset != offset + len(page.products):
                    raise ProductSourceError(f"Expect next_offset {offset + len(page.products)} from {page_url} "
                                             f"(after {len(page.products)} products), actually: {page.next_offset}")
                offset = page.next_offset
    except httpx.HTTPError as exc:
        raise ProductSourceError(f"Expect products from {endpoint}, actually: {type(exc).__name__}: {exc}") from None
    if len(products) != page.total:
        raise ProductSourceError(f"Expect {page.total} products (the total) from {endpoint}, actually: "
                                 f"{len(products)}")
    return products
