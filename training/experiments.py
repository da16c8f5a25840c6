"""The paper's experiments end to end: `shop-r1 experiment paper-tables --preset PRESET --out EXP_DIR`.

One call reproduces the *layout* of Shop-R1's Tables 2-5 (arXiv 2507.17842), the temperature sweep and a session
realism table on the local store, with a random-init model small enough for a CPU:

1. **Reference sessions.** The scripted shopper shops the embedded store (http backend) twice: a training run and a
   held-out test run whose shoppers come from another persona seed and whose intents come from catalog products that no
   training session was drawn from (`agent.runtime.population.sample_from_catalog`, filtered by `Intent.target_asin`).
2. **Datasets.** `training.data.build_datasets`: `EXP_DIR/data/train` (all training sessions in its train split) and
   `EXP_DIR/data/test` (all held-out sessions in its test split), both counted with the model's tokenizer.
3. **Model init** (`training.modeling.init_model`, one random init per seed; the tokenizer is trained on the training
   split only).
4. **Rows.** Every row is trained and evaluated on the same data and the same held-out test split (`ROWS`); a model
   that several rows share (the SFT model, the Shop-R1 model) is trained once per seed (`MODELS`). Each model is
   scored in the prompt layout it was trained with (`layout_test_data`: the SFT model sees previous rationales, the
   RL prompts do not); the shared RL layout's score of such a model is an extra column only.

The context is a switch (`ExperimentPreset.persona`, `--no-persona`): by default the prompts say who the shopper is
and what they want (Customer-R1's persona conditioning); without it they hold pages and actions only, the paper's
context. Every preset keeps the page in view: the run stops when the data's RL prompts show less than half of their
current page on average (`check_page_shown`).

Outputs: `EXP_DIR/results.json` (every row x seed: seeds, step counts, wall times, metrics, realism; plus mean ± std
per row, and the paired bootstrap differences of `training.comparisons`) and `EXP_DIR/tables.md` (the paper's tables
with the differences' 95% intervals, and the evidence: reward components, predicted types and the per-step curves of
`training.curves`, whose SVGs go to `EXP_DIR/curves/`). Per-row results are kept in `EXP_DIR/seed<k>/rows/<row>.json`
(and the predictions in `<row>.predictions.jsonl`); `resume=True` skips rows and models that are already there, so
a killed run continues where it stopped.

The scale is nothing like the paper's (a ~4M-parameter random model vs Qwen2.5-3B, minutes of CPU vs A100-days): the
numbers show that every arm of the comparison runs and is scored the same way, not the paper's effect sizes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import shutil
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from agent.cli.usage import usage_error
from agent.policy.base_models import BASES, ensure_base
from envs.actions import ACTION_TYPES

from .comparisons import compare_rows, delta_cell, format_differences
from .curves import format_curves
from .experiment_presets import (
    PAGE_SHOWN_TARGET,
    PRESETS,
    ExperimentPreset,
    PresetName,
)
from .presets import PRESET_DIR

log = logging.getLogger(__name__)

__all__ = [
    "MODELS",
    "PRESETS",
    "ROWS",
    "ExperimentPreset",
    "ModelSpec",
    "RowSpec",
    "format_tables",
    "row_keys",
    "experiment_app",
    "run_experiment",
]

BASE_CONFIG = PRESET_DIR / "tiny-cpu.yaml"
"""Every stage starts from this YAML (precision, logging, the paper's β, α, DARS, threshold), then the preset's."""

METRIC_KEYS = ("exact_accuracy", "type_accuracy", "type_macro_f1")
TEST_ONLY_SPLIT = (1e-7, 0.0, 1.0 - 1e-7)
"""Every held-out session in the test split: `build_datasets` wants a train fraction > 0, and a negligible one rounds
to zero sessions (largest remainder) for any realistic session count."""


# --------------------------------------------------------------------------------------------------------------------
# Models and rows


@dataclass(frozen=True)
class ModelSpec:
    """A model trained once per seed: `stage` from `parent` with config overrides."""

    stage: Literal["init", "sft", "rl", "online"]
    parent: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    "base": ModelSpec("init", description="the initial model, zero-shot (random init, or the pretrained base)"),
    "sft": ModelSpec("sft", "base", description="SFT cold start"),
    "rl_binary": ModelSpec("rl", "base", {"reward": "binary", "use_format": False, "self_certainty_alpha": 0.0},
                           "GRPO, binary reward (1 on an exact match, else 0: no format reward), from the initial "
                           "model"),
    "sft_rl_binary": ModelSpec("rl", "sft", {"reward": "binary", "use_format": False, "self_certainty_alpha": 0.0},
                               "SFT, then GRPO with the binary reward (no format reward)"),
    "shop_r1": ModelSpec("rl", "sft", {}, "SFT, then GRPO with v(a) + α·s(r) (Shop-R1)"),
    "no_sft": ModelSpec("rl", "base", {}, "Shop-R1 reward without the SFT cold start"),
    "no_format": ModelSpec("rl", "sft", {"use_format": False}, "Shop-R1 without the format reward"),
    "no_self_certainty": ModelSpec("rl", "sft", {"self_certainty_alpha": 0.0}, "Shop-R1 with α = 0"),
    "no_dars": ModelSpec("rl", "sft", {"use_dars": False}, "Shop-R1 without DARS"),
    "binary_action": ModelSpec("rl", "sft", {"reward": "binary"},
                               "Shop-R1 with a binary v(a), format reward and α·s(r) kept (the paper's reading of "
                               "Table 4: only the action reward changes)"),
    "binary_action_no_format": ModelSpec(
        "rl", "sft", {"reward": "binary", "use_format": False},
        "Shop-R1 with a binary v(a) and no format reward, α·s(r) kept: the other reading of Table 4's row, which the "
        "paper does not spell out (its binary baseline, Table 2, has no format reward); not the paper's number"),
    "context_latest": ModelSpec("rl", "sft", {"context": "latest"}, "Shop-R1 trained on the latest page only"),
    "shop_r1_online": ModelSpec("online", "shop_r1", {"online": True},
                                "Shop-R1, then online GRPO in the store (beyond the paper)"),
}
"""Every model of the experiment. Table 2's binary baselines (`rl_binary`, `sft_rl_binary`) are the paper's "reward 1
only on an exact match, else 0": no format reward, no s(r). Table 4's `binary_action` swaps only the action reward of
Shop-R1 for the binary one, keeping the format reward and α·s(r), so it changes one thing against `shop_r1`. The paper
does not say whether that row keeps the format reward, so `binary_action_no_format` runs the other reading (two
changes at once) beside it; the paper's number is compared with `binary_action` only."""


@dataclass(frozen=True)
class RowSpec:
    """A row of a table: a model evaluated with a context and a temperature (None: the preset's)."""

    key: str
    table: str
    label: str
    model: str
    context: Literal["all", "latest"] = "all"
    temperature: float | None = None
    realism: bool = False


_BASE_ROWS: tuple[RowSpec, ...] = (
    RowSpec("zero_shot", "main", "Zero-shot", "base", realism=True),
    RowSpec("rl_binary", "main", "RL (binary)", "rl_binary", realism=True),
    RowSpec("sft", "main", "SFT", "sft", realism=True),
    RowSpec("sft_rl_binary", "main", "SFT + RL (binary)", "sft_rl_binary", realism=True),
    RowSpec("shop_r1", "main", "Shop-R1 (ours)", "shop_r1", realism=True),
    RowSpec("no_sft", "ablation", "w/o SFT", "no_sft"),
    RowSpec("no_format", "ablation", "w/o format reward", "no_format"),
    RowSpec("no_self_certainty", "ablation", "w/o self-certainty", "no_self_certainty"),
    RowSpec("no_dars", "ablation", "w/o DARS", "no_dars"),
    RowSpec("binary_action", "ablation", "binary action reward", "binary_action"),
    RowSpec("binary_action_no_format", "ablation", "binary action reward, w/o format (other reading)",
            "binary_action_no_format"),
    RowSpec("context_latest", "context", "latest step only", "context_latest", context="latest"),
    RowSpec("shop_r1_online", "online", "Shop-R1 + online RL", "shop_r1_online", realism=True),
)


def _temperature_key(t: float) -> str:
    return f"temperature_{t:g}"


def rows_for(preset: ExperimentPreset) -> list[RowSpec]:
    """The preset's rows: the fixed ones plus one sweep row per temperature other than `eval_temperature` (that one
    is the Shop-R1 row itself)."""
    sweep = [RowSpec(_temperature_key(t), "temperature", f"τ = {t:g}", "shop_r1", temperature=t)
             for t in preset.temperatures if not math.isclose(t, preset.eval_temperature)]
    return [*_BASE_ROWS, *sweep]


ROWS = _BASE_ROWS
"""The fixed rows (temperature rows depend on the preset: `rows_for`)."""


def row_keys(preset: ExperimentPreset) -> list[str]:
    """Every row key of a preset, in table order."""
    return [r.key for r in rows_for(preset)]


# --------------------------------------------------------------------------------------------------------------------
# Paper numbers (Qwen2.5-3B-Instruct, %), shown beside ours


PAPER_MAIN = {"zero_shot": (0.32, 15.33, 16.15), "rl_binary": (1.01, 6.17, 9.92), "sft": (16.76, 22.25, 24.52),
              "sft_rl_binary": (16.55, 23.74, 28.07), "shop_r1": (27.72, 36.40, 31.28)}
PAPER_ABLATION = {"no_sft": (4.63, 36.56, 21.92), "no_format": (2.87, 3.19, 5.04),
                  "no_self_certainty": (26.93, 37.25, 33.74), "no_dars": (27.83, 27.20, 11.70),
                  "binary_action": (27.41, 27.46, 12.11)}
PAPER_CONTEXT = {"shop_r1": 27.72, "context_latest": 14.74}


# --------------------------------------------------------------------------------------------------------------------
# Steps 1-3: sessions, data, model init


def _done(path: Path) -> dict[str, Any] | None:
    marker = path / "done.json"
    return json.loads(marker.read_text()) if marker.is_file() else None


def _mark_done(path: Path, info: Mapping[str, Any]) -> None:
    (path / "done.json").write_text(json.dumps(dict(info), indent=2) + "\n", encoding="utf-8")


def _shoppers(catalog: Path, preset: ExperimentPreset) -> tuple[list[Any], list[Any]]:
    """(train, test) persona/intent pairs; test intents come from products no training intent came from."""
    from agent.wiring import sample_from_catalog

    train = sample_from_catalog(catalog, preset.train_sessions, seed=preset.train_persona_seed)
    used = {pi.intent.target_asin for pi in train}
    pool = sample_from_catalog(catalog, preset.test_sessions * 4, seed=preset.test_persona_seed)
    test = [pi for pi in pool if pi.intent.target_asin not in used][: preset.test_sessions]
    if len(test) < preset.test_sessions:
        log.warning("only %d held-out test shoppers with unseen products (wanted %d)", len(test),
                    preset.test_sessions)
    if not test:
        raise ValueError("Expect held-out test shoppers, actually: every sampled product is in training")
    return train, test


def _simulate(run_dir: Path, items: Sequence[Any], url: str, preset: ExperimentPreset, seed: int, *,
              resume: bool) -> dict[str, Any]:
    from agent.policy import make_policy
    from agent.runtime.session import RunConfig, run_sessions

    if resume and (info := _done(run_dir)):
        return info
    if run_dir.exists():
        shutil.rmtree(run_dir)
    started = time.perf_counter()
    config = RunConfig(site=url, backend="http", concurrency=preset.concurrency, seed=seed,
                       max_steps=preset.session_max_steps)
    # Reference sessions depend on their seeds alone: a busy machine's slow pages must not make shoppers leave.
    policy = make_policy("scripted", react_to_waits=False, option_slip_rate=preset.option_slip_rate)
    results = asyncio.run(run_sessions(run_dir, policy, list(items), config, progress=False,
                                       extra={"task": "experiment"}))
    info = {"sessions": len(results), "steps": sum(r.steps for r in results),
            "outcomes": dict(sorted(_count(r.outcome for r in results).items())),
            "seconds": round(time.perf_counter() - started, 2)}
    _mark_done(run_dir, info)
    return info


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def check_page_shown(meta: Mapping[str, Any], floor: float, name: str = "data") -> float:
    """The mean share of the current page that the data's RL prompts show (`rl_prompt_mean_current_shown` of
    `training.data.build_datasets`' meta); a `ValueError` below `floor`: the run would score models that never saw
    the page they act on.

    >>> check_page_shown({"prompt_budget": {"rl_prompt_mean_current_shown": 0.82}}, 0.5)
    0.82
    """
    shown = float(meta["prompt_budget"]["rl_prompt_mean_current_shown"])
    if shown < floor:
        budget = meta.get("prompt_budget", {}).get("max_context_tokens")
        raise ValueError(f"Expect RL prompts to show >= {floor:.0%} of their current page on average ({name} data), "
                         f"actually: {shown:.0%} at a {budget}-token budget; raise max_context_tokens (the system "
                         "prompt, persona and action history come before the page)")
    if shown < PAGE_SHOWN_TARGET:
        log.warning("%s data: RL prompts show %.0f%% of their current page on average (target %.0f%%)", name,
                    100 * shown, 100 * PAGE_SHOWN_TARGET)
    return shown


def _prepare_data(exp: Path, url: str, catalog: Path, preset: ExperimentPreset, *, resume: bool) -> dict[str, Any]:
    """Steps 1-3 (the seed-0 init's tokenizer counts the data's tokens): sessions, both data dirs, the counts."""
    from training.data import DataConfig, build_datasets
    from training.modeling import init_model

    data_marker = exp / "data"
    if resume and (info := _done(data_marker)):
        built = (info.get("persona", True), info.get("max_context_tokens", preset.max_context_tokens))
        if built != (preset.persona, preset.max_context_tokens):
            raise ValueError(f"Expect --resume on data built with this preset's persona and page budget "
                             f"{(preset.persona, preset.max_context_tokens)}, actually: {built} in {data_marker}; "
                             "use another --out")
        return info
    train_items, test_items = _shoppers(catalog, preset)
    traces = exp / "traces"
    sims = {"train": _simulate(traces / "train", train_items, url, preset, 0, resume=resume),
            "test": _simulate(traces / "test", test_items, url, preset, 1, resume=resume)}
    train_dir, test_dir, tok_dir = exp / "data" / "train", exp / "data" / "test", exp / "data" / "tokenizer"
    if preset.model_preset in BASES:  # a pretrained base brings its tokenizer
        tok_dir = ensure_base(preset.model_preset)
    else:
        build_datasets([traces / "train"], train_dir, split=(1.0, 0.0, 0.0),
                       max_context_tokens=preset.max_context_tokens)
        init_model(preset.model_preset, train_dir, tok_dir, seed=0)
    def data_config(split: tuple[float, float, float]) -> DataConfig:
        return DataConfig(split=split, max_context_tokens=preset.max_context_tokens, tokenizer_dir=str(tok_dir),
                          rl_rationales=preset.rl_rationales, sft_rows=preset.sft_rows,  # type: ignore[arg-type]
                          persona=preset.persona)

    train_meta = build_datasets([traces / "train"], train_dir, config=data_config((1.0, 0.0, 0.0)))
    test_meta = build_datasets([traces / "test"], test_dir, config=data_config(TEST_ONLY_SPLIT))
    if test_meta["counts"]["train"]["sessions"]:
        raise ValueError(f"Expect every held-out session in the test split, actually: {test_meta['counts']}")
    shown = {name: check_page_shown(meta, preset.page_shown_floor, name)
             for name, meta in (("train", train_meta), ("test", test_meta))}
    info = {"simulation": sims, "train": train_meta["counts"]["train"], "test": test_meta["counts"]["test"],
            "persona": preset.persona, "max_context_tokens": preset.max_context_tokens,
            "rl_prompt_mean_current_shown": shown,
            "held_out": {"test_persona_seed": preset.test_persona_seed,
                         "train_products": len({pi.intent.target_asin for pi in train_items}),
                         "test_products": len({pi.intent.target_asin for pi in test_items}),
                         "shared_products": 0}}
    _mark_done(data_marker, info)
    return info


# --------------------------------------------------------------------------------------------------------------------
# Step 4: models


@dataclass
class _Context:
    exp: Path
    preset: ExperimentPreset
    url: str
    catalog: Path
    resume: bool
    trained: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def train_data(self) -> Path:
        return self.exp / "data" / "train"

    @property
    def test_data(self) -> Path:
        return self.exp / "data" / "test"

    def seed_dir(self, seed: int) -> Path:
        return self.exp / f"seed{seed}"


def _stage_overrides(ctx: _Context, spec: ModelSpec, seed: int, parent_dir: Path, out: Path) -> dict[str, Any]:
    p = ctx.preset
    common = {"data_dir": str(ctx.train_data), "model_dir": str(parent_dir), "output_dir": str(out), "seed": seed,
              "save_strategy": "no", "lora_r": p.lora_r, "bf16": p.bf16,
              "gradient_checkpointing": p.gradient_checkpointing, "use_cpu": p.device == "cpu"}
    if spec.stage == "sft":
        return {**common, "max_steps": p.sft_steps, "per_device_train_batch_size": p.sft_batch_size,
                "max_length": p.sft_max_length, "learning_rate": p.sft_learning_rate}
    if p.rl_gradient_checkpointing is not None:
        common["gradient_checkpointing"] = p.rl_gradient_checkpointing
    rl = {**common, "max_steps": p.rl_steps, "num_generations": p.num_generations,
          "per_device_train_batch_size": p.rl_batch_size, "max_completion_length": p.max_completion_length,
          "max_prompt_length": p.max_prompt_length, "learning_rate": p.rl_learning_rate,
          "temperature": p.eval_temperature}
    if spec.stage == "online":
        rl.update({"max_steps": p.online_steps, "online_site": ctx.url, "online_catalog": str(ctx.catalog),
                   "online_episodes": p.online_episodes, "online_max_steps": p.online_max_steps})
    return {**rl, **spec.overrides}


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def _train(ctx: _Context, name: str, seed: int) -> dict[str, Any]:
    """Train (or reuse) model `name` for `seed` and its ancestors; returns {dir, seconds, steps, ...}."""
    key = (seed, name)
    if key in ctx.trained:
        return ctx.trained[key]
    spec = MODELS[name]
    out = ctx.seed_dir(seed) / "models" / name
    if ctx.resume and (info := _done(out)) and _is_model_dir(Path(info["dir"])):
        ctx.trained[key] = info
        return info
    parent = _train(ctx, spec.parent, seed) if spec.parent else None
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    log.info("seed %d: training %s (%s)", seed, name, spec.description)
    steps: dict[str, int] = dict(parent["steps"]) if parent else {}
    model_dir = out
    if spec.stage == "init" and ctx.preset.model_preset in BASES:
        model_dir = ensure_base(ctx.preset.model_preset)  # pretrained: the converted base, shared by every seed
        out.mkdir(parents=True, exist_ok=True)
    elif spec.stage == "init":
        from training.modeling import init_model

        init_model(ctx.preset.model_preset, ctx.train_data, out, seed=seed)
    else:
        from training.configs import load_config

        assert parent is not None
        overrides = _stage_overrides(ctx, spec, seed, Path(parent["dir"]), out)
        if spec.stage == "sft":
            from training.sft import train_sft

            train_sft(load_config(BASE_CONFIG, "sft", overrides))
        else:
            from training.grpo import train_rl

            train_rl(load_config(BASE_CONFIG, "rl", overrides))
        stage_key = "online_rl" if spec.stage == "online" else spec.stage
        steps[stage_key] = steps.get(stage_key, 0) + int(overrides["max_steps"])
    seconds = round(time.perf_counter() - started, 2)
    own = {"dir": str(model_dir), "model": name, "description": spec.description, "seed": seed, "steps": steps,
           "seconds": seconds, "total_seconds": round(seconds + (parent["total_seconds"] if parent else 0.0), 2),
           "overrides": {k: v for k, v in spec.overrides.items()}}
    _mark_done(out, own)
    ctx.trained[key] = own
    return own


# --------------------------------------------------------------------------------------------------------------------
# Step 4: rows


def _layout_key(config: Mapping[str, Any]) -> tuple[int, str, bool, bool]:
    """A data config's prompt layout: page budget, system prompt, previous rationales, persona block."""
    return (int(config["max_context_tokens"]), str(config.get("system", "full")), bool(config.get("rl_rationales")),
            bool(config.get("persona", True)))


def layout_test_data(model_dir: str | Path, test_data: Path, traces: Path, out_root: Path,
                     tokenizer_dir: str | Path | None = None) -> Path:
    """The held-out test data in the prompt layout `model_dir` was trained with (`shop_r1_prompt.json` beside it):
    `test_data` itself when it matches (or the model saved none), else the same sessions rebuilt from `traces` in that
    layout under `out_root` (once per layout; the rows, and so the paired test steps, are the same).

    SFT trains on the SFT layout (previous rationales shown) while the RL test prompts show none (the paper's RL
    context): scoring an SFT model there judges it on prompts it never saw (Shop-R1's SFT model was evaluated in its
    own format)."""
    from agent.policy.prompt import load_prompt_config
    from training.data import DataConfig, build_datasets, load_meta

    prompt = load_prompt_config(model_dir)
    config = load_meta(test_data)["config"]
    if prompt is None:
        return test_data
    wanted = (prompt.max_context_tokens, prompt.system, prompt.include_rationales, prompt.persona)
    if wanted == _layout_key(config):
        return test_data
    budget, system, rationales, persona = wanted
    out = out_root / f"test-layout-{budget}-{system}-{'rationales' if rationales else 'actions'}-" \
                     f"{'persona' if persona else 'no-persona'}"
    if (out / "meta.json").is_file() and _layout_key(load_meta(out)["config"]) == wanted:
        return out
    build_datasets([traces], out, config=DataConfig(
        split=TEST_ONLY_SPLIT, max_context_tokens=budget, system=system, rl_rationales=rationales, persona=persona,
        tokenizer_dir=str(tokenizer_dir or config.get("tokenizer_dir") or model_dir)))
    return out


def _compact_realism(result: Mapping[str, Any]) -> dict[str, Any]:
    return {"sessions": result["sessions"], "seconds": result["seconds"], "js": dict(result["js"]),
            "rates": {k: dict(v) for k, v in result["rates"].items()},
            "mean_length": {"reference": result["reference"].get("mean_length"),
                            "simulated": result["simulated"].get("mean_length")}}


def _run_row(ctx: _Context, row: RowSpec, seed: int) -> dict[str, Any]:
    from training.evaluate import evaluate_model, session_realism

    p = ctx.preset
    model = _train(ctx, row.model, seed)
    temperature = p.eval_temperature if row.temperature is None else row.temperature
    started = time.perf_counter()
    rows_dir = ctx.seed_dir(seed) / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    own = (ctx.test_data if MODELS[row.model].stage == "init" else
           layout_test_data(model["dir"], ctx.test_data, ctx.exp / "traces" / "test", ctx.exp / "data"))

    def evaluate(data: Path, suffix: str) -> dict[str, Any]:
        return evaluate_model(model["dir"], data, split="test", temperature=temperature,
                              batch_size=p.eval_batch_size, max_new_tokens=p.eval_max_new_tokens, limit=p.eval_limit,
                              context=row.context, seed=seed, device=p.device, name=row.label,
                              predictions_path=rows_dir / f"{row.key}{suffix}.predictions.jsonl")

    result = evaluate(own, "")  # in the layout the model was trained with
    cross = None
    if own != ctx.test_data:  # and on the shared RL layout, shown as an extra column only
        cross_metrics = evaluate(ctx.test_data, ".rl-layout")["metrics"]
        cross = {k: cross_metrics[k] for k in METRIC_KEYS}
    eval_seconds = time.perf_counter() - started
    realism = None
    if row.realism and p.realism_sessions > 0:
        started_r = time.perf_counter()
        realism = _compact_realism(session_realism(
            model["dir"], ctx.test_data, ctx.url, p.realism_sessions, split="test",
            concurrency=min(p.concurrency, p.realism_sessions), seed=seed + 1, max_steps=p.realism_max_steps,
            temperature=temperature, device=p.device))
        eval_seconds += time.perf_counter() - started_r
    metrics = result["metrics"]
    return {
        "row": row.key, "table": row.table, "label": row.label, "seed": seed, "model": row.model,
        "context": row.context, "persona": p.persona, "temperature": temperature,
        "layout": "rl" if own == ctx.test_data else own.name, "cross_layout": cross, "steps": model["steps"],
        "train_seconds": model["total_seconds"], "eval_seconds": round(eval_seconds, 2),
        "wall_seconds": round(model["total_seconds"] + eval_seconds, 2), "n": metrics["n"],
        "metrics": {**{k: metrics[k] for k in METRIC_KEYS}, "n_invalid": metrics["n_invalid"],
                    "per_type": metrics["per_type"], "confusion": metrics["confusion"]},
        "realism": realism,
    }


# --------------------------------------------------------------------------------------------------------------------
# Aggregation and tables


def _mean_std(values: Sequence[float]) -> dict[str, float | int]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def summarize_rows(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean ± std over seeds of each row's metrics (and per-type exact / type accuracy)."""
    by_row: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_row.setdefault(r["row"], []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for key, rs in by_row.items():
        entry: dict[str, Any] = {"label": rs[0]["label"], "table": rs[0]["table"],
                                 "seeds": sorted(r["seed"] for r in rs)}
        for m in METRIC_KEYS:
            entry[m] = _mean_std([float(r["metrics"][m]) for r in rs])
        per_type: dict[str, Any] = {}
        for t in ACTION_TYPES:
            cells = [r["metrics"]["per_type"].get(t) for r in rs]
            cells = [c for c in cells if c and c.get("support")]
            if cells:
                per_type[t] = {m: _mean_std([float(c[m] or 0.0) for c in cells])
                               for m in ("exact_accuracy", "type_accuracy")}
        entry["per_type"] = per_type
        cross = [r["cross_layout"] for r in rs if r.get("cross_layout")]
        if cross:
            entry["cross_layout"] = {m: _mean_std([float(c[m]) for c in cross]) for m in METRIC_KEYS}
        realism = [r["realism"] for r in rs if r.get("realism")]
        if realism:
            entry["realism"] = {
                "js": {k: _mean_std([x["js"][k] for x in realism if x["js"].get(k) is not None])
                       for k in realism[0]["js"] if any(x["js"].get(k) is not None for x in realism)},
                "rates": {k: {"reference": realism[0]["rates"][k]["reference"],
                              "simulated": _mean_std([x["rates"][k]["simulated"] for x in realism])}
                          for k in realism[0]["rates"]},
            }
        entry["wall_seconds"] = _mean_std([float(r["wall_seconds"]) for r in rs])
        out[key] = entry
    return out


def _pm(stat: Mapping[str, Any] | None, pct: bool = True) -> str:
    if not stat:
        return "–"
    scale = 100.0 if pct else 1.0
    text = f"{scale * stat['mean']:.2f}"
    return text + (f" ± {scale * stat['std']:.2f}" if stat.get("n", 1) > 1 else "")


def _paper(values: Mapping[str, tuple[float, ...]], key: str) -> str:
    v = values.get(key)
    return " / ".join(f"{x:.2f}" for x in v) if v else "–"


def _context_line(preset: ExperimentPreset, data: Mapping[str, Any] | None) -> str:
    persona = data.get("persona", preset.persona) if data else preset.persona
    what = ("persona and intent shown before the first page (Customer-R1's conditioning; `--no-persona` gives the "
            "paper's)" if persona else "pages and actions only, no persona or intent (the paper's context)")
    shown = (data or {}).get("rl_prompt_mean_current_shown")
    page = (f" RL prompts show {100 * shown['train']:.0f}% (train) / {100 * shown['test']:.0f}% (test) of their "
            "current page on average." if shown else "")
    return (f"Context: {what}; {preset.max_context_tokens}-token page budget; previous rationales in RL prompts: "
            f"{'yes' if preset.rl_rationales else 'no (the paper)'}.{page}")


def format_tables(summary: Mapping[str, Mapping[str, Any]], preset: ExperimentPreset, seeds: Sequence[int],
                  data: Mapping[str, Any] | None = None,
                  comparisons: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Markdown in the paper's layouts: Tables 2-5, the temperature sweep and session realism. Rows not run show –.

    With `comparisons` (`training.comparisons.compare_rows`), Tables 2, 4 and 5 carry each row's paired difference in
    exact accuracy against its reference (Shop-R1 vs SFT; an ablation vs Shop-R1) with the 95% bootstrap interval."""
    rows = rows_for(preset)
    out = [f"# Shop-R1 paper tables, preset `{preset.name}`", "",
           f"Model preset `{preset.model_preset}`, seeds {', '.join(map(str, seeds))} (mean ± std over seeds), "
           f"SFT {preset.sft_steps} steps, RL {preset.rl_steps} steps (G={preset.num_generations}), eval τ = "
           f"{preset.eval_temperature:g} on ≤{preset.eval_limit or 'all'} held-out test rows. Numbers in %. Paper: "
           "Qwen2.5-3B-Instruct (exact / type acc / type F1). Δ: the paired difference in exact accuracy against the "
           "row's reference (Shop-R1 vs SFT, an ablation vs Shop-R1), points, with its 95% bootstrap interval over "
           "the test steps.", "", _context_line(preset, data), ""]
    fewer = [f"{summary[r.key]['label']} ({', '.join(map(str, summary[r.key]['seeds']))})" for r in rows
             if r.key in summary and len(summary[r.key]["seeds"]) < len(seeds)]
    if fewer:
        out += ["Rows with fewer seeds (seeds in brackets): " + "; ".join(fewer) + ".", ""]
    if data:
        out += [f"Data: {data['train']['sessions']} train sessions ({data['train']['rl_rows']} RL rows), "
                f"{data['test']['sessions']} held-out test sessions ({data['test']['rl_rows']} RL rows).", ""]

    def metric_rows(keys: Sequence[str], paper: Mapping[str, tuple[float, ...]], cross: bool = False) -> list[str]:
        lines = []
        for key in keys:
            spec = next((r for r in rows if r.key == key), None)
            s = summary.get(key, {})
            label = spec.label if spec else key
            extra = f" {_pm(s.get('cross_layout', {}).get('exact_accuracy'))} |" if cross else ""
            lines.append(f"| {label} | {_pm(s.get('exact_accuracy'))} | {_pm(s.get('type_accuracy'))} | "
                         f"{_pm(s.get('type_macro_f1'))} | {_paper(paper, key)} | {delta_cell(comparisons, key)} |"
                         + extra)
        return lines

    header = ["| Setting | Exact Acc. | Action Type Acc. | Action Type F1 | Paper | Δ exact [95% CI] |",
              "|---|---|---|---|---|---|"]
    out += ["## Table 2: Next-action prediction (main results)", "",
            "Each model is scored in the prompt layout it was trained with (`shop_r1_prompt.json` beside it). The last "
            "column scores the models whose layout differs (SFT: previous rationales shown) on the shared RL layout "
            "instead; it is not the row's score.", "",
            header[0] + " Exact, RL layout |", header[1] + "---|",
            *metric_rows(list(PAPER_MAIN), PAPER_MAIN, cross=True), ""]
    out += ["## Table 3: Per-action-type breakdown", "",
            "| Setting | " + " | ".join(f"{t} exact | {t} type" for t in ACTION_TYPES) + " |",
            "|---|" + "---|---|" * len(ACTION_TYPES)]
    for key in PAPER_MAIN:
        s = summary.get(key, {})
        cells = []
        for t in ACTION_TYPES:
            pt = s.get("per_type", {}).get(t, {})
            cells += [_pm(pt.get("exact_accuracy")), _pm(pt.get("type_accuracy"))]
        label = next(r.label for r in rows if r.key == key)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "## Table 4: Ablations", "", *header, *metric_rows(["shop_r1"], PAPER_MAIN),
            *metric_rows([r.key for r in rows if r.table == "ablation"], PAPER_ABLATION), ""]
    out += ["## Table 5: Context (whole session vs latest step)", "",
            "| Context | Exact Acc. | Action Type Acc. | Action Type F1 | Paper exact | Δ exact [95% CI] |",
            "|---|---|---|---|---|---|"]
    for key, label in (("shop_r1", "whole session"), ("context_latest", "latest step only")):
        s = summary.get(key, {})
        out.append(f"| {label} | {_pm(s.get('exact_accuracy'))} | {_pm(s.get('type_accuracy'))} | "
                   f"{_pm(s.get('type_macro_f1'))} | {PAPER_CONTEXT[key]:.2f} | {delta_cell(comparisons, key)} |")
    out += ["", "## Temperature sweep (Shop-R1 model)", "",
            "| τ | Exact Acc. | Action Type Acc. | Action Type F1 |", "|---|---|---|---|"]
    for t in preset.temperatures:
        key = "shop_r1" if math.isclose(t, preset.eval_temperature) else _temperature_key(t)
        s = summary.get(key, {})
        out.append(f"| {t:g} | {_pm(s.get('exact_accuracy'))} | {_pm(s.get('type_accuracy'))} | "
                   f"{_pm(s.get('type_macro_f1'))} |")
    out += ["", "Paper: 0.6-0.8 best; exact accuracy peaks at 28.63 at τ = 0.7.", ""]
    out += ["## Online RL (beyond the paper)", "", *header[:1], header[1],
            *metric_rows(["shop_r1", "shop_r1_online"], PAPER_MAIN), ""]
    realism_keys = [r.key for r in rows if r.realism and summary.get(r.key, {}).get("realism")]
    out += ["## Session realism (simulated vs held-out reference sessions)", ""]
    if not realism_keys:
        out += ["Not run (realism_sessions = 0 or no realism row selected).", ""]
    else:
        js_names = sorted({k for key in realism_keys for k in summary[key]["realism"]["js"]})
        rate_names = sorted({k for key in realism_keys for k in summary[key]["realism"]["rates"]})
        out += ["| Setting | " + " | ".join(f"JS {k.replace('_', ' ')}" for k in js_names) + " | " +
                " | ".join(k.replace("_", " ") for k in rate_names) + " |",
                "|---|" + "---|" * (len(js_names) + len(rate_names))]
        ref_rates = summary[realism_keys[0]]["realism"]["rates"]
        out.append("| reference (scripted) | " + " | ".join("0.000" for _ in js_names) + " | " +
                   " | ".join(f"{100 * (ref_rates[k]['reference'] or 0):.1f}" for k in rate_names) + " |")
        for key in realism_keys:
            re_ = summary[key]["realism"]
            out.append(f"| {summary[key]['label']} | " +
                       " | ".join(_pm(re_["js"].get(k), pct=False) for k in js_names) + " | " +
                       " | ".join(_pm(re_["rates"].get(k, {}).get("simulated")) for k in rate_names) + " |")
        out += ["", "JS: Jensen-Shannon distance (base 2; 0 = same distribution). Rates in %.", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------------------------
# Evidence: why a finding does or does not reproduce

CURVE_KEYS = ("reward", "shop_r1/format", "shop_r1/type", "shop_r1/attribute", "shop_r1/value", "shop_r1/format_ok",
              "shop_r1/pred_terminate", "kl", "completions/mean_length", "frac_reward_zero_std")
"""GRPO log columns shown as first-k vs last-k step means (`log.csv` of each RL model)."""


def training_curves(exp: Path, seeds: Sequence[int], models: Sequence[str], k: int = 5) -> dict[str, dict[str, Any]]:
    """Per RL model: the mean over seeds of each `CURVE_KEYS` column over its first `k` and last `k` logged steps."""
    import csv

    out: dict[str, dict[str, Any]] = {}
    for name in models:
        firsts: dict[str, list[float]] = {}
        lasts: dict[str, list[float]] = {}
        for seed in seeds:
            path = exp / f"seed{seed}" / "models" / name / "log.csv"
            if not path.is_file():
                continue
            with path.open(newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if r.get("reward")]
            for key in CURVE_KEYS:
                values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
                if values:
                    firsts.setdefault(key, []).append(statistics.fmean(values[:k]))
                    lasts.setdefault(key, []).append(statistics.fmean(values[-k:]))
        if firsts:
            out[name] = {key: (statistics.fmean(firsts[key]), statistics.fmean(lasts[key])) for key in firsts}
    return out


def predicted_shares(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per row, summed over seeds: the share of test steps predicted as each type (and unparseable), and gold."""
    out: dict[str, dict[str, float]] = {}
    for key in dict.fromkeys(r["row"] for r in records):
        counts: dict[str, int] = {}
        gold: dict[str, int] = {}
        for r in (r for r in records if r["row"] == key):
            for g, preds in r["metrics"]["confusion"].items():
                gold[g] = gold.get(g, 0) + sum(preds.values())
                for p, n in preds.items():
                    counts[p] = counts.get(p, 0) + n
        total = sum(counts.values()) or 1
        out[key] = {**{p: counts.get(p, 0) / total for p in (*ACTION_TYPES, "invalid")},
                    **{f"gold_{g}": gold.get(g, 0) / total for g in ACTION_TYPES}}
    return out


def format_evidence(records: Sequence[Mapping[str, Any]], exp: Path) -> str:
    """Markdown: reward components over GRPO training (first vs last steps) and predicted action-type shares."""
    seeds = sorted({r["seed"] for r in records})
    rl_models = [m for m, spec in MODELS.items() if spec.stage in ("rl", "online")]
    curves = training_curves(exp, seeds, rl_models)
    lines = ["## Evidence: reward components over GRPO training", "",
             "Mean over seeds of the first 5 → last 5 logged steps. `value` includes DARS when it is on; `kl` is "
             "the policy's KL to the reference model (how far RL moved it).", ""]
    if curves:
        lines += ["| model | " + " | ".join(k.split("/")[-1] for k in CURVE_KEYS) + " |",
                  "|---|" + "---|" * len(CURVE_KEYS)]
        for name, c in curves.items():
            cells = [f"{c[k][0]:.3g} → {c[k][1]:.3g}" if k in c else "–" for k in CURVE_KEYS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    else:
        lines.append("No GRPO logs found.")
    shares = predicted_shares(records)
    lines += ["", "## Evidence: predicted action types on the test split", "",
              "Share of test steps predicted as each type, summed over seeds (gold shares in the last columns): "
              "terminate-spam shows as a terminate share far above the gold one.", "",
              "| row | click | type_and_submit | terminate | unparseable | gold click | gold type_and_submit | "
              "gold terminate |", "|---|---|---|---|---|---|---|---|"]
    for key, sh in shares.items():
        lines.append(f"| {key} | " + " | ".join(f"{100 * sh[c]:.1f}" for c in (*ACTION_TYPES, "invalid")) + " | " +
                     " | ".join(f"{100 * sh['gold_' + g]:.1f}" for g in ACTION_TYPES) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# Driver


def _select(preset: ExperimentPreset, rows: Sequence[str] | None) -> list[RowSpec]:
    specs = rows_for(preset)
    if rows is None and preset.rows is None:
        return specs
    rows = preset.rows if rows is None else rows
    known = {r.key: r for r in specs}
    unknown = [k for k in rows if k not in known]
    if unknown:
        raise ValueError(f"Expect rows among {', '.join(known)}, actually unknown: {', '.join(unknown)}")
    return [r for r in specs if r.key in set(rows)]


def run_experiment(
    preset: ExperimentPreset | str,
    out_dir: str | Path,
    *,
    seeds: Sequence[int] | None = None,
    rows: Sequence[str] | None = None,
    resume: bool = False,
    catalog: str | Path | None = None,
    on_row: Callable[[Mapping[str, Any]], None] | None = None,
    render_only: bool = False,
    persona: bool | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Run the preset's rows (all, or `rows`) for every seed; write `results.json` and `tables.md` to `out_dir`.

    With `resume`, rows whose `seed<k>/rows/<row>.json` exists are not rerun (`"resumed": true` in their record), and
    finished data and models are reused. `catalog` is the embedded store's catalog (default: the cached default
    catalog). `on_row` is called with each record as it finishes. `render_only` trains and evaluates nothing: it
    rewrites `results.json` and `tables.md` from the row records on disk (rows run with different `--seeds` or
    `--rows` in several calls), skipping the missing ones. `persona` and `device` replace the preset's. Returns the
    results dict.
    """
    from agent.wiring import embedded_store

    spec = PRESETS[preset] if isinstance(preset, str) else preset
    if seeds is not None:
        spec = dataclasses.replace(spec, seeds=tuple(seeds))
    if persona is not None:
        spec = dataclasses.replace(spec, persona=persona)
    if device is not None:
        spec = dataclasses.replace(spec, device=device)
    selected = _select(spec, rows)
    exp = Path(out_dir)
    if render_only:
        found = [exp / f"seed{seed}" / "rows" / f"{row.key}.json" for seed in spec.seeds for row in selected]
        records = [{**json.loads(path.read_text()), "resumed": True} for path in found if path.is_file()]
        if not records:
            raise ValueError(f"Expect row records under {exp}/seed<k>/rows/, actually: none for these seeds and rows")
        return _write_outputs(exp, spec, _done(exp / "data") or {}, records, time.perf_counter())
    exp.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    with embedded_store("a", catalog) as (url, catalog_path):
        data = _prepare_data(exp, url, Path(catalog_path), spec, resume=resume)
        ctx = _Context(exp, spec, url, Path(catalog_path), resume)
        for seed in spec.seeds:
            for row in selected:
                path = ctx.seed_dir(seed) / "rows" / f"{row.key}.json"
                if resume and path.is_file():
                    record = {**json.loads(path.read_text()), "resumed": True}
                    log.info("seed %d: %s done already (resume)", seed, row.key)
                else:
                    log.info("seed %d: row %s", seed, row.key)
                    record = _run_row(ctx, row, seed)
                    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
                    record = {**record, "resumed": False}
                records.append(record)
                if on_row is not None:
                    on_row(record)
                _write_outputs(exp, spec, data, records, started)
    return _write_outputs(exp, spec, data, records, started)


def train_model(preset: ExperimentPreset, out_dir: str | Path, name: str, *, seed: int | None = None,
                resume: bool = False, catalog: str | Path | None = None) -> dict[str, Any]:
    """Train model `name` of `MODELS` (and its ancestors) on the preset's data, evaluating nothing; returns
    `{"data": ..., "model": {"dir", "steps", "seconds", ...}}`. With `resume`, finished data and models are reused."""
    from agent.wiring import embedded_store

    exp = Path(out_dir)
    exp.mkdir(parents=True, exist_ok=True)
    with embedded_store("a", catalog) as (url, catalog_path):
        data = _prepare_data(exp, url, Path(catalog_path), preset, resume=resume)
        ctx = _Context(exp, preset, url, Path(catalog_path), resume)
        model = _train(ctx, name, preset.seeds[0] if seed is None else seed)
    return {"data": data, "model": model}


PAPER_EXACT: dict[str, float] = {**{k: v[0] for k, v in PAPER_MAIN.items()},
                                  **{k: v[0] for k, v in PAPER_ABLATION.items()}, **PAPER_CONTEXT}
"""The paper's exact accuracy of each row (points), for the paired comparisons' paper differences."""


def _write_outputs(exp: Path, preset: ExperimentPreset, data: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                   started: float) -> dict[str, Any]:
    summary = summarize_rows(records)
    comparisons = compare_rows(exp, records, paper=PAPER_EXACT)
    results = {"preset": asdict(preset), "seeds": list(preset.seeds), "data": dict(data), "rows": list(records),
               "summary": summary, "comparisons": comparisons,
               "wall_seconds": round(time.perf_counter() - started, 2)}
    (exp / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    labels = {r.key: r.label for r in rows_for(preset)}
    seeds = sorted({int(r["seed"]) for r in records})
    tables = (format_tables(summary, preset, preset.seeds, data, comparisons) + "\n"
              + format_differences(comparisons, labels) + "\n" + format_evidence(records, exp) + "\n"
              + format_curves(exp, seeds, svg_dir=exp / "curves"))
    (exp / "tables.md").write_text(tables, encoding="utf-8")
    return results


# --------------------------------------------------------------------------------------------------------------------
# CLI


experiment_app = typer.Typer(help="Reproduce the paper's experiments at a small scale.", no_args_is_help=True)


@experiment_app.command("paper-tables")
def paper_tables(
    out: Annotated[Path, typer.Option(help="Experiment directory (results.json, tables.md, models, data).")],
    preset: Annotated[PresetName, typer.Option(
        help="smoke (minutes), tiny-cpu (every row, 3 seeds, ~2 h on 2 cores), tiny-cpu-long-rl, smollm2-cpu (SmolLM2 "
             "+ LoRA, the main rows, ~2 h on 2 cores), smollm2-gpu (every row, 3 seeds, full fine-tuning; with "
             "--device cuda) or smollm2-gpu-smoke (its shape at smoke sizes).")] = "smoke",
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds (default: the preset's).")] = None,
    rows: Annotated[str | None, typer.Option(help="Comma-separated row keys (default: all).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip rows and models already done.")] = False,
    catalog: Annotated[Path | None, typer.Option(help="Catalog of the embedded store.")] = None,
    render_only: Annotated[bool, typer.Option(
        "--render-only", help="Only rewrite results.json and tables.md from the rows already on disk.")] = False,
    persona: Annotated[bool | None, typer.Option(
        "--persona/--no-persona", help="Prompts with the persona and intent block (Customer-R1's conditioning) or "
                                       "without (the paper's context: pages and actions only). Default: the "
                                       "preset's (with).")] = None,
    device: Annotated[Literal["cpu", "cuda"] | None, typer.Option(
        help="Where every stage trains and evaluates. Default: the preset's (smollm2-gpu: cuda).")] = None,
) -> None:
    """Train and evaluate every row of Tables 2-5, the temperature sweep and session realism."""

    def echo(r: Mapping[str, Any]) -> None:
        m = r["metrics"]
        took = "resumed" if r["resumed"] else f"{r['wall_seconds']}s"
        typer.echo(f"seed {r['seed']} {r['row']}: exact {100 * m['exact_accuracy']:.2f}% type "
                   f"{100 * m['type_accuracy']:.2f}% F1 {100 * m['type_macro_f1']:.2f}% ({took})")

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
        row_list = [r.strip() for r in rows.split(",") if r.strip()] if rows else None
        run_experiment(preset, out, seeds=seed_list, rows=row_list, resume=resume, catalog=catalog, on_row=echo,
                       render_only=render_only, persona=persona, device=device)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"wrote {out / 'results.json'} and {out / 'tables.md'}")
