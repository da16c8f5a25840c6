"""Shared fixtures for the agent tests: a small generated catalog served in both layout variants."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def catalog_db(tmp_path_factory):
    from sites.store.generate import build_catalog

    path = tmp_path_factory.mktemp("catalog") / "catalog.db"
    build_catalog(path, n_products=300, seed=0)
    return path


@pytest.fixture(scope="session")
def store_a(catalog_db):
    from sites.store.server import StoreServer

    with StoreServer(catalog_db, variant="a") as server:
        yield server


@pytest.fixture(scope="session")
def store_b(catalog_db):
    from sites.store.server import StoreServer

    with StoreServer(catalog_db, variant="b") as server:
        yield server
