"""The embedded default catalog: built once into a cache directory and reused."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path

from .db import SCHEMA_VERSION

DEFAULT_PRODUCTS = 5000
DEFAULT_SEED = 0
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """`$SHOP_R1_CACHE`, else `$XDG_CACHE_HOME/shop-r1`, else `~/.cache/shop-r1`."""
    env = os.environ.get("SHOP_R1_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shop-r1"


def generator_digest() -> str:
    """A short hash of the generator's code and word lists: any change to them builds a new cached catalog, so a
    cache never serves a catalog that today's code would not produce."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("generate.py", "vocab.py", "db.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:10]


def default_catalog(n_products: int = DEFAULT_PRODUCTS, seed: int = DEFAULT_SEED, progress: bool = True) -> Path:
    """Path of the default catalog, building it first if the cache lacks it. Safe against concurrent callers."""
    from .generate import GENERATOR_VERSION, build_catalog

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"catalog-s{SCHEMA_VERSION}g{GENERATOR_VERSION}-{generator_digest()}-n{n_products}-seed{seed}.db"
    if path.is_file():
        return path
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            log.info("building the default catalog (%d products) into %s", n_products, path)
            tmp = path.with_suffix(".tmp")
            build_catalog(tmp, n_products=n_products, seed=seed, progress=progress)
            tmp.replace(path)
    return path
