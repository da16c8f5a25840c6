"""`training.experiments` on the `smoke` preset: a subset of the paper's rows end to end (sessions, data, init, SFT,
GRPO variants, eval, realism), results.json / tables.md in the paper's layouts, and `resume` skipping done rows."""

from __future__ import annotations

import json

import pytest

from training.configs import load_config
from training.experiments import BASE_CONFIG, MODELS, PRESETS, format_tables, row_keys, run_experiment
from training.experiments import ROWS as ALL_ROWS
from training.rewards import RewardConfig

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



# Per RL model: the RewardConfig its GRPO stage builds (the base YAML + the model's overrides). Only the ablated
# switch departs from the paper's defaults (strict format, `>` gate, DARS on, format reward on).
REWARDS = {
    "rl_binary": RewardConfig(binary=True, use_format=False),  # Table 2: 1 on an exact match, else 0
    "sft_rl_binary": RewardConfig(binary=True, use_format=False),
    "shop_r1": RewardConfig(),
    "no_sft": RewardConfig(),
    "no_format": RewardConfig(use_format=False),
    "no_self_certainty": RewardConfig(),
    "no_dars": RewardConfig(use_dars=False),
    "binary_action": RewardConfig(binary=True),  # Table 4, the paper's reading: format reward kept
    "binary_action_no_format": RewardConfig(binary=True, use_format=False),  # the other reading
    "context_latest": RewardConfig(),
}


@pytest.mark.parametrize("row", [r for r in ALL_ROWS if MODELS[r.model].stage == "rl"], ids=lambda r: r.key)
def test_rl_rows_carry_the_intended_reward(row):
    spec = MODELS[row.model]
    config = load_config(BASE_CONFIG, "rl", dict(spec.overrides))
    assert config.reward_config() == REWARDS[row.model]
    assert (config.reward_config().rouge_gate, config.reward_config().format_check) == ("exceeds", "strict")
    alpha = 0.0 if row.model in ("rl_binary", "sft_rl_binary", "no_self_certainty") else 0.005
    assert config.self_certainty_alpha == alpha


def test_binary_action_rows_change_one_thing_against_shop_r1():
    shop_r1 = load_config(BASE_CONFIG, "rl", dict(MODELS["shop_r1"].overrides))
    binary = load_config(BASE_CONFIG, "rl", dict(MODELS["binary_action"].overrides))
    changed = {f for f in shop_r1.__dataclass_fields__ if getattr(shop_r1, f) != getattr(binary, f)}
    assert changed == {"reward"}
    assert "other reading" in next(r.label for r in ALL_ROWS if r.key == "binary_action_no_format")
    assert "does not spell out" in MODELS["binary_action_no_format"].description


def test_table_4_lists_both_binary_readings_with_the_paper_number_on_one():
    tables = format_tables({}, PRESETS["smoke"], [0])
    table_4 = tables.split("## Table 4")[1].split("## Table 5")[0]
    assert "| binary action reward | – | – | – | 27.41 / 27.46 / 12.11 |" in table_4
    assert "| binary action reward, w/o format (other reading) | – | – | – | – |" in table_4


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
