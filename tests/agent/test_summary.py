"""`agent.analysis.summary`: every number checked against hand-computed values on hand-built traces."""

from __future__ import annotations

import json

import pytest
from tracefix import BUY, SEARCH, browser_then_leave, buyer, step, write_session

from agent.analysis.summary import FunnelConfig, format_summary, quantile, summarize, write_summary
from agent.runtime.trace import iter_traces, page_of


@pytest.fixture
def run_dir(tmp_path):
    buyer(tmp_path)
    browser_then_leave(tmp_path)
    write_session(tmp_path, "s00002", [  # cut off after adding to the cart: no end line
        step(1, "/", {"type": "click", "name": "featured_products.x.title"}, next_url="/product/B0Y"),
        step(2, "/product/B0Y", {"type": "click", "name": "x.add_to_cart"}, next_url="/cart?added=1"),
    ], None)
    return tmp_path


def test_summary_numbers(run_dir):
    s = summarize(iter_traces(run_dir))
    assert (s.sessions, s.complete, s.torn_lines) == (3, 2, 0)
    assert s.outcomes == {"purchase": 1, "terminate": 1, "truncated": 0, "error": 0, "incomplete": 1}
    assert s.purchase_rate == pytest.approx(1 / 3) and s.terminate_rate == pytest.approx(1 / 3)
    assert s.truncated_rate == 0 and s.error_rate == 0
    # steps per session: [4, 5, 2]
    assert s.total_steps == 11
    assert s.steps_per_session.mean == pytest.approx(11 / 3)
    assert s.steps_per_session.median == 4
    assert s.steps_per_session.p90 == pytest.approx(4.8)  # sorted [2, 4, 5]: 4 + 0.8 * (5 - 4)
    assert (s.steps_per_session.min, s.steps_per_session.max) == (2, 5)
    # actions: click 6, type_and_submit 3, terminate 1, unparseable 1
    assert s.action_types == {"click": 6, "type_and_submit": 3, "terminate": 1, "unparseable": 1}
    assert list(s.action_types) == ["click", "type_and_submit", "terminate", "unparseable"]
    assert s.action_type_fractions == pytest.approx({"click": 0.6, "type_and_submit": 0.3, "terminate": 0.1})
    assert s.unparseable_rate == pytest.approx(1 / 11)
    assert s.invalid_steps == 2 and s.invalid_rate == pytest.approx(2 / 11)
    assert s.error_kinds == {"unknown_name": 1, "parse_error": 1}
    # time: policy 10 ms everywhere but one 30 ms step; env 20 ms on the 10 steps that have it; trace (2+3)/(4+5)
    assert s.timing.policy_ms == pytest.approx(130 / 11)
    assert s.timing.env_ms == pytest.approx(20.0)
    assert s.timing.env_parts_ms == {"navigation": pytest.approx(15.0)}
    assert s.timing.trace_ms == pytest.approx(5 / 9)
    funnel = {f.stage: (f.sessions, f.fraction) for f in s.funnel}
    assert [f.stage for f in s.funnel] == ["search", "product", "add_to_cart", "purchase"]
    assert funnel["search"] == (2, pytest.approx(2 / 3))
    assert funnel["product"] == (2, pytest.approx(2 / 3))
    assert funnel["add_to_cart"] == (2, pytest.approx(2 / 3))
    assert funnel["purchase"] == (1, pytest.approx(1 / 3))
    assert s.searches == 3 and s.searches_per_session == pytest.approx(1.0)
    assert s.policies == {"test": 3}


def test_add_to_cart_needs_a_valid_click_or_a_cart_page(tmp_path):
    write_session(tmp_path, "s0", [step(1, "/product/B0", BUY, next_url="/product/B0", valid=False,
                                        error_kind="navigation_error")], "terminate")
    write_session(tmp_path, "s1", [step(1, "/", {"type": "click", "name": "account.cart"}, next_url="/cart")],
                  "terminate")
    s = summarize(iter_traces(tmp_path))
    assert {f.stage: f.sessions for f in s.funnel} == {"search": 0, "product": 1, "add_to_cart": 1, "purchase": 0}


def test_search_stage_and_searches_use_the_page_not_the_origin(tmp_path):
    # A department link reaches search results but is not a typed search; a type_and_submit that does not land on
    # search results (the quantity box submits the cart form) is not a search either.
    write_session(tmp_path, "s0", [
        step(1, "/", {"type": "click", "name": "departments.shoes"}, next_url="http://other:1/search?department=x"),
        step(2, "/product/B0", {"type": "type_and_submit", "name": "x.quantity_input", "text": "2"},
             next_url="/cart?added=3"),
        step(3, "/cart", SEARCH, next_url=None),  # no next_url: the next step's url says where it landed
        step(4, "/search?q=running+shoes", {"type": "terminate"}),
    ], "terminate")
    s = summarize(iter_traces(tmp_path))
    assert s.searches == 1
    assert s.funnel[0].sessions == 1


def test_custom_funnel_config(tmp_path):
    write_session(tmp_path, "s0", [step(1, "/find?q=x", {"type": "click", "name": "basket_add"},
                                        next_url="/item/7")], "terminate")
    cfg = FunnelConfig(search_url=r"^/find\b", product_url=r"^/item/", add_to_cart_action=r"basket_add",
                       cart_url=r"^/basket")
    s = summarize(iter_traces(tmp_path), cfg)
    assert [f.sessions for f in s.funnel] == [1, 1, 1, 0]
    with pytest.raises(ValueError, match="regular expression"):
        FunnelConfig(search_url="(")


def test_empty_run(tmp_path):
    (tmp_path / "sessions").mkdir()
    s = write_summary(tmp_path)
    assert s.sessions == 0 and s.purchase_rate is None and s.steps_per_session.mean is None
    assert json.loads((tmp_path / "summary.json").read_text())["sessions"] == 0
    assert "sessions" in format_summary(s)


def test_write_summary_and_format(run_dir):
    s = write_summary(run_dir)
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["outcomes"]["purchase"] == 1 and data["funnel"][3]["stage"] == "purchase"
    text = format_summary(s)
    for needle in ("sessions", "purchase", "Funnel", "Add to cart", "66.7%", "unparseable", "unknown_name"):
        assert needle in text
    assert "\x1b[" not in text  # no colour codes


def test_write_summary_rejects_a_non_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="run directory"):
        write_summary(tmp_path / "nope")


def test_write_summary_skips_unreadable_files(run_dir):
    (run_dir / "sessions" / "junk.jsonl").write_text("not a trace\n")
    assert write_summary(run_dir).sessions == 3


def test_helpers():
    assert page_of("http://h:1/search?q=a%20b#frag") == "/search?q=a%20b"
    assert page_of("http://h:1") == "/" and page_of(None) == ""
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([7.0], 0.9) == 7.0
