"""`training.experiments` on the `smoke` preset: a subset of the paper's rows end to end (sessions, data, init, SFT,
GRPO variants, eval, realism), results.json / tables.md in the paper's layouts, and `resume` skipping done rows."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest
from typer.testing import CliRunner

from training.configs import load_config
from training.experiment_presets import PRESETS, SIZE_FIELDS, SMOLLM2_ROWS, PresetName
from training.experiment_rows import MODELS, row_keys
from training.experiment_rows import ROWS as ALL_ROWS
from training.experiment_tables import format_tables
from training.experiments import (
    BASE_CONFIG,
    RunContext,
    check_page_shown,
    run_experiment,
    select_rows,
    stage_overrides,
)
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
    assert changed == {"name", "rl_steps", "rl_learning_rate", "temperatures", "seeds", "rows"}
    assert [r.key for r in select_rows(long_rl, None)] == ["shop_r1", "no_dars", "binary_action"]
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
    assert "| binary action reward | – | – | – | 27.41 / 27.46 / 12.11 | – |" in table_4
    assert "| binary action reward, w/o format (other reading) | – | – | – | – | – |" in table_4


def test_the_preset_choice_is_typed_and_lists_every_preset():
    from agent.cli.root import app

    assert set(typing.get_args(PresetName)) == set(PRESETS)
    runner = CliRunner()
    help_text = runner.invoke(app, ["experiment", "paper-tables", "--help"]).output
    for name in PRESETS:
        assert name in help_text, name
    assert "--no-persona" in help_text and "--device" in help_text
    bad = runner.invoke(app, ["experiment", "paper-tables", "--out", "/nonexistent", "--preset", "huge"])
    assert bad.exit_code == 2 and "huge" in bad.output


def test_smollm2_presets_have_their_rows_seeds_and_fine_tuning():
    cpu, gpu, smoke = PRESETS["smollm2-cpu"], PRESETS["smollm2-gpu"], PRESETS["smollm2-gpu-smoke"]
    assert cpu.model_preset == gpu.model_preset == "smollm2-135m-instruct"
    assert cpu.lora_r > 0 and cpu.device == "cpu" and cpu.seeds == (0,)
    assert [r.key for r in select_rows(cpu, None)] == list(SMOLLM2_ROWS)
    assert set(SMOLLM2_ROWS) == {"zero_shot", "rl_binary", "sft", "sft_rl_binary", "shop_r1", "no_dars",
                                 "binary_action", "shop_r1_online"}
    assert select_rows(cpu, ["no_format"])[0].key == "no_format"  # --rows still picks any row
    # the GPU preset: every row, 3 seeds, full fine-tuning, CUDA, the paper's layout
    assert gpu.rows is None and [r.key for r in select_rows(gpu, None)] == row_keys(gpu)
    assert gpu.seeds == (0, 1, 2) and gpu.lora_r == 0 and gpu.device == "cuda"
    assert (gpu.sft_rows, gpu.rl_rationales, gpu.persona) == ("sessions", False, True)
    assert gpu.max_prompt_length + gpu.max_completion_length <= 8192  # SmolLM2's positions
    # its smoke variant differs in sizes and the device only
    changed = {f.name for f in dataclasses.fields(gpu) if getattr(gpu, f.name) != getattr(smoke, f.name)}
    assert changed <= SIZE_FIELDS | {"name", "device"} and smoke.device == "cpu"


@pytest.mark.parametrize("name", ["smollm2-gpu", "smollm2-gpu-smoke", "smollm2-cpu", "tiny-cpu"])
def test_every_stage_of_every_model_builds_its_config(name, tmp_path):
    """The shape of a preset on this CPU: every SFT/GRPO stage's TRL config builds from the base YAML and the
    preset's overrides (bad combinations raise here, not hours into a run); the GPU preset trains on CUDA."""
    preset = PRESETS[name]
    ctx = RunContext(tmp_path, preset, "http://127.0.0.1:1", tmp_path / "catalog.db", False)
    for model, spec in MODELS.items():
        if spec.stage == "init":
            continue
        overrides = stage_overrides(ctx, spec, 0, tmp_path / "parent", tmp_path / model)
        assert overrides["use_cpu"] is (preset.device == "cpu"), model
        assert overrides["lora_r"] == preset.lora_r
        if preset.device == "cuda":
            continue  # bf16 on CUDA does not build on a machine without a GPU; the smoke variant builds it
        config = load_config(BASE_CONFIG, "sft" if spec.stage == "sft" else "rl", overrides)
        assert config.max_steps == overrides["max_steps"] and config.seed == 0
        if spec.stage != "sft":
            assert config.per_device_train_batch_size % config.num_generations == 0


def test_page_shown_check_fails_loudly_below_the_floor():
    meta = {"prompt_budget": {"rl_prompt_mean_current_shown": 0.02, "max_context_tokens": 512}}
    with pytest.raises(ValueError, match=r"Expect RL prompts to show >= 50% of their current page on average \(test "
                                         r"data\), actually: 2% at a 512-token budget"):
        check_page_shown(meta, 0.5, "test")
    assert check_page_shown(meta, 0.0) == 0.02
    with pytest.raises(ValueError, match="page_shown_floor"):
        dataclasses.replace(PRESETS["smoke"], page_shown_floor=1.5)
    with pytest.raises(ValueError, match="Expect device 'cpu' or 'cuda', actually: 'tpu'"):
        dataclasses.replace(PRESETS["smoke"], device="tpu")
    # every preset is sized for the page: at least the old 512-token budget x 4 (measured shares in the docstrings)
    assert all(p.max_context_tokens >= 2048 and p.page_shown_floor == 0.5 for p in PRESETS.values())


@pytest.mark.slow
def test_a_blind_budget_stops_the_run(store_db, tmp_path):
    blind = dataclasses.replace(PRESETS["smoke"], name="blind", max_context_tokens=384)
    with pytest.raises(ValueError, match=r"Expect RL prompts to show >= 50% of their current page on average "
                                         r"\(train data\), actually: \d+% at a 384-token budget"):
        run_experiment(blind, tmp_path / "exp", rows=["zero_shot"], catalog=store_db)
    assert not (tmp_path / "exp" / "seed0").exists()  # nothing trained


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~1.5 min on idle cores; minutes more when other jobs load the machine
def test_smoke_experiment_rows_tables_and_resume(store_db, tmp_path):
    exp = tmp_path / "exp"
    results = run_experiment("smoke", exp, rows=ROWS, catalog=store_db, persona=False)

    saved = json.loads((exp / "results.json").read_text())
    assert saved["seeds"] == [0]
    assert saved["data"]["held_out"]["shared_products"] == 0
    # the paper's context: no persona or intent block in any prompt, recorded in every row and in the tables
    assert saved["data"]["persona"] is False and saved["preset"]["persona"] is False
    assert all(r["persona"] is False for r in saved["rows"])
    shown = saved["data"]["rl_prompt_mean_current_shown"]
    assert shown["train"] >= 0.5 and shown["test"] >= 0.5
    from training.data import load_split

    prompts = [m["content"] for row in load_split(exp / "data" / "train", "rl", "train") for m in row["prompt"]]
    assert prompts and not any("# What you want" in p or "# Who you are" in p for p in prompts)
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
    assert "pages and actions only, no persona or intent (the paper's context)" in tables
    # every model is scored in its own training layout: SFT (previous rationales shown) on its own test data, with the
    # shared RL layout's score as an extra column; the RL models and the initial model on the RL layout
    assert rows["sft"]["layout"].startswith("test-layout-") and "rationales" in rows["sft"]["layout"]
    assert set(rows["sft"]["cross_layout"]) == {"exact_accuracy", "type_accuracy", "type_macro_f1"}
    assert {rows[k]["layout"] for k in ("zero_shot", "shop_r1", "no_dars")} == {"rl"}
    assert rows["shop_r1"]["cross_layout"] is None
    from training.comparisons import load_step_scores

    seed_rows = exp / "seed0" / "rows"
    own, shared = (load_step_scores(seed_rows / f"sft{x}.predictions.jsonl") for x in ("", ".rl-layout"))
    assert set(own) == set(shared) == set(load_step_scores(seed_rows / "shop_r1.predictions.jsonl"))  # paired steps
    own_data = exp / "data" / rows["sft"]["layout"]
    history = [m["content"] for row in load_split(own_data, "rl", "test") for m in row["prompt"]
               if m["role"] == "assistant"]
    assert history and all('"rationale"' in turn for turn in history)
    assert "Exact, RL layout |" in tables.split("## Table 2")[1].split("## Table 3")[0]
    # paired bootstrap differences, one per finding whose rows ran: SFT vs zero-shot, Shop-R1 vs SFT and the
    # ablations vs Shop-R1, on the same 6 test steps
    comparisons = saved["comparisons"]
    assert set(comparisons) == {"sft_vs_zero_shot", "shop_r1_vs_sft", "no_dars_vs_shop_r1",
                                "context_latest_vs_shop_r1"}
    assert comparisons["no_dars_vs_shop_r1"]["metric"] == "type_macro_f1"  # the terminate-spam finding's metric
    main = comparisons["shop_r1_vs_sft"]
    assert main["steps"] == 6 and main["seeds"] == [0] and main["paper"] == pytest.approx(10.96)
    exact = main["exact_accuracy"]
    assert exact["low"] <= exact["estimate"] <= exact["high"]
    assert exact["estimate"] == pytest.approx(rows["shop_r1"]["metrics"]["exact_accuracy"]
                                              - rows["sft"]["metrics"]["exact_accuracy"])
    assert "## Paired differences" in tables and "| Shop-R1 (ours) vs SFT |" in tables
    # the pathology curves: per-step terminate share and format share from the GRPO logs, as tables and SVGs
    curves = tables.split("## Evidence: the pathologies over GRPO steps")[1]
    assert "| step | shop_r1 | no_dars | gold terminate share |" in curves
    assert "| step | shop_r1 |" in curves.split("### Share of sampled completions")[1]
    assert (exp / "curves" / "terminate_share.svg").read_text().startswith("<svg")

    # --resume: every done row is skipped (its record file untouched); a removed one is rerun from the saved model.
    done = exp / "seed0" / "rows"
    stamps = {k: (done / f"{k}.json").stat().st_mtime_ns for k in ROWS}
    (done / "no_dars.json").unlink()
    with pytest.raises(ValueError, match="Expect --resume on data built with this preset's persona"):
        run_experiment("smoke", exp, rows=ROWS, catalog=store_db, resume=True)  # the data has no persona block
    again = run_experiment("smoke", exp, rows=ROWS, catalog=store_db, resume=True, persona=False)
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
    from agent.cli.root import app

    done = CliRunner().invoke(app, ["experiment", "paper-tables", "--out", str(exp), "--render-only", "--no-persona",
                                    "--rows", ",".join(ROWS)])
    assert done.exit_code == 0, done.output
    assert "pages and actions only" in (exp / "tables.md").read_text()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smollm2_gpu_shape_runs_on_cpu_at_smoke_sizes(store_db, tmp_path):
    """`smollm2-gpu`'s plumbing at smoke sizes: the real SmolLM2 base, fully fine-tuned (SFT, then GRPO), scored in
    each model's layout. Heavy for a test: ~6.4 GB RSS (fp32 weights, AdamW state and GRPO's reference copy of a 135M
    model) and ~8 min on 2 busy cores."""
    exp = tmp_path / "exp"
    results = run_experiment("smollm2-gpu-smoke", exp, rows=["zero_shot", "sft", "shop_r1"], seeds=[0],
                             catalog=store_db)
    rows = {r["row"]: r for r in results["rows"]}
    assert rows["sft"]["steps"] == {"sft": 1} and rows["shop_r1"]["steps"] == {"sft": 1, "rl": 1}
    for name in ("sft", "shop_r1"):  # full fine-tuning: whole weights, no adapter
        model_dir = exp / "seed0" / "models" / name
        assert (model_dir / "model.safetensors").is_file() and not (model_dir / "adapter_config.json").exists()
    assert rows["sft"]["layout"] != "rl" and rows["shop_r1"]["layout"] == "rl"
    assert min(results["data"]["rl_prompt_mean_current_shown"].values()) >= 0.5
    assert "shop_r1_vs_sft" in results["comparisons"]
