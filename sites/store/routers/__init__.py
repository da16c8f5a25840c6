"""One router per resource of the store: pages (home, search, product, cart/checkout), analytics API and assets."""

from __future__ import annotations

from . import analytics_api, assets, cart, home, product, search

__all__ = ["analytics_api", "assets", "cart", "home", "product", "search"]
