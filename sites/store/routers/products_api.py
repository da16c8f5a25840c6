"""Read-only JSON export of the catalog's products, a page at a time (`sites.store.export`).

    GET /api/products?offset=0&limit=100

`offset` is 0 to 1,000,000,000 and `limit` 1 to 1000 (default 100); anything else (negative, too large, not a whole
number) is a 422 with a JSON `detail` naming the parameter. The products are what any page of the store shows, so the
export is open to every visitor, like the pages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..export import DEFAULT_PAGE, MAX_OFFSET, MAX_PAGE, ProductPage, product_page
from ..web import CatalogDep

router = APIRouter(prefix="/api", tags=["products"])


@router.get("/products", name="products_export", response_model=ProductPage)
def products(
    catalog: CatalogDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Position of the first product (0-based).")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Products on this page at most.")] = DEFAULT_PAGE,
) -> ProductPage:
    """Products `offset` .. `offset + limit - 1` in catalog order, the catalog's total and the next page's offset."""
    return product_page(catalog, offset, limit)
