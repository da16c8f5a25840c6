"""`agent.record.recorder`: a person shopping (driven headless by Playwright, the way a person would), recorded as a
trace that replays cleanly on the same site."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from agent.cli.record import record_command
from agent.cli.replay import replay_command
from agent.record import Recorder
from agent.runtime.replay import replay_async
from agent.runtime.trace import read_trace
from envs.env import AsyncShopEnv

pytestmark = pytest.mark.browser


async def test_record_a_purchase_and_replay_it(store_a, store_b, tmp_path, capsys):
    rec = Recorder(store_a.url + "/", tmp_path, headless=True, session_id="h1", intent="Shoes, please",
                   ask_rationale=True, screenshots=True)
    page = await rec.start()
    try:
        await rec.settle()
        await page.locator("textarea[data-shop-r1-rationale]").fill("I came for <b>shoes</b>.")
        box = page.get_by_role("searchbox")
        await box.click()  # focusing the box is not an action
        await box.fill("shoes")
        await box.press("Enter")  # the browser's own click on the Search button is not recorded twice
        await rec.settle()
        assert "/search?q=shoes" in page.url
        await page.locator("main a[href*='/product/']").first.click()
        await rec.settle()
        await page.locator("h1").click()  # a click on plain text is not an action
        await page.get_by_role("button", name="Buy Now").click()
        await rec.settle()
        assert page.url.endswith("/checkout")
        await page.get_by_role("button", name="Place order").click()
        assert await rec.wait() == "purchase"
    finally:
        await rec.stop()

    trace = read_trace(rec.path)
    actions = [s.action_dict for s in trace.steps]
    assert [a["type"] for a in actions] == ["type_and_submit", "click", "click", "click"]
    assert actions[0] == {"type": "type_and_submit", "name": "search.products_input", "text": "shoes"}
    assert actions[1]["name"].startswith("search_results.") and actions[1]["name"].endswith(".title")
    assert actions[2]["name"].endswith(".buy_now") and actions[3]["name"] == "place_order"
    assert [s.rationale for s in trace.steps] == ["I came for <b>shoes</b>.", None, None, None]
    assert all(s.valid for s in trace.steps) and [s.step for s in trace.steps] == [1, 2, 3, 4]
    assert trace.steps[0].title == "Home · ShopR1" and "/product/" in trace.steps[1].next_url
    assert trace.steps[3].next_url is not None and "/order/" in trace.steps[3].next_url
    assert trace.end is not None and trace.end.outcome == "purchase" and trace.end.steps == 4
    assert trace.header.policy == "human" and trace.header.intent == {"text": "Shoes, please"}
    assert all((tmp_path / s.screenshot).is_file() for s in trace.steps if s.screenshot)
    assert json.loads((tmp_path / "run.json").read_text())["policy"] == {"name": "human"}

    # The observation is exactly what the env shows a policy on that page (the rationale box is not in it).
    env = AsyncShopEnv(store_a.url + "/", "http")
    try:
        obs, _ = await env.reset()
    finally:
        await env.close()
    assert trace.steps[0].observation == obs.html
    assert "rationale" not in trace.steps[0].observation and "Why?" not in trace.steps[0].observation

    # The key check: the recorded session replays cleanly on the same site (exit 0), and not on variant b (exit 1).
    assert (await replay_async(rec.path, store_a.url, "browser")).ok
    for site, code in ((store_a.url, 0), (store_b.url, 1)):
        with pytest.raises(typer.Exit) as exc:
            replay_command(rec.path, site=site, backend="http")
        assert exc.value.exit_code == code
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("OK: replayed 4 steps") and "missing_name" in out[1]


async def test_search_button_and_closing_the_tab(store_a, tmp_path):
    rec = Recorder(store_a.url + "/", tmp_path, headless=True, session_id="h2", ask_rationale=True)
    page = await rec.start()
    try:
        await rec.settle()
        await page.get_by_role("searchbox").fill("lamp")
        await page.get_by_role("button", name="Search", exact=True).click()  # typed, then pressed the button
        await rec.settle()
        await page.locator("main a[href*='/product/']").first.click()
        await rec.settle()
        await page.locator("textarea[data-shop-r1-rationale]").fill("Too pricey, I'm off.")
        await page.close()  # the person closes the tab
        assert await rec.wait() == "terminate"
    finally:
        await rec.stop()

    trace = read_trace(rec.path)
    actions = [s.action_dict for s in trace.steps]
    assert actions[0] == {"type": "type_and_submit", "name": "search.products_input", "text": "lamp"}
    assert actions[1]["type"] == "click" and actions[2] == {"type": "terminate"}
    assert "/product/" in trace.steps[2].url
    assert [s.rationale for s in trace.steps] == [None, None, "Too pricey, I'm off."]
    assert trace.end is not None and trace.end.outcome == "terminate" and trace.end.steps == 3
    result = await replay_async(rec.path, store_a.url, "http")
    assert result.ok and result.steps_replayed == 3


def test_record_command_refuses_to_overwrite(tmp_path):
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "taken.jsonl").write_text("")
    app = typer.Typer()
    app.command("record")(record_command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["record", "--site", "http://127.0.0.1:9/", "--out", str(tmp_path),
                                      "--session-id", "taken", "--headless"])
    assert result.exit_code == 2 and "exists" in result.output
