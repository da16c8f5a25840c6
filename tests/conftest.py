"""Fixtures shared across packages: a small generated catalog and the store served over real HTTP."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def store_db(tmp_path_factory):
    """A 600-product catalog built once per test session."""
    from sites.store.generate import build_catalog

    path = tmp_path_factory.mktemp("catalog") / "catalog.db"
    build_catalog(path, n_products=600, seed=7)
    return path


@pytest.fixture(scope="session")
def store_url(store_db):
    """The store (variant a) served by uvicorn on a free loopback port."""
    from sites.store.server import StoreServer

    with StoreServer(store_db, variant="a") as server:
        yield server.url


@pytest.fixture(scope="session")
def store_url_b(store_db):
    from sites.store.server import StoreServer

    with StoreServer(store_db, variant="b") as server:
        yield server.url
