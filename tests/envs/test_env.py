"""The env's contract on a real HTTP server, for both backends: observations, invalid actions, the allowlist,
forms, step limits, crash recovery and the vector env."""

from __future__ import annotations

import asyncio
import subprocess
import zipfile

import pytest

from envs import AsyncVectorEnv, EnvConfig, ShopEnv

BACKENDS = [pytest.param("http", id="http"), pytest.param("browser", id="browser", marks=pytest.mark.browser)]


@pytest.fixture(params=BACKENDS)
def env(request, site):
    e = ShopEnv(f"{site.url}/index.html", backend=request.param, config=EnvConfig(timeout_s=5))
    yield e
    e.close()


def _name(obs, fragment: str) -> str:
    matches = [n for n in obs.names if fragment in n]
    assert matches, f"no name containing {fragment!r} in {obs.names}"
    return matches[0]


def test_reset_observation(env):
    obs, info = env.reset()
    assert obs.title == "Fixture shop"
    assert obs.url.endswith("/index.html")
    assert info["valid"] and info["error"] is None
    assert obs.kind_of("search_input") == "input"
    assert all(kind == "clickable" for n, kind in ((e.name, e.kind) for e in obs.elements) if n != "search_input"
               and "note" not in n)
    assert len(set(obs.names)) == len(obs.names)
    assert 'name="search_input"' in obs.html and "<script" not in obs.html and "<style" not in obs.html


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("not json at all", "invalid_action"),
        ({"type": "buy", "name": "x"}, "invalid_action"),
        ({"type": "click"}, "invalid_action"),
        ({"type": "click", "name": "no.such.element"}, "unknown_name"),
        ({"type": "click", "name": "search_input"}, "not_clickable"),
        ({"type": "type_and_submit", "name": "main.home", "text": "x"}, "not_input"),
        ({"type": "click", "name": "main.partner_site"}, "blocked_origin"),
        ({"type": "click", "name": "main.deals"}, "blocked_origin"),  # a server redirect to another origin
        ({"type": "click", "name": "main.catalog_pdf"}, "navigation_error"),  # a download
    ],
)
def test_invalid_actions_leave_the_page(env, action, kind):
    obs0, _ = env.reset()
    obs, reward, terminated, truncated, info = env.step(action)
    assert not info["valid"] and info["error_kind"] == kind, info
    assert info["error"] and obs.last_action_error == info["error"]
    assert obs.url == obs0.url and obs.html == obs0.html
    assert (reward, terminated, truncated) == (0.0, False, False)
    obs, *_, info = env.step({"type": "click", "name": "main.home"})  # still usable
    assert info["valid"]


def test_navigation_timeout(site, request):
    for backend in ("http", "browser"):
        with ShopEnv(f"{site.url}/index.html", backend=backend, config=EnvConfig(timeout_s=1)) as env:
            env.reset()
            obs, *_, info = env.step({"type": "click", "name": "main.slow_page"})
            assert info["error_kind"] == "navigation_timeout", (backend, info)
            obs, *_, info = env.step({"type": "click", "name": _name(obs, "home")})
            assert info["valid"], (backend, info)


def test_forms_submit_like_a_browser(env):
    obs, _ = env.reset()
    for name in ("filters.color.blue", "filters.gift_wrap", _name(obs, "size.large")):
        obs, *_, info = env.step({"type": "click", "name": name})
        assert info["valid"], info
    assert 'checked' in obs.html
    obs, *_, info = env.step({"type": "click", "name": _name(obs, "apply")})
    assert info["valid"], info
    assert "<h1>POST</h1>" in obs.html
    for field in ("color=blue", "gift=yes", "size=l", "note=hi", "do=apply"):
        assert field in obs.html, (field, obs.html)
    assert "color=red" not in obs.html


def test_type_and_submit_uses_the_form(env):
    env.reset()
    obs, *_, info = env.step('{"type": "type_and_submit", "name": "search_input", "text": "red <boots> & socks"}')
    assert info["valid"], info
    assert "q=red &lt;boots&gt; &amp; socks" in obs.html and "src=header" in obs.html


def test_new_tab_links_stay_in_the_tab(env):
    env.reset()
    obs, *_, info = env.step({"type": "click", "name": "main.new_tab"})
    assert info["valid"] and "from=link" in obs.html


def test_step_limit_truncates(site):
    with ShopEnv(f"{site.url}/index.html", backend="http", config=EnvConfig(max_steps=2)) as env:
        env.reset()
        *_, terminated, truncated, info = env.step({"type": "click", "name": "main.home"})
        assert (terminated, truncated) == (False, False)
        *_, terminated, truncated, info = env.step({"type": "click", "name": "main.home"})
        assert (terminated, truncated) == (False, True) and info["outcome"] == "truncated"
        with pytest.raises(RuntimeError):
            env.step({"type": "click", "name": "main.home"})


def test_terminate_ends_the_episode(env):
    env.reset()
    obs, reward, terminated, truncated, info = env.step({"type": "terminate"})
    assert terminated and not truncated and info["outcome"] == "terminate" and reward == 0.0


def test_reset_outside_the_origin_is_refused(env):
    with pytest.raises(ConnectionError):
        env.reset(options={"url": "file:///etc/passwd"})


def test_close_twice_is_harmless(site):
    env = ShopEnv(f"{site.url}/index.html", backend="http")
    env.reset()
    env.close()
    env.close()


@pytest.mark.browser
def test_browser_hides_css_hidden_elements_http_cannot(site):
    with ShopEnv(f"{site.url}/index.html", backend="browser") as b, ShopEnv(f"{site.url}/index.html", "http") as h:
        ob, _ = b.reset()
        oh, _ = h.reset()
        assert not any("css_hidden" in n for n in ob.names)
        assert any("css_hidden" in n for n in oh.names)  # documented: http has no CSS engine


@pytest.mark.browser
def test_screenshot_and_trace(site, tmp_path):
    trace = tmp_path / "trace.zip"
    env = ShopEnv(f"{site.url}/index.html", backend="browser", config=EnvConfig(screenshots=True), trace_path=trace)
    obs, _ = env.reset()
    assert obs.screenshot is not None and obs.screenshot.startswith(b"\x89PNG")
    env.step({"type": "click", "name": "main.home"})
    env.close()
    assert zipfile.is_zipfile(trace)


@pytest.mark.browser
def test_browser_crash_is_recovered(site):
    env = ShopEnv(f"{site.url}/index.html", backend="browser", config=EnvConfig(timeout_s=5))
    try:
        env.reset()
        obs, *_ = env.step({"type": "click", "name": "main.cookie"})
        assert "You are 1" in obs.html
        subprocess.run(["pkill", "-9", "-f", "--", env.driver.shared.tag], check=True)
        obs, *_, info = env.step({"type": "click", "name": "who_am_i"})
        assert info["recovered"] and info["error_kind"] == "browser_crashed", info
        assert obs.url.startswith(site.url)
        obs, *_, info = env.step({"type": "click", "name": "who_am_i"})
        assert info["valid"], info
        assert "who=1" in obs.html  # the visitor's cookies survived the relaunch
        assert env.driver.shared.launches == 2
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_vector_env_isolates_cookies(site, backend):
    async def run() -> list[str]:
        venv = AsyncVectorEnv(4, f"{site.url}/index.html", backend=backend)
        try:
            await asyncio.gather(*(venv.envs[i].reset(options={"url": f"{site.url}/cookie?set=s{i}"})
                                   for i in range(4)))
            results = await venv.step([{"type": "click", "name": "who_am_i"}] * 4)
            return [obs.html for obs, *_ in results]
        finally:
            await venv.close()

    pages = asyncio.run(run())
    for i, html in enumerate(pages):
        assert f"who=s{i}" in html
