"""`training.experiments` on the `smoke` preset: a subset of the paper's rows end to end (sessions, data, init, SFT,
GRPO variants, eval, realism), results.json / tables.md in the paper's layouts, and `resume` skipping done rows."""

from __future__ import annotations

import json

import pytest

from training.experiments import PRESETS, row_keys, run_experiment

ROWS = ["zero_shot", "sft", "shop_r1", "no_dars", "context_latest", "temperature_1"]
HEADINGS = ("## Table 2", "## Table 3", "## Table 4", "## Table 5", "## Temperature sweep", "## Session realism",
            "## Evidence: reward components over GRPO training", "## Evidence: predicted action types")


def test_presets_are_typed_and_complete():
    smoke, tiny = PRESETS["smoke"], PRESETS["tiny-cpu"]
    assert smoke.model_preset == "micro" and len(smoke.seeds) == 1 and len(smoke.temperatures) == 2
    assert tiny.model_preset == "tiny" and len(tiny.seeds) == 3
    assert min(tiny.temperatures) == 0.6 and max(tiny.temperatures) == 1.2
    assert set(ROWS) <= set(row_keys(smoke))
    with pytest.raises(ValueError, match="rows among"):
        run_experiment("smoke", "/nonexistent", rows=["nope"])
    # the follow-up changes GRPO's length and step size only, so it can reuse a tiny-cpu run's data and SFT model
    long_rl = PRESETS["tiny-cpu-long-rl"]
    changed = {f for f in tiny.__dataclass_fields__ if getattr(tiny, f) != getattr(long_rl, f)}
    assert changed == {"name", "rl_steps", "rl_learning_rate", "temperatures", "seeds"}
    assert long_rl.rl_steps == 3 * tiny.rl_steps
    assert long_rl.rl_learning_rate == pytest.approx(3 * tiny.rl_learning_rate)


@pytest.mark.slow
def test_smoke_experiment_rows_tables_and_resume(store_db, tmp_path):
    exp = tmp_path / "exp"
    results = run_experiment("smoke", exp, rows=ROWS, catalog=store_db)

    saved = json.loads((exp / "results.json").read_text())
    assert saved["seeds"] == [0]
    assert saved["data"]["held_out"]["shared_products"] == 0
    assert saved["data"]["test"]["rl_rows"] > 0 and saved["data"]["train"]["rl_rows"] > 0
    rows = {r["row"]: r for r in saved["rows"]}
    assert set(rows) == set(ROWS)
    for r in rows.values():
        for key in ("seed", "steps", "wall_seconds", "train_seconds", "eval_seconds", "metrics", "temperature",
                    "context"):
            assert key in r, (r["row"], key)
        assert r["n"] == 6
        for key in ("exact_accuracy", "type_accuracy", "type_macro_f1"):
            assert 0.0 <= r["metrics"][key] <= 1.0
        assert set(r["metrics"]["per_type"]) >= {"click", "type_and_submit", "terminate"}
        assert r["resumed"] is False
    assert rows["zero_shot"]["steps"] == {}
    assert rows["sft"]["steps"] == {"sft": 3}
    assert rows["shop_r1"]["steps"] == {"sft": 3, "rl": 2}
    assert rows["context_latest"]["context"] == "latest"
    assert rows["temperature_1"]["temperature"] == 1.0
    assert rows["shop_r1"]["realism"] is not None and rows["no_dars"]["realism"] is None
    assert 0.0 <= rows["shop_r1"]["realism"]["js"]["action_types"] <= 1.0
    summary = saved["summary"]["shop_r1"]
    assert summary["exact_accuracy"]["n"] == 1 and summary["exact_accuracy"]["std"] == 0.0
    assert results["rows"] == saved["rows"]

    tables = (exp / "tables.md").read_text()
    for heading in HEADINGS:
        assert heading in tables, heading
    assert "| Shop-R1 (ours) |" in tables and "| w/o DARS |" in tables and "| latest step only |" in tables
    assert "| shop_r1 | " in tables.split("## Evidence: reward components")[1]  # its GRPO log made it in

    # --resume: every done row is skipped (its record file untouched); a removed one is rerun from the saved model.
    done = exp / "seed0" / "rows"
    stamps = {k: (done / f"{k}.json").stat().st_mtime_ns for k in ROWS}
    (done / "no_dars.json").unlink()
    again = run_experiment("smoke", exp, rows=ROWS, catalog=store_db, resume=True)
    resumed = {r["row"]: r["resumed"] for r in again["rows"]}
    assert resumed == {k: k != "no_dars" for k in ROWS}
    for k in ROWS:
        if k != "no_dars":
            assert (done / f"{k}.json").stat().st_mtime_ns == stamps[k]
    rerun = next(r for r in again["rows"] if r["row"] == "no_dars")
    assert rerun["steps"] == {"sft": 3, "rl": 2}

    # --render-only: tables from the records on disk, nothing trained; rows missing a seed are named
    rendered = run_experiment("smoke", exp, rows=ROWS, seeds=[0, 1], render_only=True)
    assert {r["row"] for r in rendered["rows"]} == set(ROWS) and {r["seed"] for r in rendered["rows"]} == {0}
    assert "Rows with fewer seeds" in (exp / "tables.md").read_text()
    with pytest.raises(ValueError, match="row records"):
        run_experiment("smoke", exp, rows=ROWS, seeds=[5], render_only=True)
