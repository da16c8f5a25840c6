"""`shop_r1/EmbeddedStore-v0`: a Gymnasium env that serves its own store for as long as it is open."""

from __future__ import annotations

import warnings

import gymnasium as gym
import httpx
import pytest
from gymnasium.utils.env_checker import check_env

import agent  # noqa: F401  (registers shop_r1/EmbeddedStore-v0)
from agent.wiring import EmbeddedShopEnv
from envs.registration import EMBEDDED_STORE_ID


def test_embedded_env_passes_check_env_and_stops_its_store(store_db):
    env = gym.make(EMBEDDED_STORE_ID, backend="http", variant="b", catalog=store_db)
    inner = env.unwrapped
    assert isinstance(inner, EmbeddedShopEnv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(inner)
        assert [str(w.message) for w in caught] == []
        obs, _ = env.reset(seed=0)
        assert obs.url.startswith(inner.site_url) and "search.products_input" in obs.names
        assert httpx.get(inner.site_url).status_code == 200
    finally:
        env.close()
        env.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(inner.site_url, timeout=5)


def test_bad_variant_says_what_was_expected(store_db):
    with pytest.raises(ValueError, match="Expect a variant in a, b, hidden-search, .*; actually: 'c'"):
        gym.make(EMBEDDED_STORE_ID, backend="http", variant="c", catalog=store_db)
