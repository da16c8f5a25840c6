"""`agent.analysis.ab_report`: the A/B page's verdict, forest plot and side-by-side funnel, escaping, and a real
browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tracefix import browser_then_leave, buyer

from agent.analysis.ab_report import ForestRow, _forest_view, _nice, forest_rows, verdict, write_abtest_report
from agent.analysis.abtest import compare_runs
from agent.analysis.stats import Interval

EVIL = '<script>window.__pwned = 1</script><img src=x onerror=alert(1)> "Acme" & co'


def arm(run_dir: Path, bought: list[bool], evil_first: bool = False) -> Path:
    """One session per entry: the 4-step buyer, or the 5-step searcher who leaves; ids s00000, s00001, ..."""
    for i, b in enumerate(bought):
        header = {"persona": {"persona_id": "p0", "name": EVIL}, "intent": {"text": f"I want {EVIL}"}} \
            if evil_first and i == 0 else {}
        (buyer if b else browser_then_leave)(run_dir, f"s{i:05d}", **header)
    return run_dir


@pytest.fixture
def result(tmp_path):
    """A buys in 3 of 4 sessions, B in none; the first shopper's persona and intent are hostile text."""
    a = arm(tmp_path / "a", [True, True, True, False], evil_first=True)
    b = arm(tmp_path / "b", [False] * 4, evil_first=True)
    return compare_runs(a, b, a_site="http://127.0.0.1:8000/", b_site=f"http://x/{EVIL}")


def test_report_shows_verdict_intervals_and_both_funnels(result, tmp_path):
    out = write_abtest_report(result, tmp_path)
    assert out == tmp_path / "report.html"
    html = out.read_text()
    # No JavaScript, no external assets.
    assert "<script" not in html and not re.search(r'(?:src|href)="(?:https?:)?//', html) and "<link" not in html
    # The verdict: 3 discordant pairs, all A-only, are too few for the exact McNemar test (p = 0.25).
    assert "No difference in conversion detected" in html and "exact McNemar p = 0.25" in html
    assert "Conversion B \u2212 A: \u221275.0 percentage points" in html
    # Steps and searches per session are one higher on B in 3 of 4 pairs (5 vs 4 steps, 2 vs 1 searches).
    assert "Steps per session: B \u2212 A = +0.75" in html
    # The forest plot: one SVG, one interval and one point per paired metric, the unpaired ones beneath, a zero line.
    forest = html[html.index('<svg viewBox="0 0 960'):html.index("</svg>")]
    assert forest.count('<line class="ci"') == 4 and forest.count('<circle class="pt"') == 4
    assert forest.count('class="ci-unpaired"') == 4 and forest.count('<line class="zero"') == 1
    for label in ("Conversion", "Steps per session", "Searches per session", "Seconds waiting per session"):
        assert f'class="label">{label}</text>' in forest
    assert "\u221275.0 pp [" in forest
    # Both arms' funnels side by side: a bar per arm and stage.
    assert html.count('<rect class="bar-a"') == 4 and html.count('<rect class="bar-b"') == 4
    assert "A 3/4 \u00b7 75.0%" in html and "B 0/4 \u00b7 0.0%" in html and "A 4/4 \u00b7 100.0%" in html
    # The pairs that ended differently, hostile text escaped in HTML and SVG alike.
    assert html.count("<tr><td class=\"mono\">s0000") == 3
    assert "window.__pwned" in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&#34;Acme&#34; &amp; co" in html


def test_verdict_says_which_way_when_the_test_detects_it(tmp_path):
    """Six pairs bought on A only: exact McNemar p = 2/64 = 0.031, detected; swapped, B is the better arm."""
    a = arm(tmp_path / "a", [True] * 6 + [False] * 2)
    b = arm(tmp_path / "b", [False] * 8)
    tone, headline, details = verdict(compare_runs(a, b))
    assert (tone, headline) == ("worse", "B converts worse than A")
    assert "exact McNemar p = 0.0312" in details[0] and "8 pairs" in details[0]
    tone, headline, _ = verdict(compare_runs(b, a))
    assert (tone, headline) == ("better", "B converts better than A")
    html = write_abtest_report(compare_runs(a, b), tmp_path / "r" / "ab.html").read_text()
    assert 'class="card verdict worse"' in html and 'metric detected' in html


def test_report_without_pairs_uses_the_unpaired_intervals(tmp_path):
    a = arm(tmp_path / "a", [True, True])
    b = tmp_path / "b"
    browser_then_leave(b, "t00000")
    browser_then_leave(b, "t00001")
    result = compare_runs(a, b)
    assert result.paired is None
    assert [r.label for r in forest_rows(result)] == ["Conversion", "Steps to purchase", "Searches per session",
                                                      "Terminate rate"]
    html = write_abtest_report(result, tmp_path / "report.html").read_text()
    assert "Differences B &minus; A" in html and "nothing is paired" in html
    assert "Every pair ended the same way" in html


def test_forest_layout():
    assert [_nice(x) for x in (0.03, 0.11, 0.45, 1.0, 2.2, 3.3, 82.5)] == [0.05, 0.2, 0.5, 1.0, 2.5, 5.0, 100.0]
    rows = [ForestRow(label="x", unit="", scale=1.0, diff=Interval(estimate=-1.0, low=-2.0, high=0.5),
                      unpaired=Interval(estimate=-1.0, low=-4.0, high=2.0), detected=False, test="paired t",
                      sessions_needed=None),
            ForestRow(label="y", unit="", scale=1.0, diff=Interval(estimate=None, low=None, high=None),
                      unpaired=None, detected=False, test="paired t", sessions_needed=None)]
    [v, empty] = _forest_view(rows, top=0)
    # Bound 5 (4.4 rounded up): 220 units a side of the zero line at 470.
    assert v.bound == "5" and v.point == 470 - 44 and v.ci is not None and (v.ci.x1, v.ci.x2) == (382, 492)
    assert v.unpaired is not None and v.unpaired.x1 == 470 - 176
    assert v.value == "\u22121.00 [\u22122.00, +0.50]"
    assert (empty.point, empty.ci, empty.value, empty.bound) == (None, None, "n/a", "1")


@pytest.mark.browser
def test_report_renders_offline_in_a_browser(result, tmp_path):
    from playwright.sync_api import sync_playwright

    from envs.chromium import launch_kwargs

    out = write_abtest_report(result, tmp_path)
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_kwargs())
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.resolve().as_uri())
            assert page.evaluate("() => window.__pwned === undefined")
            forest = page.locator("svg.forest").bounding_box()
            funnel = page.locator("svg.funnel").bounding_box()
            assert forest and funnel and forest["width"] > 800 and forest["height"] > 250
            # Nothing is wider than the page.
            assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        finally:
            browser.close()
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
