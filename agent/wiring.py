"""The composition layer: the one module of `envs`, `agent` and `training` that imports the store (`sites`).

Everything else reaches a site over HTTP, through a URL it is given. This module puts the two together:

- `embedded_store` serves the local store in-process on a free port (`--embedded`), and `EmbeddedShopEnv` is the
  Gymnasium env that owns one (`import agent` registers it as `shop_r1/EmbeddedStore-v0`);
- `VARIANT_NAMES`, `VariantName` and `slow_pages` name the store's variants for the commands and configs, and
  `default_catalog` is the cached catalog the local store serves;
- `sample_from_catalog` and `featured_items` write shopper intents from the store's catalog
  (`agent.runtime.population` writes them from any list of products);
- `abtest_embedded` and `run_sensitivity` run the analyses of `agent.analysis` on in-process stores;
- `PolicyServer` and `serve_policy` serve the policy app (`agent.serve`) with the HTTP helpers the store uses
  (`sites.serving`);
- `store_app` is the store's own command group, mounted as `shop-r1 store`.

>>> import gymnasium, agent                                                           # doctest: +SKIP
>>> env = gymnasium.make("shop_r1/EmbeddedStore-v0", backend="http", variant="b")    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agent.analysis.abtest import ABResult, abtest, save_abtest
from agent.analysis.ux_sensitivity import compare_variants
from agent.policy.base import Policy
from agent.policy.persona import PersonaIntent
from agent.runtime.population import FREE_TEXT_SHARE, featured_population, sample_population
from agent.runtime.session import RunConfig
from envs.env import Backend, EnvConfig, ShopEnv
from sites.serving import ThreadedServer, serve_foreground
from sites.store.catalog import Catalog
from sites.store.cli import app as store_app
from sites.store.defaults import default_catalog
from sites.store.server import StoreServer
from sites.store.variants import VARIANT_NAMES, VariantName, get_variant_spec

if TYPE_CHECKING:  # the policy app pulls torch: imported when a server is made
    from fastapi import FastAPI

    from agent.policy.engines import LocalEngine
    from agent.serve.server import ServerStats

__all__ = ["VARIANT_NAMES", "EmbeddedShopEnv", "PolicyServer", "VariantName", "abtest_embedded", "default_catalog",
           "embedded_store", "featured_items", "run_sensitivity", "sample_from_catalog", "serve_policy", "slow_pages",
           "store_app"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# The store, in-process


@contextlib.contextmanager
def embedded_store(variant: str = "a", catalog: str | Path | None = None,
                   page_delay: float | None = None) -> Iterator[tuple[str, Path]]:
    """Serve the store (the cached default catalog unless `catalog` is given); yields `(url, catalog_path)`.

    `variant` is any of `VARIANT_NAMES`; `page_delay` overrides its page delay in seconds. The shoppers get only the
    URL: which variant answers there is not theirs to know.
    """
    get_variant_spec(variant)  # a clear error before anything starts
    path = Path(catalog) if catalog else default_catalog()
    with StoreServer(path, variant=variant, page_delay=page_delay) as server:
        log.info("embedded store (variant %s) at %s", variant, server.url)
        yield server.url, path


def slow_pages(variant: str, delay_s: float | None) -> float | None:
    """The page delay to serve `variant` with when comparing variants: `delay_s` for a variant that is slow by design
    (its spec has a delay), None (its own: none) for the others, so that shortening `slow` for a quick test does not
    slow down the arm it is compared with."""
    return delay_s if delay_s is not None and get_variant_spec(variant).delay_s > 0 else None


class EmbeddedShopEnv(ShopEnv):
    """A `ShopEnv` on its own local store (`variant`: one of `VARIANT_NAMES`; `catalog` or the cached default
    catalog), served on a free loopback port for as long as the env is open. `site_url` is the store's URL."""

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


# --------------------------------------------------------------------------------------------------------------------
# Shoppers from the catalog


def sample_from_catalog(catalog_path: str | Path, n: int, seed: int = 0, *,
                        free_text_share: float = FREE_TEXT_SHARE) -> list[PersonaIntent]:
    """`n` persona/intent pairs written from the catalog's products (`agent.runtime.population.sample_population`:
    deterministic for a given catalog and seed)."""
    catalog = Catalog(catalog_path)
    total = len(catalog)
    if total == 0:
        raise ValueError(f"{catalog_path} has no products to draw intents from")
    return sample_population(n, seed, total=total, product_at=catalog.product_at, brands=catalog.brands(),
                             free_text_share=free_text_share)


def featured_items(n: int, seed: int, catalog: str | Path | None = None) -> list[PersonaIntent]:
    """`n` sampled personas, each with an intent written from one of the catalog's featured products."""
    return featured_population(Catalog(catalog or default_catalog()).featured(n), n, seed)


# --------------------------------------------------------------------------------------------------------------------
# Analyses on in-process stores


def abtest_embedded(
    variant_a: str,
    variant_b: str,
    policy_factory: Callable[[], Policy],
    items: Sequence[PersonaIntent],
    config: RunConfig,
    out_dir: str | Path,
    *,
    catalog: str | Path | None = None,
    page_delay: float | None = None,
    **kwargs: Any,
) -> ABResult:
    """`abtest` on two in-process stores of one catalog, serving `variant_a` and `variant_b` on their own ports.

    The shoppers get the two URLs and nothing else; the variant names go only into `abtest.json` and the
    report.
    """
    with embedded_store(variant_a, catalog, slow_pages(variant_a, page_delay)) as (url_a, _), \
            embedded_store(variant_b, catalog, slow_pages(variant_b, page_delay)) as (url_b, _):
        result = abtest(url_a + "/", url_b + "/", policy_factory, items, config, out_dir, **kwargs)
    result = result.model_copy(update={"a": result.a.model_copy(update={"variant": variant_a}),
                                       "b": result.b.model_copy(update={"variant": variant_b})})
    save_abtest(result, out_dir)
    return result


def run_sensitivity(out_dir: str | Path, policy_factory: Callable[[], Policy], items: Sequence[PersonaIntent],
                    config: RunConfig, *, policy_name: str, variants: Sequence[str] | None = None,
                    catalog: str | Path | None = None, page_delay: float | None = None,
                    confidence: float = 0.95, aa: bool = True) -> list[dict[str, Any]]:
    """`agent.analysis.ux_sensitivity.compare_variants` on in-process stores: `a` and every variant (default: all
    but `a`), each variant with the expected effects of its spec. Returns the report's rows."""
    chosen = [v for v in (variants or VARIANT_NAMES) if v != VARIANT_NAMES[0]]
    expected = {v: get_variant_spec(v).expected_effects for v in chosen}  # a clear error for a bad name, first

    @contextlib.contextmanager
    def open_store(variant: str) -> Iterator[str]:
        with embedded_store(variant, catalog, slow_pages(variant, page_delay)) as (url, _):
            yield url

    return compare_variants(out_dir, policy_factory, items, config, policy_name=policy_name, expected=expected,
                            open_store=open_store, confidence=confidence, aa=aa)


# --------------------------------------------------------------------------------------------------------------------
# The policy server, over HTTP


class PolicyServer:
    """The policy server (`agent.serve.create_policy_app`) in a background thread on a free port (tests,
    embedding). `base_url` ends in `/v1`.

    `start()` returns once the model is loaded and the server accepts connections; `stop()` is idempotent.
    """

    def __init__(self, model_dir: str | Path | None = None, *, engine: LocalEngine | None = None,
                 host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", **app_kwargs: Any) -> None:
        from agent.serve.server import create_policy_app

        self.app: FastAPI = create_policy_app(model_dir, engine=engine, **app_kwargs)
        self._http = ThreadedServer(self.app, host, port, log_level, name="policy server")

    @property
    def stats(self) -> ServerStats:
        return self.app.state.stats

    @property
    def model_name(self) -> str:
        return self.app.state.model_name

    @property
    def engine(self) -> LocalEngine:
        return self.app.state.engine

    @property
    def url(self) -> str:
        """'http://127.0.0.1:PORT', no trailing slash. Only once started."""
        return self._http.url

    @property
    def base_url(self) -> str:
        """The OpenAI client's base URL: '<url>/v1'."""
        return self.url + "/v1"

    def start(self, timeout: float = 120.0) -> PolicyServer:
        """Serve in a daemon thread; returns once the model is loaded and connections are accepted."""
        self._http.start(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._http.stop(timeout)

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_policy(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8001, **app_kwargs: Any) -> None:
    """Serve a local model in the foreground until interrupted."""
    from agent.serve.server import create_policy_app

    serve_foreground(create_policy_app(model_dir, **app_kwargs), host, port)
