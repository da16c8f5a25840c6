"""Findings 2 and 10: the browser backend holds the origin on every hop, fakes no purchase, and shrugs off popups."""

from __future__ import annotations

import pytest

from envs.env import EnvConfig, ShopEnv

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def env():
    with ShopEnv("http://127.0.0.1:1/", backend="browser", config=EnvConfig(timeout_s=5)) as env:
        yield env


def _start(env, hostile, path: str = "/"):
    env._env.policy = env.driver.policy = type(env.driver.policy).for_url(hostile.url)
    env._env.start_url = hostile.url + path
    return env.reset(options={"url": hostile.url + path})


@pytest.mark.parametrize("link", ["redirect_away", "bounce"])
def test_click_whose_redirect_chain_leaves_is_blocked(env, hostile, link):
    _start(env, hostile)
    obs, _, terminated, _, info = env.step({"type": "click", "name": link})
    assert info["error_kind"] == "blocked_origin", f"Expect blocked_origin, actually: {info}"
    assert obs.url == hostile.url + "/" and "foreign page" not in obs.html and not terminated


@pytest.mark.parametrize("path", ["/redirect-away", "/bounce", "/js-away", "/meta-away", "/meta-later"])
def test_reset_that_ends_off_origin_fails_clearly(env, hostile, path):
    with pytest.raises(ConnectionError, match="blocked|outside"):
        obs, _ = _start(env, hostile, path)
        pytest.fail(f"Expect ConnectionError, actually: an observation of {obs.url} ({obs.title!r})")


def test_pushstate_to_an_order_url_is_not_a_purchase(env, hostile):
    _start(env, hostile)
    obs, reward, terminated, _, info = env.step({"type": "click", "name": "pushstate"})
    assert obs.url.endswith("/order/FAKE"), f"the page did rewrite its URL: {obs.url}"
    assert not terminated and reward == 0.0 and info["outcome"] is None, f"Expect no purchase, actually: {info}"


def test_popup_on_load_does_not_poison_the_next_action(env, hostile):
    _start(env, hostile)
    obs, _, _, _, info = env.step({"type": "click", "name": "popup"})
    assert info["valid"], f"Expect the click that opened the popup page to be valid, actually: {info}"
    obs, _, _, _, info = env.step({"type": "click", "name": "plain"})
    assert info["valid"] and obs.url.endswith("/plain"), f"Expect a valid click, actually: {info}"
