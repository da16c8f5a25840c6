"""The store's product export: one record per product, in catalog order, as any shopper simulator can read it.

The same records come from `GET /api/products` (a page at a time, `routers/products_api.py`) and from
`shop-r1 store export-products` (every product, one JSON line each). They carry what a shopper's intent is written from
(title, brand, department, lowest price, option groups, id) and a little more (category, highest price); never HTML,
never reviews or descriptions. Product text is data: it is JSON-encoded as it is, not escaped for a page.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from .catalog import Catalog
from .models import Product

__all__ = ["DEFAULT_PAGE", "MAX_OFFSET", "MAX_PAGE", "ExportedProduct", "ProductPage", "product_page",
           "write_products_jsonl"]

DEFAULT_PAGE = 100
MAX_PAGE = 1000  # products per `GET /api/products` page at most
MAX_OFFSET = 1_000_000_000  # far beyond any catalog; larger offsets are refused rather than handed to SQLite


class ExportedProduct(BaseModel):
    """One product as the store exports it."""

    asin: str
    title: str
    brand: str
    department: str
    category: str  # "a › b › c"
    price_min: float  # the lowest price over the product's options
    price_max: float
    options: dict[str, list[str]] = Field(default_factory=dict)  # group -> values, in display order

    @classmethod
    def of(cls, product: Product) -> ExportedProduct:
        return cls(asin=product.asin, title=product.title, brand=product.brand, department=product.department,
                   category=product.category, price_min=product.price_min, price_max=product.price_max,
                   options=product.options)


class ProductPage(BaseModel):
    """A page of `GET /api/products`: `products[i]` is the product at position `offset + i` of the catalog's
    `total`; `next_offset` is where the next page starts, None after the last one."""

    total: int
    offset: int
    limit: int
    next_offset: int | None
    products: list[ExportedProduct]


def product_page(catalog: Catalog, offset: int, limit: int) -> ProductPage:
    """The page of `limit` products from `offset` (both already checked by the caller)."""
    total = len(catalog)
    products = [ExportedProduct.of(p) for p in catalog.products(offset, limit)] if offset < total else []
    end = offset + len(products)
    return ProductPage(total=total, offset=offset, limit=limit, next_offset=end if products and end < total else None,
                       products=products)


def write_products_jsonl(catalog: Catalog, out: str | Path) -> int:
    """Write every product of `catalog` to `out`, one `ExportedProduct` JSON object a line, in catalog order; returns
    how many. The file appears whole or not at all (written beside it, then renamed)."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for product in catalog.iter_products():
                f.write(ExportedProduct.of(product).model_dump_json() + "\n")
                n += 1
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n
