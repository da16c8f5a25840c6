"""Fixtures for the security regression tests: the real store on loopback, and a product any cart can hold."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # hostile.py, the hostile servers these tests start


@pytest.fixture(scope="session")
def product_asin(store_db) -> str:
    """An ASIN from the session catalog whose product has no option groups (one POST adds it)."""
    from sites.store.catalog import Catalog

    catalog = Catalog(store_db)
    for i in range(len(catalog)):
        product = catalog.product_at(i)
        if not product.options:
            return product.asin
    raise AssertionError("Expect a product without options in the test catalog, actually: none")


@pytest.fixture(scope="module")
def hostile():
    """A hostile site, and a foreign origin (another loopback port) its redirects and popups point to."""
    from hostile import HostileServer

    with HostileServer() as foreign, HostileServer(other=foreign.url) as site:
        site.foreign = foreign
        yield site
