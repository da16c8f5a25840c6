"""The env on the real store: both backends see byte-identical pages, every interactable is named and actionable,
and the simplified pages are much smaller than the browser's DOM."""

from __future__ import annotations

import re

import pytest
from happy_path import HappyPath

from envs import ShopEnv
from envs.simplify import count_interactables, simplify

ORDER_NO = re.compile(r"\d{8}-[0-9A-F]{10}")


def walk_actions(env):
    """The store's happy path, yielding (obs, info) after reset and after each step."""
    obs, info = env.reset()
    yield obs, info
    path = HappyPath()
    while (action := path.next_action(obs.names)) is not None:
        obs, _, _, _, info = env.step(action)
        yield obs, info


def walk(url: str, backend: str) -> list[tuple[str, str, list[str]]]:
    pages = []
    with ShopEnv(url, backend=backend) as env:
        for obs, info in walk_actions(env):
            assert info["valid"], (backend, info)
            pages.append((ORDER_NO.sub("ORDER", obs.url), ORDER_NO.sub("ORDER", obs.html), obs.names))
        assert info["outcome"] == "purchase"
    return pages


@pytest.mark.browser
@pytest.mark.parametrize("variant", ["a", "b"])
def test_backends_give_identical_pages(variant, store_url, store_url_b):
    url = store_url if variant == "a" else store_url_b
    via_http = walk(url, "http")
    via_browser = walk(url, "browser")
    assert len(via_http) == len(via_browser) >= 7
    for (u1, h1, n1), (u2, h2, n2) in zip(via_http, via_browser, strict=True):
        assert u1 == u2
        assert n1 == n2
        assert h1 == h2


@pytest.mark.browser
def test_every_interactable_is_named_and_actionable(store_url):
    """On each page type: all visible interactables in the browser's DOM are named (100%), and every name resolves
    to exactly one live element."""
    with ShopEnv(store_url, backend="browser") as env:
        for obs, _ in walk_actions(env):
            page = env.driver.page
            html = env._loop.run(page.content())
            simplified = simplify(html)
            assert len(simplified.elements) == count_interactables(html) > 0, obs.url
            for element in simplified.elements.values():
                assert env._loop.run(page.locator(f'[data-shop-id="{element.dom_id}"]').count()) == 1


def test_pages_are_compact(store_url):
    """The simplified page is smaller than the raw page on every page type (the benchmark reports the ratios)."""
    with ShopEnv(store_url, backend="http") as env:
        for obs, _ in walk_actions(env):
            raw = env.driver.html
            assert len(obs.html) < len(raw) / 1.5, (obs.url, len(obs.html), len(raw))
