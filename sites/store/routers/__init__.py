"""One router per resource of the store: pages (home, search, product, cart/checkout), the analytics and product
export APIs, and assets."""

from __future__ import annotations

from . import analytics_api, assets, cart, home, product, products_api, search

__all__ = ["analytics_api", "assets", "cart", "home", "product", "products_api", "search"]
