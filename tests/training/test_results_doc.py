"""`training.results_doc` and `shop-r1 experiment results-doc`: two experiments' results side by side with the paper's
numbers, the headline's verdicts, hand-written notes kept across regenerations, each experiment's tables copied."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli.root import app
from training.experiment_presets import SMOLLM2_CPU, TINY_CPU, ExperimentPreset
from training.results_doc import NOTES_END, NOTES_START, load_experiment, write_results_doc


def _stat(mean: float, std: float = 0.0, n: int = 3) -> dict:
    return {"mean": mean, "std": std, "n": n}


def _interval(estimate: float, low: float, high: float) -> dict:
    return {"estimate": estimate, "low": low, "high": high, "n": 60}


def _experiment(path: Path, preset: ExperimentPreset, exact: dict[str, float], comparisons: dict) -> Path:
    seeds = list(preset.seeds)
    summary = {row: {"label": row.replace("_", " "), "seeds": seeds, "exact_accuracy": _stat(v, 0.01, len(seeds)),
                     "type_accuracy": _stat(0.5, 0.0, len(seeds)), "type_macro_f1": _stat(0.4, 0.0, len(seeds))}
               for row, v in exact.items()}
    if "sft" in summary:  # SFT trained on its own layout: also scored on the RL layout
        summary["sft"]["cross_layout"] = {m: _stat(0.3, 0.0, len(seeds)) for m in
                                          ("exact_accuracy", "type_accuracy", "type_macro_f1")}
    rows = [{"row": row, "seed": s, "eval_seconds": 1800.0} for row in exact for s in seeds]
    data = {"train": {"sessions": 120, "rl_rows": 949}, "test": {"sessions": 30, "rl_rows": 237},
            "rl_prompt_mean_current_shown": {"train": 0.81, "test": 0.78}}
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({"preset": asdict(preset), "summary": summary, "rows": rows,
                                                   "data": data, "comparisons": comparisons}))
    (path / "tables.md").write_text("# tables\n\n![terminate](curves/terminate.svg)\n")
    (path / "curves").mkdir()
    (path / "curves" / "terminate.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    return path


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    tiny = _experiment(tmp_path / "tiny", TINY_CPU, {"zero_shot": 0.0, "sft": 0.20, "shop_r1": 0.25,
                                                      "no_dars": 0.24, "temperature_1.2": 0.10}, {
        "shop_r1_vs_sft": {"a": "sft", "b": "shop_r1", "seeds": [0, 1, 2], "steps": 60,
                           "exact_accuracy": _interval(0.05, 0.01, 0.09), "type_macro_f1": _interval(0, 0, 0),
                           "finding": "shop_r1_vs_sft", "metric": "exact_accuracy", "paper": 10.96,
                           "verdict": "reproduced"},
        "no_dars_vs_shop_r1": {"a": "shop_r1", "b": "no_dars", "seeds": [0, 1], "steps": 60,
                               "exact_accuracy": _interval(-0.01, -0.05, 0.03),
                               "type_macro_f1": _interval(-0.02, -0.06, 0.02), "finding": "no_dars",
                               "metric": "type_macro_f1", "paper": -19.58, "verdict": "direction only"}})
    smol = _experiment(tmp_path / "smol", SMOLLM2_CPU, {"zero_shot": 0.02, "sft": 0.15, "shop_r1": 0.14}, {
        "shop_r1_vs_sft": {"a": "sft", "b": "shop_r1", "seeds": [0], "steps": 24,
                           "exact_accuracy": _interval(-0.01, -0.08, 0.06), "finding": "shop_r1_vs_sft",
                           "metric": "exact_accuracy", "paper": 10.96, "verdict": "not reproduced"}})
    return tiny, smol


def test_results_doc_sets_experiments_side_by_side_with_the_paper_and_keeps_the_notes(tmp_path, two):
    tiny, smol = two
    out = tmp_path / "docs" / "results.md"
    experiments = [load_experiment("tiny-cpu", tiny), load_experiment("smollm2-cpu", smol)]
    write_results_doc(experiments, out)
    text = out.read_text()
    # headline: the paper's difference, each experiment's interval and verdict; rows an experiment lacks: not run
    line = next(x for x in text.splitlines() if x.startswith("| Shop-R1 beats SFT"))
    assert "| exact | +10.96 | +5.0 [+1.0, +9.0] | **reproduced** | -1.0 [-8.0, +6.0] | **not reproduced** |" in line
    dars = next(x for x in text.splitlines() if x.startswith("| without DARS"))
    assert "| type F1 | -19.58 | -2.0 [-6.0, +2.0] (2 seeds) | **direction only** | – | not run |" in dars
    # Table 2 beside the paper: exact / type / F1 per experiment, "not run" where the experiment has no row
    shop = next(x for x in text.splitlines() if x.startswith("| shop r1 |"))
    assert "| 27.7 / 36.4 / 31.3 | 25.0 ± 1.0 / 50.0 ± 0.0 / 40.0 ± 0.0 | 14.0 / 50.0 / 40.0 |" in shop
    assert "| 1.2 | 10.0 ± 1.0 / 50.0 ± 0.0 / 40.0 ± 0.0 | not run |" in text  # only tiny-cpu swept τ
    # SFT's score on the RL layout: an extra line under Table 2, not the row's score
    assert "| sft, scored on the RL layout (not the row's score) | – | 30.0 ± 0.0 / 30.0 ± 0.0 / 30.0 ± 0.0 | " \
           "30.0 / 30.0 / 30.0 |" in text
    assert "shop-r1 experiment paper-tables --preset tiny-cpu --out EXP_DIR" in text
    assert "RL prompts show 81% (train) / 78% (test)" in text
    assert "Compute: 7.5 h" in text  # 5 rows x 3 seeds x 30 min of evaluation, no model logs here
    # each experiment's own tables and curves beside it, links intact
    assert (out.parent / "results" / "tiny-cpu" / "curves" / "terminate.svg").is_file()
    assert "[smollm2-cpu](results/smollm2-cpu/tables.md)" in text
    # the notes are written by people and survive regeneration
    written = text.replace(text[text.index(NOTES_START):text.index(NOTES_END)], NOTES_START + "\nOur reading.\n")
    out.write_text(written)
    write_results_doc(experiments, out)
    again = out.read_text()
    assert f"{NOTES_START}\nOur reading.\n{NOTES_END}" in again and "Not written yet" in text


def test_results_doc_command_and_its_errors(tmp_path, two):
    tiny, smol = two
    out = tmp_path / "results.md"
    runner = CliRunner()
    done = runner.invoke(app, ["experiment", "results-doc", "--exp", f"tiny-cpu={tiny}", "--exp",
                               f"smollm2-cpu={smol}", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "<!-- written by `shop-r1 experiment results-doc --exp tiny-cpu=EXP_DIR --exp smollm2-cpu=EXP_DIR" in \
        out.read_text()
    for args, message in (
            (["--exp", str(tiny)], "Expect --exp LABEL=EXP_DIR, actually: "),
            (["--exp", f"x={tmp_path / 'none'}"], "Expect results.json in"),
            (["--exp", f"a={tiny}", "--exp", f"a={smol}"], "Expect distinct experiment labels, actually: a, a"),
            (["--exp", f"../up={tiny}"], "Expect labels usable as folder names")):
        bad = runner.invoke(app, ["experiment", "results-doc", *args, "--out", str(out)])
        assert bad.exit_code == 2 and message in bad.output, bad.output
