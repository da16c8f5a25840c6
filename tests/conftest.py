"""Fixtures shared across packages: a small generated catalog and the store served over real HTTP."""

from __future__ import annotations

import os

import pytest

# Usage errors are typer's boxed messages: keep them on one line in test output so substrings are found.
os.environ.setdefault("COLUMNS", "400")


@pytest.fixture(scope="session")
def store_db(tmp_path_factory):
    """A 300-product catalog built once per test session."""
    from sites.store.generate import build_catalog

    path = tmp_path_factory.mktemp("catalog") / "catalog.db"
    build_catalog(path, n_products=300, seed=0)
    return path


def _serve(db, variant: str):
    from sites.store.server import StoreServer

    with StoreServer(db, variant=variant) as server:
        yield server


@pytest.fixture(scope="session")
def store_a(store_db):
    """The store (variant a) served by uvicorn on a free loopback port."""
    yield from _serve(store_db, "a")


@pytest.fixture(scope="session")
def store_b(store_db):
    """The same catalog in layout variant b."""
    yield from _serve(store_db, "b")


@pytest.fixture(scope="session")
def store_url(store_a) -> str:
    return store_a.url


@pytest.fixture(scope="session")
def store_url_b(store_b) -> str:
    return store_b.url
