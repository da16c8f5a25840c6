"""The paper's tables from an experiment's row records: mean ± std over seeds, Tables 2-5 in the paper's layouts, the
temperature sweep, online RL, session realism, and the evidence (reward components over GRPO, predicted types).

Pure functions of the records (and, for the evidence, the GRPO logs under the experiment directory); the runner
(`training.experiments`) writes their output to `EXP_DIR/tables.md`.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envs.actions import ACTION_TYPES

from .comparisons import delta_cell, format_differences
from .curves import format_curves
from .experiment_presets import ExperimentPreset
from .experiment_rows import (
    METRIC_KEYS,
    MODELS,
    PAPER_ABLATION,
    PAPER_CONTEXT,
    PAPER_MAIN,
    rows_for,
    temperature_key,
)

__all__ = [
    "CURVE_KEYS",
    "experiment_markdown",
    "format_evidence",
    "format_stat",
    "format_tables",
    "predicted_shares",
    "summarize_rows",
    "training_curves",
]


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


def format_stat(stat: Mapping[str, Any] | None, pct: bool = True, digits: int = 2) -> str:
    """A `{mean, std, n}` cell: "mean ± std" (in % with `pct`), the mean alone for one seed, "–" for none.

    >>> format_stat({"mean": 0.0512, "std": 0.0192, "n": 3}), format_stat({"mean": 0.05, "n": 1}, digits=1)
    ('5.12 ± 1.92', '5.0')
    """
    if not stat:
        return "–"
    scale = 100.0 if pct else 1.0
    text = f"{scale * stat['mean']:.{digits}f}"
    return text + (f" ± {scale * stat['std']:.{digits}f}" if stat.get("n", 1) > 1 else "")


def _metric_cells(s: Mapping[str, Any]) -> str:
    return " | ".join(format_stat(s.get(m)) for m in METRIC_KEYS)


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
           "row's reference (SFT and RL (binary) vs zero-shot; SFT + RL (binary) and Shop-R1 vs SFT; an ablation, "
           "the latest-step context and online RL vs Shop-R1), points, with its 95% bootstrap interval over the test "
           "steps.", "", _context_line(preset, data), ""]
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
            extra = f" {format_stat(s.get('cross_layout', {}).get('exact_accuracy'))} |" if cross else ""
            lines.append(f"| {label} | {_metric_cells(s)} | {_paper(paper, key)} | {delta_cell(comparisons, key)} |"
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
            cells += [format_stat(pt.get("exact_accuracy")), format_stat(pt.get("type_accuracy"))]
        label = next(r.label for r in rows if r.key == key)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "## Table 4: Ablations", "", *header, *metric_rows(["shop_r1"], PAPER_MAIN),
            *metric_rows([r.key for r in rows if r.table == "ablation"], PAPER_ABLATION), ""]
    out += ["## Table 5: Context (whole session vs latest step)", "",
            "| Context | Exact Acc. | Action Type Acc. | Action Type F1 | Paper exact | Δ exact [95% CI] |",
            "|---|---|---|---|---|---|"]
    for key, label in (("shop_r1", "whole session"), ("context_latest", "latest step only")):
        s = summary.get(key, {})
        out.append(f"| {label} | {_metric_cells(s)} | {PAPER_CONTEXT[key]:.2f} | {delta_cell(comparisons, key)} |")
    out += ["", "## Temperature sweep (Shop-R1 model)", "",
            "| τ | Exact Acc. | Action Type Acc. | Action Type F1 |", "|---|---|---|---|"]
    for tau in preset.temperatures:
        key = "shop_r1" if math.isclose(tau, preset.eval_temperature) else temperature_key(tau)
        s = summary.get(key, {})
        out.append(f"| {tau:g} | {_metric_cells(s)} |")
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
                       " | ".join(format_stat(re_["js"].get(k), pct=False) for k in js_names) + " | " +
                       " | ".join(format_stat(re_["rates"].get(k, {}).get("simulated")) for k in rate_names) + " |")
        out += ["", "JS: Jensen-Shannon distance (base 2; 0 = same distribution). Rates in %.", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------------------------
# Evidence: why a finding does or does not reproduce

CURVE_KEYS = ("reward", "shop_r1/format", "shop_r1/type", "shop_r1/attribute", "shop_r1/value", "shop_r1/format_ok",
              "shop_r1/pred_terminate", "kl", "completions/mean_length", "frac_reward_zero_std")
"""GRPO log columns shown as first-k vs last-k step means (`log.csv` of each RL model)."""


def training_curves(exp: Path, seeds: Sequence[int], models: Sequence[str], k: int = 5) -> dict[str, dict[str, Any]]:
    """Per RL model: the mean over seeds of each `CURVE_KEYS` column over its first `k` and last `k` logged steps."""
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


def experiment_markdown(exp: Path, preset: ExperimentPreset, data: Mapping[str, Any],
                        records: Sequence[Mapping[str, Any]], summary: Mapping[str, Mapping[str, Any]],
                        comparisons: Mapping[str, Mapping[str, Any]]) -> str:
    """`EXP_DIR/tables.md`: the tables, the paired differences, the evidence and the curves (SVGs to `exp/curves`)."""
    labels = {r.key: r.label for r in rows_for(preset)}
    seeds = sorted({int(r["seed"]) for r in records})
    return (format_tables(summary, preset, preset.seeds, data, comparisons) + "\n"
            + format_differences(comparisons, labels) + "\n" + format_evidence(records, exp) + "\n"
            + format_curves(exp, seeds, svg_dir=exp / "curves"))
