"""`agent.analysis.ux_sensitivity` and `shop-r1 experiment ux-sensitivity`: known-effect variants against a, on the real
store over HTTP, with the scripted shopper."""

from __future__ import annotations

import functools
import json

import pytest
from typer.testing import CliRunner

from agent.policy.scripted import ScriptedConfig, ScriptedPolicy
from agent.runtime.session import RunConfig
from agent.wiring import run_sensitivity, sample_from_catalog
from sites.store.variants import VARIANT_NAMES


def test_sensitivity_report(store_db, tmp_path):
    items = sample_from_catalog(store_db, 8, seed=2)
    config = RunConfig(site="embedded", backend="http", concurrency=8, seed=2)
    # Shoppers who do not react to waiting: on a loaded machine the pages of `a` are slow too, and the reaction to a
    # slow site (tested in test_scripted_traits) would make the A/A pair differ. Here the store alone must decide.
    steady = functools.partial(ScriptedPolicy, ScriptedConfig(react_to_waits=False))
    rows = run_sensitivity(tmp_path, steady, items, config, policy_name="scripted",
                           variants=["unlabeled-buttons", "price-shock"], catalog=store_db)
    assert [r["variant"] for r in rows] == ["a (A/A)", "unlabeled-buttons", "price-shock"]
    aa = rows[0]  # the scripted shopper is deterministic per seed: the same store twice gives the same sessions
    assert aa["expected"] == [] and not aa["detected"] and aa["pairs"] == 8
    for metric in ("conversion", "steps", "searches"):
        assert aa[metric]["diff"]["estimate"] == 0 and not aa[metric]["detected"], metric
    rows = rows[1:]
    for row in rows:
        assert row["pairs"] == 8 and row["primary"] == "conversion" and row["expected"] == [["conversion", -1]]
        assert row["conversion"]["diff"]["estimate"] <= 0, row  # never better than a
        assert set(row) >= {"detected", "sessions_needed", "also", "wrong_way", "steps", "searches", "seconds"}
    unlabeled = rows[0]
    assert unlabeled["conversion"]["diff"]["estimate"] < 0, "no shopper can name the buy buttons"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a", "a-again", "price-shock", "unlabeled-buttons", "ux_sensitivity.json", "ux_sensitivity.md"]
    md = (tmp_path / "ux_sensitivity.md").read_text()
    assert "| `unlabeled-buttons` | conversion ↓ |" in md and "detected at 8/arm" in md and "McNemar" in md
    saved = json.loads((tmp_path / "ux_sensitivity.json").read_text())
    assert saved["sessions"] == 8 and saved["rows"][1:] == rows and 0 < saved["baseline_wait_s"] < 5
    assert "| `a (A/A)` | none |" in md
    # A second call keeps the arms already run (same traces, same report).
    again = run_sensitivity(tmp_path, steady, items, config, policy_name="scripted",
                            variants=["unlabeled-buttons", "price-shock"], catalog=store_db)
    assert again[1:] == rows


def test_sensitivity_refuses_a_bad_variant_before_running(tmp_path):
    with pytest.raises(ValueError, match="Expect a variant in a, b, .*; actually: 'fast'"):
        run_sensitivity(tmp_path / "x", ScriptedPolicy, [], RunConfig(site="x"), policy_name="scripted",
                        variants=["fast"])
    assert not (tmp_path / "x").exists()


def test_experiment_command(store_db, tmp_path):
    from agent.cli.root import app

    help_text = CliRunner().invoke(app, ["experiment", "ux-sensitivity", "--help"], env={"COLUMNS": "250"}).output
    assert all(name in help_text for name in VARIANT_NAMES)
    doc = tmp_path / "docs" / "ux_sensitivity.md"
    doc.parent.mkdir()
    doc.write_text("old table\n<!-- notes -->\nWhy no-filters moved.\n<!-- /notes -->\n")
    result = CliRunner().invoke(app, ["experiment", "ux-sensitivity", "--out", str(tmp_path / "ux"), "--sessions", "3",
                                      "--variant", "no-filters", "--catalog", str(store_db), "--doc", str(doc)])
    assert result.exit_code == 0, result.output
    assert "| `no-filters` | conversion ↓ |" in (tmp_path / "ux" / "ux_sensitivity.md").read_text()
    written = doc.read_text()  # the fresh report, the command that wrote it, and the reading kept
    assert "| `no-filters` | conversion ↓ |" in written and "old table" not in written
    assert "--sessions 3 --policy scripted --variant no-filters" in written
    assert "<!-- notes -->\nWhy no-filters moved.\n<!-- /notes -->" in written
    bad = CliRunner().invoke(app, ["experiment", "ux-sensitivity", "--out", str(tmp_path / "bad"),
                                   "--variant", "fast"])
    assert bad.exit_code == 2 and "fast" in bad.output


def test_a_shortened_delay_slows_only_the_slow_variant():
    from agent.wiring import slow_pages

    assert slow_pages("slow", 0.2) == 0.2 and slow_pages("slow", None) is None
    assert slow_pages("a", 0.2) is None and slow_pages("price-shock", 0.2) is None


def test_the_report_says_when_the_machine_was_too_slow():
    from agent.analysis.ux_sensitivity import format_sensitivity

    assert "Median wait per page on `a`: 0.05 s." in format_sensitivity([], sessions=2, policy="scripted", wait_s=0.05)
    slow_machine = format_sensitivity([], sessions=2, policy="scripted", wait_s=1.3)
    assert "1.30 s. That is over 1 s" in slow_machine and "lower --concurrency" in slow_machine
