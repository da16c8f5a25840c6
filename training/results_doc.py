"""`docs/results.md` from experiment directories: the paper's findings and tables with every experiment side by side.

`shop-r1 experiment results-doc --exp tiny-cpu=EXP_A --exp smollm2-cpu=EXP_B --out docs/results.md` reads each
experiment's `results.json` (written by `shop-r1 experiment paper-tables`) and writes:

- `docs/results.md`: how each experiment was run (its command, model, seeds, data, page shown, compute), the headline
  (one line per finding of the paper, `training.comparisons.FINDINGS`: the paper's difference and each experiment's
  paired difference with its 95% interval and verdict), Tables 2, 4 and 5 and the temperature sweep with the paper's
  numbers and every experiment in its own columns, and links to the full tables;
- `docs/results/<label>/`: each experiment's own `tables.md` (Table 3, session realism, the paired differences, the
  evidence) with its curve SVGs, and its `results.json`.

The reading of the numbers is written by people: the text between `<!-- notes -->` and `<!-- /notes -->` in the
existing output file is kept when the file is regenerated (a placeholder when there is none).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .comparisons import FINDINGS, Finding, format_interval
from .experiment_rows import PAPER_ABLATION, PAPER_CONTEXT, PAPER_MAIN, temperature_key
from .experiment_tables import format_stat

__all__ = ["Experiment", "NOTES_END", "NOTES_START", "load_experiment", "results_markdown", "write_noted_doc",
           "write_results_doc"]

NOTES_START = "<!-- notes -->"
NOTES_END = "<!-- /notes -->"
NOTES_PLACEHOLDER = "(Not written yet: what the numbers say, and why a finding did or did not reproduce.)"
METRICS = ("exact_accuracy", "type_accuracy", "type_macro_f1")
SHORT = {"exact_accuracy": "exact", "type_accuracy": "type acc.", "type_macro_f1": "type F1"}


@dataclass(frozen=True)
class Experiment:
    """One experiment directory's results, under a column label."""

    label: str
    path: Path
    results: Mapping[str, Any]

    @property
    def preset(self) -> Mapping[str, Any]:
        return self.results["preset"]

    @property
    def summary(self) -> Mapping[str, Mapping[str, Any]]:
        return self.results["summary"]

    @property
    def comparisons(self) -> Mapping[str, Mapping[str, Any]]:
        return self.results.get("comparisons", {})


def load_experiment(label: str, path: str | Path) -> Experiment:
    """The experiment at `path` (its `results.json`); a `ValueError` when there is none or it holds no rows."""
    path = Path(path)
    file = path / "results.json"
    if not file.is_file():
        raise ValueError(f"Expect results.json in {path} (run `shop-r1 experiment paper-tables --out {path}` first), "
                         "actually: none")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"Expect JSON in {file}, actually: {exc}") from None
    if not results.get("summary"):
        raise ValueError(f"Expect rows in {file}, actually: none")
    return Experiment(label, path, results)


def _pm(stat: Mapping[str, Any] | None) -> str:
    return format_stat(stat, digits=1)


def _interval(data: Mapping[str, Any] | None) -> str:
    return format_interval(data, digits=1)


def _compute_hours(exp: Experiment) -> float:
    """CPU-side wall time of the whole experiment: every model's own training plus every row's evaluation."""
    seconds = sum(float(r.get("eval_seconds", 0.0)) for r in exp.results.get("rows", []))
    for done in exp.path.glob("seed*/models/*/done.json"):
        seconds += float(json.loads(done.read_text(encoding="utf-8")).get("seconds", 0.0))
    return seconds / 3600


def _command(exp: Experiment) -> str:
    seeds = sorted({int(r["seed"]) for r in exp.results.get("rows", [])})
    parts = [f"shop-r1 experiment paper-tables --preset {exp.preset['name']} --out EXP_DIR"]
    if tuple(seeds) != tuple(exp.preset.get("seeds", ())):
        parts.append(f"--seeds {','.join(map(str, seeds))}")
    if not exp.preset.get("persona", True):
        parts.append("--no-persona")
    return " ".join(parts)


def _how_run(experiments: Sequence[Experiment]) -> list[str]:
    lines = ["## How it was run", ""]
    for exp in experiments:
        p, data = exp.preset, exp.results.get("data", {})
        seeds = sorted({int(r["seed"]) for r in exp.results.get("rows", [])})
        shown = data.get("rl_prompt_mean_current_shown") or {}
        page = (f"RL prompts show {100 * shown['train']:.0f}% (train) / {100 * shown['test']:.0f}% (test) of their "
                "current page on average" if shown else "page share not recorded")
        persona = ("persona and intent before the first page (Customer-R1's conditioning)" if p.get("persona", True)
                   else "pages and actions only (the paper's context)")
        train, test = data.get("train", {}), data.get("test", {})
        lines += [f"**{exp.label}** (`{exp.preset['name']}`): model `{p['model_preset']}`, seeds "
                  f"{', '.join(map(str, seeds))}, SFT {p['sft_steps']} steps, GRPO {p['rl_steps']} steps "
                  f"(G = {p['num_generations']}), online GRPO {p['online_steps']} steps, τ = "
                  f"{p['eval_temperature']:g} on ≤ {p.get('eval_limit') or 'all'} held-out test steps, "
                  f"{p['max_context_tokens']}-token context; {persona}; {page}. Data: {train.get('sessions', '?')} "
                  f"training sessions ({train.get('rl_rows', '?')} RL rows), {test.get('sessions', '?')} held-out "
                  f"sessions ({test.get('rl_rows', '?')} RL rows). Compute: {_compute_hours(exp):.1f} h of "
                  "training and evaluation.", "",
                  "```bash", _command(exp), "```", ""]
    return lines


def _headline(experiments: Sequence[Experiment], findings: Sequence[Finding]) -> list[str]:
    head = "| the paper's finding | judged on | paper Δ | " + " | ".join(
        f"{e.label} Δ [95% CI] | {e.label}" for e in experiments) + " |"
    lines = ["## The headline", "",
             "Per finding of the paper: the paired difference B − A in points (mean over the seeds both rows ran) with "
             "its 95% bootstrap interval over the held-out test steps, and the verdict: *reproduced* when the "
             "interval lies on the paper's side of 0 (or contains 0 where the paper finds no difference), *direction "
             "only* when only the estimate does, *not reproduced* otherwise (`training.comparisons.verdict`). "
             "\"not run\": the experiment has no such rows.", "",
             head, "|---|---|---|" + "---|---|" * len(experiments)]
    for f in findings:
        paper = "direction" if f.paper is None else f"{f.paper:+.2f}"
        cells = []
        for exp in experiments:
            c = exp.comparisons.get(f"{f.b}_vs_{f.a}")
            if c is None:
                cells += ["–", "not run"]
                continue
            seeds = f" ({len(c['seeds'])} seeds)" if len(c["seeds"]) != len(exp.preset.get("seeds", ())) else ""
            cells += [_interval(c.get(f.metric)) + seeds, f"**{c.get('verdict') or '–'}**"]
        lines.append(f"| {f.claim} | {SHORT[f.metric]} | {paper} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _paper_cell(row: str) -> str:
    values = PAPER_MAIN.get(row) or PAPER_ABLATION.get(row)
    return " / ".join(f"{v:.1f}" for v in values) if values else "–"


def _side_by_side(experiments: Sequence[Experiment], title: str, rows: Sequence[tuple[str, str]],
                  paper: bool = True) -> list[str]:
    cols = " | ".join(f"{e.label}: exact / type / F1" for e in experiments)
    lines = [f"## {title}", "", f"| setting |{' paper (Qwen2.5-3B) |' if paper else ''} {cols} |",
             "|---|" + ("---|" if paper else "") + "---|" * len(experiments)]
    for key, label in rows:
        cells = [" / ".join(_pm(e.summary.get(key, {}).get(m)) for m in METRICS) if key in e.summary else "not run"
                 for e in experiments]
        lines.append(f"| {label} |" + (f" {_paper_cell(key)} |" if paper else "") + " " + " | ".join(cells) + " |")
    return [*lines, ""]


def _labels(experiments: Sequence[Experiment]) -> dict[str, str]:
    out: dict[str, str] = {}
    for exp in experiments:
        out.update({k: v["label"] for k, v in exp.summary.items()})
    return out


def results_markdown(experiments: Sequence[Experiment], notes: str = NOTES_PLACEHOLDER, *,
                     command: str = "", findings: Sequence[Finding] = FINDINGS) -> str:
    """The results document (see the module docstring); `notes` goes between the notes markers."""
    if not experiments:
        raise ValueError("Expect at least one experiment, actually: none")
    labels = _labels(experiments)
    main = [(k, labels.get(k, k)) for k in PAPER_MAIN]
    ablation = [(k, labels.get(k, k)) for k in ("shop_r1", *PAPER_ABLATION, "binary_action_no_format")]
    temps = sorted({t for e in experiments for t in e.preset.get("temperatures", ())})
    lines = ["# Shop-R1's tables on our store", "",
             f"<!-- written by `{command or 'shop-r1 experiment results-doc'}`; edit only between the notes "
             "markers -->", "",
             "What `shop-r1 experiment paper-tables` measured, beside the paper's numbers: *Shop-R1* (arXiv "
             "2507.17842), Qwen2.5-3B-Instruct on OPeRA. Here every model learns from the scripted shopper's sessions "
             "on the local store and is scored on held-out sessions (other personas, products no training intent "
             "came from). Numbers in %, mean ± std over seeds. " + ", ".join(
                 f"[{e.label}](results/{e.label}/tables.md)" for e in experiments) +
             " hold each experiment's full tables (per-type breakdown, session realism, the paired differences, the "
             "training curves).", ""]
    lines += _how_run(experiments)
    lines += _headline(experiments, findings)
    lines += ["## What the numbers say", "", NOTES_START, notes.strip(), NOTES_END, ""]
    lines += _side_by_side(experiments, "Table 2: next-action prediction", main)
    cross = [k for k in PAPER_MAIN if any(e.summary.get(k, {}).get("cross_layout") for e in experiments)]
    if cross:
        lines[-1:-1] = [f"| {labels.get(k, k)}, scored on the RL layout (not the row's score) | – | " + " | ".join(
            " / ".join(_pm(e.summary.get(k, {}).get("cross_layout", {}).get(m)) for m in METRICS)
            if e.summary.get(k, {}).get("cross_layout") else "–" for e in experiments) + " |" for k in cross]
        lines += ["Each model is scored in the prompt layout it was trained with; a model trained on another layout "
                  "(SFT: previous rationales shown) is also scored on the RL rows' layout, in the extra line.", ""]
    lines += _side_by_side(experiments, "Table 4: ablations", ablation)
    lines += _side_by_side(experiments, "Table 5: context", [("shop_r1", "whole session"),
                                                              ("context_latest", "latest step only")], paper=False)
    lines += [f"Paper exact: whole session {PAPER_CONTEXT['shop_r1']:.2f}, latest step only "
              f"{PAPER_CONTEXT['context_latest']:.2f}.", ""]
    if temps:
        eval_t = {e.label: float(e.preset["eval_temperature"]) for e in experiments}
        rows = []
        for t in temps:
            keys = {e.label: "shop_r1" if math.isclose(t, eval_t[e.label]) else temperature_key(t)
                    for e in experiments}
            cells = [" / ".join(_pm(e.summary.get(keys[e.label], {}).get(m)) for m in METRICS)
                     if keys[e.label] in e.summary else "not run" for e in experiments]
            rows.append(f"| {t:g} | " + " | ".join(cells) + " |")
        lines += ["## Temperature sweep (the Shop-R1 model)", "",
                  "| τ | " + " | ".join(f"{e.label}: exact / type / F1" for e in experiments) + " |",
                  "|---|" + "---|" * len(experiments), *rows, "",
                  "Paper: 0.6-0.8 best; exact accuracy peaks at 28.63 at τ = 0.7.", ""]
    lines += _side_by_side(experiments, "Online RL in the live store (beyond the paper)",
                           [("shop_r1", labels.get("shop_r1", "shop_r1")),
                            ("shop_r1_online", labels.get("shop_r1_online", "shop_r1_online"))], paper=False)
    return "\n".join(lines).rstrip() + "\n"


def existing_notes(path: Path) -> str:
    """The text between the notes markers of an existing results document, or the placeholder."""
    if not path.is_file():
        return NOTES_PLACEHOLDER
    text = path.read_text(encoding="utf-8")
    start, end = text.find(NOTES_START), text.find(NOTES_END)
    if start < 0 or end < start:
        return NOTES_PLACEHOLDER
    return text[start + len(NOTES_START):end].strip() or NOTES_PLACEHOLDER


def write_noted_doc(path: str | Path, body: str, *, command: str, heading: str = "## Reading it") -> Path:
    """Write the generated `body` to `path`, then `heading` and the notes kept from the file already there (the
    text between the notes markers), so a rerun of `command` refreshes the numbers and keeps their reading."""
    path = Path(path)
    notes = existing_notes(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{body.rstrip()}\n\n<!-- written by `{command}`; edit only between the notes markers -->\n\n"
                    f"{heading}\n\n{NOTES_START}\n{notes}\n{NOTES_END}\n", encoding="utf-8")
    return path


def write_results_doc(experiments: Sequence[Experiment], out: str | Path, *, command: str = "") -> Path:
    """Write `out` (keeping its notes) and, beside it, `results/<label>/` with each experiment's tables, curves and
    results.json. Returns `out`."""
    out = Path(out)
    labels = [e.label for e in experiments]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Expect distinct experiment labels, actually: {', '.join(labels)}")
    bad = [label for label in labels if not label or "/" in label or label.startswith(".")]
    if bad:
        raise ValueError(f"Expect labels usable as folder names, actually: {bad!r}")
    notes = existing_notes(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for exp in experiments:
        folder = out.parent / "results" / exp.label
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name in ("tables.md", "results.json"):
            if (exp.path / name).is_file():
                shutil.copyfile(exp.path / name, folder / name)
        if (exp.path / "curves").is_dir():
            shutil.copytree(exp.path / "curves", folder / "curves")
    out.write_text(results_markdown(experiments, notes, command=command), encoding="utf-8")
    return out
