"""Helpers for the catalog tests (imported by name: tests/sites is on sys.path, as for `store_fixtures`)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def catalog_digest(path: str | Path) -> str:
    """sha256 over the catalog's content: products and reviews in id order, and the meta table."""
    h = hashlib.sha256()
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        for table in ("products", "reviews", "meta"):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(row).encode())
    finally:
        conn.close()
    return h.hexdigest()
