"""`training.comparisons`: per-step scores from predictions files, paired bootstrap differences between rows, the
verdict rule and the markdown, on hand-made predictions whose differences are known."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import training.comparisons
from training.comparisons import (
    COMPARISONS,
    FINDINGS,
    Finding,
    StepScore,
    _metric,
    compare_rows,
    format_differences,
    load_step_scores,
    paired_differences,
    verdict,
)
from training.metrics import evaluate_predictions

CLICK = {"type": "click", "name": "a.b"}
TERM = {"type": "terminate"}


def write_predictions(path: Path, golds: list[dict], preds: list[dict | None], exact: list[bool]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i, (g, p, e) in enumerate(zip(golds, preds, exact, strict=True)):
            f.write(json.dumps({"index": i, "session_id": f"run:s{i // 5}", "step": i % 5 + 1, "gold_action": g,
                                "completion": "", "predicted_action": p, "exact": e}) + "\n")
    return path


def test_step_scores_reproduce_the_evaluations_metrics(tmp_path):
    golds = [CLICK, CLICK, TERM, TERM, CLICK]
    preds = [CLICK, TERM, TERM, None, {"type": "click", "name": "x"}]
    path = write_predictions(tmp_path / "p.jsonl", golds, preds, [True, False, True, False, False])
    scores = load_step_scores(path)
    assert scores[("run:s0", 4)] == StepScore("terminate", "invalid", False)
    completions = [json.dumps({"rationale": "r", "action": p}) if p else "junk" for p in preds]
    metrics = evaluate_predictions(completions, golds)
    ordered = [scores[("run:s0", k)] for k in range(1, 6)]
    same = paired_differences([dict(scores)], [dict(scores)], resamples=50)
    assert all((i.estimate, i.low, i.high) == (0.0, 0.0, 0.0) for i in same.values())
    for name in ("exact_accuracy", "type_accuracy", "type_macro_f1"):
        assert _metric(ordered, name) == pytest.approx(getattr(metrics, name)), name
    (tmp_path / "bad.jsonl").write_text('{"session_id": "s", "step": 1}\n')
    with pytest.raises(ValueError, match=r"Expect a predictions line .*/bad.jsonl:1, actually: KeyError"):
        load_step_scores(tmp_path / "bad.jsonl")


def _row(exp: Path, row: str, seed: int, exact: list[bool]) -> dict:
    golds = [CLICK] * len(exact)
    preds = [CLICK if e else TERM for e in exact]
    write_predictions(exp / f"seed{seed}" / "rows" / f"{row}.predictions.jsonl", golds, preds, exact)
    return {"row": row, "seed": seed}


def test_compare_rows_pairs_steps_averages_seeds_and_gives_verdicts(tmp_path):
    n = 200
    # SFT right on the first 40% of steps, Shop-R1 on the first 60% (seed 0) and 70% (seed 1): +25 points on
    # average, every step paired, so the interval is tight around it and excludes 0.
    records = [_row(tmp_path, "sft", s, [i < 0.4 * n for i in range(n)]) for s in (0, 1)]
    records += [_row(tmp_path, "shop_r1", 0, [i < 0.6 * n for i in range(n)]),
                _row(tmp_path, "shop_r1", 1, [i < 0.7 * n for i in range(n)])]
    # no DARS: identical to Shop-R1 but one seed only; the paper's finding is a type-F1 drop of 19.58 points
    records += [_row(tmp_path, "no_dars", 0, [i < 0.6 * n for i in range(n)])]
    out = compare_rows(tmp_path, records, resamples=500)
    assert set(out) == {"shop_r1_vs_sft", "no_dars_vs_shop_r1"}  # the others have no rows
    main = out["shop_r1_vs_sft"]
    assert (main["a"], main["b"], main["seeds"], main["steps"]) == ("sft", "shop_r1", [0, 1], n)
    exact = main["exact_accuracy"]
    assert exact["estimate"] == pytest.approx(0.25) and 0.15 < exact["low"] < 0.25 < exact["high"] < 0.35
    assert main["type_accuracy"]["estimate"] == pytest.approx(0.25)
    assert (main["finding"], main["metric"]) == ("shop_r1_vs_sft", "exact_accuracy")
    assert main["paper"] == pytest.approx(10.96) and main["verdict"] == "reproduced"
    dars = out["no_dars_vs_shop_r1"]
    assert dars["seeds"] == [0] and dars["exact_accuracy"]["low"] == dars["exact_accuracy"]["high"] == 0.0
    # judged on type F1, which does not move here: the paper's terminate-spam drop is not reproduced
    assert (dars["metric"], dars["paper"]) == ("type_macro_f1", pytest.approx(-19.58))
    assert dars["verdict"] == "not reproduced"
    again = compare_rows(tmp_path, records, resamples=500)
    assert again == out  # seeded
    md = format_differences(out, {"sft": "SFT", "shop_r1": "Shop-R1", "no_dars": "w/o DARS"})
    assert "| Shop-R1 vs SFT | +25.00 [+" in md and "| exact | +10.96 | reproduced | 200 × 2 |" in md
    assert "| w/o DARS vs Shop-R1 | +0.00 [+0.00, +0.00] |" in md
    assert "| type F1 | -19.58 | not reproduced | 200 × 1 |" in md


def test_findings_carry_the_papers_differences_and_a_direction_only_finding_is_judged_by_sign(tmp_path):
    by_key = {f.key: f for f in FINDINGS}
    assert by_key["shop_r1_vs_sft"].paper == pytest.approx(27.72 - 16.76)
    assert by_key["sft_vs_zero_shot"].paper == pytest.approx(16.76 - 0.32)
    assert by_key["context_latest"].paper == pytest.approx(14.74 - 27.72)
    assert by_key["binary_action"].paper == pytest.approx(12.11 - 31.28)
    assert {(f.a, f.b) for f in FINDINGS} <= set(COMPARISONS)  # every finding is bootstrapped
    n = 100
    # τ = 1.2 right on 30% of steps, Shop-R1 (τ 0.6) on 50%: the paper's direction (hotter is worse), no number
    records = [_row(tmp_path, "shop_r1", 0, [i < 0.5 * n for i in range(n)]),
               _row(tmp_path, "temperature_1.2", 0, [i < 0.3 * n for i in range(n)])]
    hot = compare_rows(tmp_path, records, resamples=300)["temperature_1.2_vs_shop_r1"]
    assert (hot["finding"], hot["paper"], hot["verdict"]) == ("temperature", None, "reproduced")
    assert "| direction | reproduced |" in format_differences({"t": hot}, {})
    with pytest.raises(ValueError, match="Expect a paper difference or a direction of \\+1 / -1 for x, actually: 0"):
        Finding("x", "claim", "a", "b")
    with pytest.raises(ValueError, match="Expect a metric among"):
        Finding("x", "claim", "a", "b", "f1", paper=1.0)


def test_verdict_rules():
    assert verdict(10.96, {"estimate": 0.1, "low": 0.02, "high": 0.2}) == "reproduced"
    assert verdict(10.96, {"estimate": 0.1, "low": -0.02, "high": 0.2}) == "direction only"
    assert verdict(10.96, {"estimate": -0.01, "low": -0.05, "high": 0.03}) == "not reproduced"
    assert verdict(-24.85, {"estimate": -0.2, "low": -0.3, "high": -0.1}) == "reproduced"
    assert verdict(-0.79, {"estimate": -0.1, "low": -0.2, "high": -0.05}) == "not reproduced"
    assert verdict(-0.79, {"estimate": None, "low": None, "high": None}) == "no data"


def test_bad_pairs_are_named():
    with pytest.raises(ValueError, match="Expect the same seeds \\(at least one\\) on both sides, actually: 1 and 2"):
        paired_differences([{}], [{}, {}])


def test_doctests():
    assert doctest.testmod(training.comparisons).failed == 0
