"""The local store started in-process on a free port (`--embedded`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_store(variant: str = "a", catalog: str | Path | None = None) -> Iterator[tuple[str, Path]]:
    """Serve the store (the cached default catalog unless `catalog` is given); yields `(url, catalog_path)`."""
    from sites.store.defaults import default_catalog
    from sites.store.server import StoreServer

    path = Path(catalog) if catalog else default_catalog()
    with StoreServer(path, variant=variant) as server:
        log.info("embedded store (variant %s) at %s", variant, server.url)
        yield server.url, path
