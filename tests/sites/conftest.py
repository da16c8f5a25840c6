"""Fixtures for the catalog, generator, importer and search tests: small generated catalogs built once per session."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sites.store.catalog import Catalog
from sites.store.generate import build_catalog

CATALOG_PRODUCTS = 500
CATALOG_SEED = 11


@pytest.fixture(scope="session")
def catalog_path(tmp_path_factory) -> Path:
    """A 500-product generated catalog (seed 11)."""
    path = tmp_path_factory.mktemp("generated") / "catalog.db"
    build_catalog(path, n_products=CATALOG_PRODUCTS, seed=CATALOG_SEED)
    return path


@pytest.fixture(scope="session")
def catalog(catalog_path) -> Catalog:
    return Catalog(catalog_path)


@pytest.fixture(scope="session")
def uncached_catalog(catalog_path) -> Catalog:
    """The same catalog with the search cache off: every search runs its SQL."""
    return Catalog(catalog_path, cache_size=0)


@pytest.fixture(scope="session")
def catalog_rows(catalog_path) -> list[sqlite3.Row]:
    """Every product row of the session catalog, by id."""
    conn = sqlite3.connect(f"file:{catalog_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM products ORDER BY id").fetchall()
    finally:
        conn.close()
