"""Gymnasium registration: `gymnasium.make("shop_r1/Store-v0", site=URL, backend="http")`.

`import envs` registers `shop_r1/Store-v0`, the env on a site that is already running. The variant that starts its
own local store, `shop_r1/EmbeddedStore-v0`, is registered by `import agent` (the store is started by the agent
package, never by envs, which reaches sites only over HTTP).

Both are registered `nondeterministic=True`: the site is a live server and `info["timing_ms"]` holds wall-clock
timings, so two runs of the same actions never return equal infos (the pages themselves are equal for the store).

>>> import gymnasium, envs                                                  # doctest: +SKIP
>>> env = gymnasium.make("shop_r1/Store-v0", site="http://127.0.0.1:8000/", backend="http")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from .env import Backend, EnvConfig, ShopEnv

NAMESPACE = "shop_r1"
STORE_ID = f"{NAMESPACE}/Store-v0"
EMBEDDED_STORE_ID = f"{NAMESPACE}/EmbeddedStore-v0"


def make_store_env(site: str, backend: Backend = "browser", config: EnvConfig | None = None, **kwargs: Any) -> ShopEnv:
    """The entry point of `shop_r1/Store-v0`: a `ShopEnv` on the site at `site` (a URL)."""
    if not isinstance(site, str) or not site:
        raise ValueError(f"Expect site to be the URL of a running site, actually: {site!r}")
    return ShopEnv(site, backend, config, **kwargs)


def register_once(env_id: str, entry_point: str, **kwargs: Any) -> None:
    """`gymnasium.register`, unless `env_id` is registered already (importing twice must not warn)."""
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, nondeterministic=True, **kwargs)


def register_envs() -> None:
    register_once(STORE_ID, "envs.registration:make_store_env")
