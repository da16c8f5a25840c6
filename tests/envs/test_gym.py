"""The env as a Gymnasium env on the real store: registration, `check_env`, seeds, spaces and page-valid sampling."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from envs import STORE_ID, ActionSpace, ElementRef, EnvConfig, Observation, ObservationSpace, ShopEnv

BACKENDS = [pytest.param("http", id="http"), pytest.param("browser", id="browser", marks=pytest.mark.browser)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_make_passes_check_env(backend, store_url):
    env = gym.make(STORE_ID, site=store_url, backend=backend)
    try:
        assert isinstance(env.unwrapped, ShopEnv)
        assert env.spec is not None and env.spec.id == STORE_ID
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped)
        assert [str(w.message) for w in caught] == []
    finally:
        env.close()
        env.close()  # twice is harmless


def test_make_steps_through_gymnasium_wrappers(store_url):
    """The wrapped env (order enforcing, passive checker) runs a search and reports a valid step."""
    with gym.make(STORE_ID, site=store_url, backend="http", config=EnvConfig(max_steps=5)) as env:
        obs, info = env.reset(seed=7)
        assert obs in env.observation_space and info["valid"]
        action = {"type": "type_and_submit", "name": "search.products_input", "text": "boots"}
        assert action in env.action_space
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["valid"], info
        assert "/search" in obs.url and (reward, terminated, truncated) == (0.0, False, False)


def test_seed_seeds_np_random_and_not_the_page(store_url):
    with ShopEnv(store_url, backend="http") as env:
        obs_1, _ = env.reset(seed=1)
        draws_1 = env.np_random.integers(0, 1 << 30, 4).tolist()
        obs_2, _ = env.reset(seed=2)
        obs_3, _ = env.reset(seed=1)
        draws_3 = env.np_random.integers(0, 1 << 30, 4).tolist()
    assert obs_1 == obs_2 == obs_3  # every new visitor sees the same front page
    assert draws_1 == draws_3


def test_sample_with_the_page_as_mask_is_always_valid(store_url):
    env = ShopEnv(store_url, backend="http", config=EnvConfig(max_steps=8))
    env.action_space.seed(3)
    kinds = set()
    try:
        obs, _ = env.reset(seed=3)
        for _ in range(24):
            action = env.action_space.sample(mask=obs)
            kinds.add(action["type"])
            obs, _, terminated, truncated, info = env.step(action)
            assert info["valid"], (action, info["error"])
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()
    assert kinds == {"click", "type_and_submit", "terminate"}


def test_unmasked_sample_is_a_member_that_the_env_answers_without_raising(store_url):
    space = ActionSpace(seed=0)
    samples = [space.sample() for _ in range(30)]
    assert all(s in space for s in samples)
    assert {s["type"] for s in samples} == {"click", "type_and_submit", "terminate"}
    with ShopEnv(store_url, backend="http") as env:
        obs, _ = env.reset()
        named = next(s for s in samples if s["type"] == "click")
        obs, _, terminated, _, info = env.step(named)
    assert not info["valid"] and info["error_kind"] == "unknown_name" and not terminated


def test_spaces_check_what_a_value_is():
    obs = Observation(url="http://x/", title="t", html="<main>€ ✓ " + "x" * 100_000 + "</main>",
                      elements=(ElementRef("a", "clickable"),))
    space = ObservationSpace()
    assert obs in space and space.sample() in space
    assert "<main/>" not in space and {"html": "<main/>"} not in space
    actions = ActionSpace()
    assert '{"type": "terminate"}' in actions
    assert {"type": "click", "name": " "} not in actions and {"type": "click"} not in actions and 3 not in actions


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"site": "", "backend": "http"}, "Expect site to be the URL of a running site, actually: ''"),
    ({"site": "http://127.0.0.1:9/", "backend": "ftp"}, "Expect backend 'browser' or 'http', actually: 'ftp'"),
    ({"site": "http://127.0.0.1:9/", "backend": "http", "render_mode": "human"}, "Expect render_mode None"),
])
def test_bad_arguments_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gym.make(STORE_ID, **kwargs)
