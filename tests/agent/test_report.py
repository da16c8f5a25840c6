"""`agent.analysis.report`: a self-contained page, escaped trace text, screenshot caps, and a real browser opening
it."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib

import pytest
from tracefix import browser_then_leave, buyer, step, write_session

from agent.analysis.report import ReportOptions, write_report

EVIL = '<script>window.__pwned = 1; alert("x")</script> I <b>really</b> want this & that'


def png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG (white pixels), without an imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    buyer(run)
    browser_then_leave(run)
    shots = run / "screenshots" / "s00002"
    shots.mkdir(parents=True)
    (shots / "001.png").write_bytes(png())
    (shots / "002.png").write_bytes(png(400, 400))  # bigger than the cap used below
    write_session(run, "s00002", [
        step(1, "/", {"type": "type_and_submit", "name": "search.products_input", "text": "</pre><script>x()</script>"},
             rationale=EVIL, next_url="/search?q=x", screenshot="screenshots/s00002/001.png"),
        step(2, "/search?q=x", None, valid=False, error_kind="parse_error", rationale=None,
             raw_output="<img src=x onerror=alert(1)>", screenshot="screenshots/s00002/002.png"),
        step(3, "/search?q=x", {"type": "click", "name": "x"}, screenshot="screenshots/s00002/missing.png"),
        step(4, "/search?q=x", {"type": "click", "name": "x"}, screenshot="../secret.png"),
        step(5, "/search?q=x", {"type": "click", "name": "x"}, screenshot="run.json"),
    ], "error", end_extra={"error": "<b>boom</b>"})
    write_session(run, "s00003", [step(1, "/", {"type": "terminate"})], None)  # cut off: incomplete
    (tmp_path / "secret.png").write_bytes(b"SECRET" * 10)  # outside the run directory
    (run / "sessions" / "zz-broken.jsonl").write_text('{"kind": "step"}\n')
    (run / "run.json").write_text(json.dumps({"config": {"site": "http://127.0.0.1:8000/", "backend": "browser"},
                                              "policy": {"name": "<i>test</i>"}, "sessions": 4}))
    return run


def test_report_is_self_contained_and_escaped(run_dir):
    out = write_report(run_dir, options=ReportOptions(max_image_bytes=200))
    assert out == run_dir / "report.html"
    html = out.read_text()
    # Only our own inline script; every piece of trace text is escaped.
    assert len(re.findall(r"<script", html)) == 1
    assert "&lt;script&gt;window.__pwned = 1; alert(&#34;x&#34;)&lt;/script&gt; I &lt;b&gt;really&lt;/b&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;x()&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "&lt;b&gt;boom&lt;/b&gt;" in html and "&lt;i&gt;test&lt;/i&gt;" in html
    # No external assets: no http(s) src/href other than trace text shown as text.
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    assert '<link' not in html and "@import" not in html
    # Screenshots: the small one embedded, the big one linked with a reason, the missing one noted.
    small = base64.b64encode(png()).decode()
    assert f"data:image/png;base64,{small}" in html
    assert "screenshot not embedded" in html and 'href="screenshots/s00002/002.png"' in html
    assert "screenshot file missing: screenshots/s00002/missing.png" in html
    # A trace cannot make the report embed files from elsewhere, or anything that is not an image.
    assert base64.b64encode(b"SECRET" * 10).decode() not in html
    assert "not an image in the run directory, left out: ../secret.png" in html
    assert "not an image in the run directory, left out: run.json" in html
    # Everything is there without JavaScript: a <details> per session, outcome badges, the funnel and actions.
    assert html.count('<details class="session"') == 4
    for outcome in ("purchase", "terminate", "error", "incomplete"):
        assert f'<span class="badge {outcome}">{outcome}</span>' in html
    assert "Add to cart" in html and "type_and_submit" in html and "unparseable" in html
    assert "rationale none" in html  # the unparseable step shows "no rationale"
    assert "zz-broken.jsonl" in html  # the unreadable file is named, not fatal
    assert "search.products_input" in html and "/checkout" in html


def test_report_other_location_and_budget(run_dir, tmp_path):
    out = write_report(run_dir, tmp_path / "elsewhere" / "r.html",
                       ReportOptions(max_total_bytes=10, max_observation_chars=0))
    html = out.read_text()
    assert "screenshot budget is used up" in html
    assert 'href="../run/screenshots/s00002/001.png"' in html  # links are relative to the report
    assert "observation (simplified HTML)" not in html


def test_report_of_an_empty_run(tmp_path):
    (tmp_path / "sessions").mkdir()
    (tmp_path / "run.json").write_text("[1, 2]")
    html = write_report(tmp_path).read_text()
    assert "No sessions in this run." in html
    assert "run.json: Expect a JSON object, actually: list" in html


def test_report_rejects_a_non_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope")


@pytest.mark.browser
def test_report_opens_offline_in_a_browser(run_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    from envs.chromium import launch_kwargs

    out = write_report(run_dir, options=ReportOptions(max_image_bytes=200))
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_kwargs())
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(out.resolve().as_uri())
            assert page.evaluate("() => window.__pwned === undefined")
            session = page.locator("details.session", has_text="s00002")
            session.locator("> summary").click()
            assert session.locator(".rationale").first.inner_text().startswith("<script>window.__pwned")
            assert page.locator("details.session[open]").count() == 1
            # The outcome filter (the only script) hides the other sessions.
            page.locator("#filters button[data-filter=purchase]").click()
            visible = [d for d in page.locator("details.session").all() if d.is_visible()]
            assert len(visible) == 1 and "s00000" in visible[0].inner_text()
            page.locator("#filters button[data-filter=all]").click()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert dialogs == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
