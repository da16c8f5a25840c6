"""The paper's experiments end to end: `shop-r1 experiment paper-tables --preset PRESET --out EXP_DIR`.

The runner. One call reproduces the *layout* of Shop-R1's Tables 2-5 (arXiv 2507.17842), the temperature sweep and a
session realism table on the local store, with a model small enough for a CPU (the rows: `training.experiment_rows`;
the tables: `training.experiment_tables`; the command: `training.cli.experiment`):

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
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.policy import make_policy
from agent.policy.base_models import BASES, ensure_base
from agent.policy.prompt import load_prompt_config
from agent.runtime.session import RunConfig, run_sessions
from agent.wiring import embedded_store, sample_from_catalog
from training.data import DataConfig, build_datasets, load_meta
from training.evaluate import evaluate_model, session_realism
from training.modeling import init_model

from .comparisons import compare_rows
from .experiment_presets import PAGE_SHOWN_TARGET, PRESETS, ExperimentPreset
from .experiment_rows import METRIC_KEYS, MODELS, ModelSpec, RowSpec, rows_for
from .experiment_tables import experiment_markdown, summarize_rows
from .presets import PRESET_DIR

log = logging.getLogger(__name__)

__all__ = [
    "BASE_CONFIG",
    "RunContext",
    "TEST_ONLY_SPLIT",
    "check_page_shown",
    "layout_test_data",
    "run_experiment",
    "select_rows",
    "stage_overrides",
    "train_model",
]

BASE_CONFIG = PRESET_DIR / "tiny-cpu.yaml"
"""Every stage starts from this YAML (precision, logging, the paper's β, α, DARS, threshold), then the preset's."""

TEST_ONLY_SPLIT = (1e-7, 0.0, 1.0 - 1e-7)
"""Every held-out session in the test split: `build_datasets` wants a train fraction > 0, and a negligible one rounds
to zero sessions (largest remainder) for any realistic session count."""


# --------------------------------------------------------------------------------------------------------------------
# Steps 1-3: sessions, data, model init


def _done(path: Path) -> dict[str, Any] | None:
    marker = path / "done.json"
    return json.loads(marker.read_text()) if marker.is_file() else None


def _mark_done(path: Path, info: Mapping[str, Any]) -> None:
    (path / "done.json").write_text(json.dumps(dict(info), indent=2) + "\n", encoding="utf-8")


def _shoppers(catalog: Path, preset: ExperimentPreset) -> tuple[list[Any], list[Any]]:
    """(train, test) persona/intent pairs; test intents come from products no training intent came from."""
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
        build_datasets([traces / "train"], train_dir,
                       DataConfig(split=(1.0, 0.0, 0.0), max_context_tokens=preset.max_context_tokens))
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
class RunContext:
    """One run's shared state: the experiment directory, the preset, the embedded store, and the models trained so
    far (by seed and name)."""

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


def stage_overrides(ctx: RunContext, spec: ModelSpec, seed: int, parent_dir: Path, out: Path) -> dict[str, Any]:
    """The config overrides that train `spec` for `seed` from `parent_dir` into `out`: the preset's sizes for the
    stage, then the model's own overrides."""
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


def _train(ctx: RunContext, name: str, seed: int) -> dict[str, Any]:
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
        init_model(ctx.preset.model_preset, ctx.train_data, out, seed=seed)
    else:
        from training.configs import load_config

        assert parent is not None
        overrides = stage_overrides(ctx, spec, seed, Path(parent["dir"]), out)
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


def _run_row(ctx: RunContext, row: RowSpec, seed: int) -> dict[str, Any]:
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
# Driver


def select_rows(preset: ExperimentPreset, rows: Sequence[str] | None) -> list[RowSpec]:
    """The rows a run runs: `rows` when given, else the preset's (`ExperimentPreset.rows`), else every row; a
    `ValueError` names unknown keys."""
    specs = rows_for(preset)
    wanted = preset.rows if rows is None else rows
    if wanted is None:
        return specs
    known = {r.key: r for r in specs}
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise ValueError(f"Expect rows among {', '.join(known)}, actually unknown: {', '.join(unknown)}")
    return [r for r in specs if r.key in set(wanted)]


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
    spec = PRESETS[preset] if isinstance(preset, str) else preset
    if seeds is not None:
        spec = dataclasses.replace(spec, seeds=tuple(seeds))
    if persona is not None:
        spec = dataclasses.replace(spec, persona=persona)
    if device is not None:
        spec = dataclasses.replace(spec, device=device)
    selected = select_rows(spec, rows)
    exp = Path(out_dir)
    if render_only:
        found = [exp / f"seed{seed}" / "rows" / f"{row.key}.json" for seed in spec.seeds for row in selected]
        saved = [{**json.loads(path.read_text()), "resumed": True} for path in found if path.is_file()]
        if not saved:
            raise ValueError(f"Expect row records under {exp}/seed<k>/rows/, actually: none for these seeds and rows")
        return _write_outputs(exp, spec, _done(exp / "data") or {}, saved, time.perf_counter())
    exp.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    with embedded_store("a", catalog) as (url, catalog_path):
        data = _prepare_data(exp, url, Path(catalog_path), spec, resume=resume)
        ctx = RunContext(exp, spec, url, Path(catalog_path), resume)
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
    exp = Path(out_dir)
    exp.mkdir(parents=True, exist_ok=True)
    with embedded_store("a", catalog) as (url, catalog_path):
        data = _prepare_data(exp, url, Path(catalog_path), preset, resume=resume)
        ctx = RunContext(exp, preset, url, Path(catalog_path), resume)
        model = _train(ctx, name, preset.seeds[0] if seed is None else seed)
    return {"data": data, "model": model}




def _write_outputs(exp: Path, preset: ExperimentPreset, data: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                   started: float) -> dict[str, Any]:
    summary = summarize_rows(records)
    comparisons = compare_rows(exp, records)
    results = {"preset": asdict(preset), "seeds": list(preset.seeds), "data": dict(data), "rows": list(records),
               "summary": summary, "comparisons": comparisons,
               "wall_seconds": round(time.perf_counter() - started, 2)}
    (exp / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (exp / "tables.md").write_text(experiment_markdown(exp, preset, data, records, summary, comparisons),
                                   encoding="utf-8")
    return results
