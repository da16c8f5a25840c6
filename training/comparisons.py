"""Paired differences between two rows of the paper's tables, with a bootstrap interval over the test steps.

Mean ± std over seeds says how much training noise moves a row; it does not say whether two rows differ on *this* test
set. Two rows are scored on the same held-out test steps (the same `eval_limit` subset, seed by seed), so their
difference is paired: `paired_differences` resamples the test steps with replacement
(`agent.analysis.stats.paired_bootstrap`, 2,000 resamples, seeded), recomputes each metric's difference B - A on the
resample for every seed, averages over the seeds, and reports the 2.5% and 97.5% quantiles. The interval is the
test-sampling uncertainty of the seed-averaged difference; the seed spread is the ± std beside each row.

The comparisons (`COMPARISONS`): one per finding of the paper (`FINDINGS`: Table 2's steps, each ablation and the
latest-page context vs Shop-R1, the temperature sweep), plus the other reading of the binary action row and online
RL. The per-step scores come from the evaluation's predictions file
(`EXP_DIR/seed<k>/rows/<row>.predictions.jsonl`, `training.evaluate`): gold type, predicted type (`invalid` when the
output is not a step) and exact match, keyed by (session, step).

`verdict` states per finding whether it reproduced, on the finding's metric, with the rule written there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.analysis.stats import Interval, paired_bootstrap
from training.metrics import INVALID, type_macro_f1

from .experiment_rows import PAPER_ABLATION, PAPER_CONTEXT, PAPER_MAIN

__all__ = [
    "COMPARISONS",
    "DIFF_METRICS",
    "FINDINGS",
    "Finding",
    "StepScore",
    "compare_rows",
    "delta_cell",
    "format_differences",
    "format_interval",
    "load_step_scores",
    "paired_differences",
    "verdict",
]

DIFF_METRICS: tuple[str, ...] = ("exact_accuracy", "type_accuracy", "type_macro_f1")

@dataclass(frozen=True)
class Finding:
    """One finding of the paper that two rows test: `metric` of row `b` minus row `a`, against the paper's difference.

    `paper` is the paper's B - A in points (from its tables); None where the paper states a direction only
    (`direction`: +1 or -1)."""

    key: str
    claim: str
    a: str
    b: str
    metric: str = "exact_accuracy"
    paper: float | None = None
    direction: int = 0

    def __post_init__(self) -> None:
        if self.metric not in DIFF_METRICS:
            raise ValueError(f"Expect a metric among {', '.join(DIFF_METRICS)}, actually: {self.metric!r}")
        if self.paper is None and self.direction not in (-1, 1):
            raise ValueError(f"Expect a paper difference or a direction of +1 / -1 for {self.key}, actually: "
                             f"{self.direction}")


def _paper_delta(a: str, b: str, column: int = 0) -> float:
    table = {**PAPER_MAIN, **PAPER_ABLATION}
    return round(table[b][column] - table[a][column], 2)


FINDINGS: tuple[Finding, ...] = (
    Finding("sft_vs_zero_shot", "SFT beats zero-shot", "zero_shot", "sft", paper=_paper_delta("zero_shot", "sft")),
    Finding("rl_binary_vs_zero_shot", "RL with the binary reward, from the base model, gains almost nothing",
            "zero_shot", "rl_binary", paper=_paper_delta("zero_shot", "rl_binary")),
    Finding("sft_rl_binary_vs_sft", "binary-reward RL after SFT adds nothing to SFT", "sft", "sft_rl_binary",
            paper=_paper_delta("sft", "sft_rl_binary")),
    Finding("shop_r1_vs_sft", "Shop-R1 beats SFT (+65% relative exact)", "sft", "shop_r1",
            paper=_paper_delta("sft", "shop_r1")),
    Finding("no_sft", "without the SFT cold start, far worse", "shop_r1", "no_sft",
            paper=_paper_delta("shop_r1", "no_sft")),
    Finding("no_format", "without the format reward, training collapses", "shop_r1", "no_format",
            paper=_paper_delta("shop_r1", "no_format")),
    Finding("no_self_certainty", "without self-certainty, about the same", "shop_r1", "no_self_certainty",
            paper=_paper_delta("shop_r1", "no_self_certainty")),
    Finding("no_dars", "without DARS, type F1 falls (terminate spam)", "shop_r1", "no_dars", "type_macro_f1",
            paper=_paper_delta("shop_r1", "no_dars", 2)),
    Finding("binary_action", "with a binary action reward, type F1 falls (terminate spam)", "shop_r1",
            "binary_action", "type_macro_f1", paper=_paper_delta("shop_r1", "binary_action", 2)),
    Finding("context_latest", "whole-session context beats the latest step only", "shop_r1", "context_latest",
            paper=round(PAPER_CONTEXT["context_latest"] - PAPER_CONTEXT["shop_r1"], 2)),
    Finding("temperature", "τ 0.6-0.8 beats a hot τ = 1.2", "shop_r1", "temperature_1.2", direction=-1),
)
"""The paper's findings that a paired difference can test (Tables 2, 4, 5 and the temperature sweep). No DARS and
the binary action reward are judged on type F1: the paper's exact accuracy barely moves there (27.83 and 27.41 vs
27.72), the terminate spam shows in F1 (11.70 and 12.11 vs 31.28). The temperature row compares Shop-R1 at its
evaluation τ (0.6) with τ = 1.2: the paper states the direction (0.6-0.8 best), not the 1.2 number."""

COMPARISONS: tuple[tuple[str, str], ...] = (
    *((f.a, f.b) for f in FINDINGS),
    ("shop_r1", "binary_action_no_format"),
    ("shop_r1", "shop_r1_online"),
)
"""(A, B) row pairs whose difference B - A is bootstrapped: every finding's, the other reading of the binary action
row, and online RL (beyond the paper)."""

EQUAL_WITHIN = 1.0
"""Paper differences smaller than this many points (exact accuracy) are read as "no difference" (`verdict`)."""


@dataclass(frozen=True)
class StepScore:
    """One test step of one row: the gold type, the predicted type (`invalid` for a non-step) and exact match."""

    gold: str
    predicted: str
    exact: bool


def load_step_scores(path: str | Path) -> dict[tuple[str, int], StepScore]:
    """The per-step scores of a predictions file written by `training.evaluate.evaluate_model`, by (session, step)."""
    out: dict[tuple[str, int], StepScore] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                predicted = row["predicted_action"]
                out[(str(row["session_id"]), int(row["step"]))] = StepScore(
                    gold=row["gold_action"]["type"], predicted=predicted["type"] if predicted else INVALID,
                    exact=bool(row["exact"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"Expect a predictions line with session_id, step, gold_action, predicted_action "
                                 f"and exact in {path}:{n}, actually: {exc!r}") from None
    return out


def _metric(scores: Sequence[StepScore], name: str) -> float:
    if name == "exact_accuracy":
        return sum(s.exact for s in scores) / len(scores)
    if name == "type_accuracy":
        return sum(s.gold == s.predicted for s in scores) / len(scores)
    if name == "type_macro_f1":
        return type_macro_f1([s.gold for s in scores], [s.predicted for s in scores])
    raise ValueError(f"Expect a metric among {', '.join(DIFF_METRICS)}, actually: {name!r}")


def paired_differences(
    a: Sequence[Mapping[tuple[str, int], StepScore]],
    b: Sequence[Mapping[tuple[str, int], StepScore]],
    *,
    metrics: Sequence[str] = DIFF_METRICS,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Interval]:
    """metric(B) - metric(A) averaged over seeds, with its paired bootstrap interval over the test steps.

    `a[k]` and `b[k]` are the step scores of the two rows for the k-th seed. Only steps that every seed of both rows
    scored are used (normally all: every row is scored on the same subset). Every metric is resampled with the same
    indices (`paired_bootstrap` with one `seed`).
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"Expect the same seeds (at least one) on both sides, actually: {len(a)} and {len(b)}")
    keys = sorted(set.intersection(*(set(s) for s in (*a, *b))))
    pairs = [([sa[k] for k in keys], [sb[k] for k in keys]) for sa, sb in zip(a, b, strict=True)]

    def difference(name: str) -> Callable[[Sequence[int]], float]:
        def statistic(indices: Sequence[int]) -> float:
            diffs = [_metric([sb[i] for i in indices], name) - _metric([sa[i] for i in indices], name)
                     for sa, sb in pairs]
            return math.fsum(diffs) / len(diffs)
        return statistic

    return {name: paired_bootstrap(len(keys), difference(name), resamples=resamples, seed=seed) for name in metrics}


def compare_rows(exp: str | Path, records: Sequence[Mapping[str, Any]], *,
                 comparisons: Sequence[tuple[str, str]] = COMPARISONS, findings: Sequence[Finding] = FINDINGS,
                 resamples: int = 2000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Every comparison whose two rows have records and predictions files for at least one common seed, as JSON:
    `{"<b>_vs_<a>": {"a", "b", "seeds", "steps", "<metric>": Interval dict, "finding", "metric", "paper",
    "verdict"}}`.

    A comparison that tests one of `findings` carries its key, the metric it is judged on, the paper's difference
    (points, None for a direction-only finding) and the verdict (`verdict`); the others carry None there.
    """
    exp = Path(exp)
    by_pair = {(f.a, f.b): f for f in findings}
    seeds_of: dict[str, set[int]] = {}
    for r in records:
        seeds_of.setdefault(r["row"], set()).add(int(r["seed"]))
    out: dict[str, dict[str, Any]] = {}
    for row_a, row_b in dict.fromkeys([*comparisons, *by_pair]):
        seeds = sorted(seeds_of.get(row_a, set()) & seeds_of.get(row_b, set()))
        paths = {(row, s): exp / f"seed{s}" / "rows" / f"{row}.predictions.jsonl" for row in (row_a, row_b)
                 for s in seeds}
        seeds = [s for s in seeds if paths[(row_a, s)].is_file() and paths[(row_b, s)].is_file()]
        if not seeds:
            continue
        diffs = paired_differences([load_step_scores(paths[(row_a, s)]) for s in seeds],
                                   [load_step_scores(paths[(row_b, s)]) for s in seeds],
                                   resamples=resamples, seed=seed)
        finding = by_pair.get((row_a, row_b))
        judged = None
        if finding is not None:
            judged = verdict(finding.paper if finding.paper is not None else finding.direction * math.inf,
                             diffs[finding.metric])
        out[f"{row_b}_vs_{row_a}"] = {
            "a": row_a, "b": row_b, "seeds": seeds, "steps": diffs["exact_accuracy"].n,
            **{name: interval.model_dump() for name, interval in diffs.items()},
            "finding": finding.key if finding else None, "metric": finding.metric if finding else None,
            "paper": finding.paper if finding else None, "verdict": judged,
        }
    return out


def verdict(paper_delta: float, interval: Interval | Mapping[str, Any]) -> str:
    """Whether our difference (`interval`, fractions) reproduces the paper's (`paper_delta`, points; ±inf for a
    finding the paper states as a direction only).

    - The paper's difference is at least `EQUAL_WITHIN` points: **reproduced** when the whole 95% interval lies on the
      paper's side of 0; **direction only** when the estimate does but the interval reaches 0; else **not
      reproduced**.
    - Smaller (the paper finds no difference: no self-certainty, binary RL after SFT): **reproduced** when the
      interval contains 0; else **not reproduced**.

    >>> verdict(10.96, Interval(estimate=0.05, low=0.01, high=0.09)), verdict(10.96, {"estimate": 0.05, "low": -0.01,
    ...     "high": 0.1}), verdict(-23.09, Interval(estimate=0.02, low=-0.01, high=0.05))
    ('reproduced', 'direction only', 'not reproduced')
    >>> verdict(0.11, Interval(estimate=0.03, low=-0.02, high=0.08))
    'reproduced'
    """
    data = interval.model_dump() if isinstance(interval, Interval) else dict(interval)
    estimate, low, high = data.get("estimate"), data.get("low"), data.get("high")
    if estimate is None or low is None or high is None:
        return "no data"
    if abs(paper_delta) < EQUAL_WITHIN:
        return "reproduced" if low <= 0.0 <= high else "not reproduced"
    sign = 1.0 if paper_delta > 0 else -1.0
    if sign * low > 0 and sign * high > 0:
        return "reproduced"
    return "direction only" if sign * estimate > 0 else "not reproduced"


def format_interval(data: Mapping[str, Any] | None, digits: int = 2) -> str:
    """An interval of fractions as points: "+25.00 [+15.50, +34.00]", or "–" without one."""
    if not data or data.get("estimate") is None:
        return "–"
    e, lo, hi = (100 * data[k] for k in ("estimate", "low", "high"))
    return f"{e:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def format_differences(comparisons: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> str:
    """Markdown: one line per comparison, B - A in points with the 95% interval, the paper's difference, the verdict."""
    lines = ["## Paired differences (bootstrap over test steps)", "",
             "B − A in points, averaged over the seeds both rows ran, with the 95% percentile interval of 2,000 "
             "paired resamples of the test steps (`training.comparisons`). Each of the paper's findings is judged on "
             "its metric (type F1 for no DARS and the binary action reward, else exact accuracy): *reproduced* when "
             "the interval lies on the paper's side of 0 (or contains 0 where the paper's difference is under "
             f"{EQUAL_WITHIN:g} point), *direction only* when only the estimate does.", ""]
    if not comparisons:
        return "\n".join([*lines, "No two compared rows have predictions for a common seed.", ""])
    lines += ["| B vs A | Δ exact [95% CI] | Δ type acc. [95% CI] | Δ type F1 [95% CI] | judged on | paper Δ | "
              "verdict | steps × seeds |", "|---|---|---|---|---|---|---|---|"]
    for c in comparisons.values():
        paper = "–" if c.get("paper") is None else f"{c['paper']:+.2f}"
        if c.get("finding") and c.get("paper") is None:
            paper = "direction"
        metric = {"exact_accuracy": "exact", "type_accuracy": "type acc.", "type_macro_f1": "type F1"}.get(
            c.get("metric") or "", "–")
        lines.append(f"| {labels.get(c['b'], c['b'])} vs {labels.get(c['a'], c['a'])} | "
                     f"{format_interval(c.get('exact_accuracy'))} | {format_interval(c.get('type_accuracy'))} | "
                     f"{format_interval(c.get('type_macro_f1'))} | {metric} | {paper} | {c.get('verdict') or '–'} | "
                     f"{c['steps']} × {len(c['seeds'])} |")
    return "\n".join([*lines, ""])


def delta_cell(comparisons: Mapping[str, Mapping[str, Any]] | None, row: str) -> str:
    """The Δ exact [95% CI] cell of `row` in the tables (its comparison's), or "–"."""
    for c in (comparisons or {}).values():
        if c["b"] == row:
            return format_interval(c.get("exact_accuracy"))
    return "–"
