"""The local store started in-process on a free port (`--embedded`), and the Gymnasium env that owns one.

`import agent` registers `shop_r1/EmbeddedStore-v0`: a `ShopEnv` that starts its own store and stops it on `close()`.

>>> import gymnasium, agent                                                           # doctest: +SKIP
>>> env = gymnasium.make("shop_r1/EmbeddedStore-v0", backend="http", variant="b")    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from envs.env import Backend, EnvConfig, ShopEnv
from envs.registration import EMBEDDED_STORE_ID, register_once

log = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_store(variant: str = "a", catalog: str | Path | None = None,
                   page_delay: float | None = None) -> Iterator[tuple[str, Path]]:
    """Serve the store (the cached default catalog unless `catalog` is given); yields `(url, catalog_path)`.

    `variant` is any of `sites.store.variants.VARIANT_NAMES`; `page_delay` overrides its page delay in seconds.
    The shoppers get only the URL: which variant answers there is not theirs to know.
    """
    from sites.store.defaults import default_catalog
    from sites.store.server import StoreServer
    from sites.store.variants import get_variant_spec

    get_variant_spec(variant)  # a clear error before anything starts
    path = Path(catalog) if catalog else default_catalog()
    with StoreServer(path, variant=variant, page_delay=page_delay) as server:
        log.info("embedded store (variant %s) at %s", variant, server.url)
        yield server.url, path


def slow_pages(variant: str, delay_s: float | None) -> float | None:
    """The page delay to serve `variant` with when comparing variants: `delay_s` for a variant that is slow by design
    (its spec has a delay), None (its own: none) for the others, so that shortening `slow` for a quick test does not
    slow down the arm it is compared with."""
    from sites.store.variants import get_variant_spec

    return delay_s if delay_s is not None and get_variant_spec(variant).delay_s > 0 else None


class EmbeddedShopEnv(ShopEnv):
    """A `ShopEnv` on its own local store (`variant`: one of `sites.store.variants.VARIANT_NAMES`; `catalog` or the
    cached default catalog), served on a free loopback port for as long as the env is open. `site_url` is the
    store's URL."""

    def __init__(self, backend: Backend = "browser", config: EnvConfig | None = None, *, variant: str = "a",
                 catalog: str | Path | None = None, page_delay: float | None = None, **kwargs: Any):
        self._store = contextlib.ExitStack()
        self.site_url, self.catalog = self._store.enter_context(embedded_store(variant, catalog, page_delay))
        try:
            super().__init__(self.site_url, backend, config, **kwargs)
        except BaseException:
            self._store.close()
            raise

    def close(self) -> None:
        """Close the env, then stop its store. Calling it twice is harmless."""
        try:
            super().close()
        finally:
            self._store.close()


def register_envs() -> None:
    register_once(EMBEDDED_STORE_ID, "agent.embedded:EmbeddedShopEnv")
