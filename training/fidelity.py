"""How realistic each shopper is, side by side, on held-out shoppers.

For the scripted reference shopper and each model directory given (the shipped default shopper, the old tiny
checkpoint, a new training run), all measured in one run on the same embedded store:

- **next action** (the paper's metrics): exact / type accuracy / type macro-F1 on the held-out test steps, unconstrained
  (as in the paper's tables). A model is scored on test data built in the prompt layout it was trained with
  (`shop_r1_prompt.json` beside it), so no model is judged on a layout it never saw;
- **validity** over seeded store steps: raw (grammar off) and as shipped (grammar on);
- **sessions**: live sessions of the held-out shoppers as shipped (grammar on), against the reference sessions:
  Jensen-Shannon distances of action types, session lengths and the funnel; purchase, terminate and search rates
  (the share of sessions that typed a search), steps per session;
- **free-text requests** (optional): the first search query typed for each hand-written request of a JSONL file
  (`tests/agent/data/free_text_intents.jsonl`): the share of requests searched for, and the share whose first query
  keeps the head noun and drops the filler (`agent.analysis.query_checks.first_query_checks`).

`shop-r1 experiment fidelity` (`training.cli.experiment`) writes `OUT.json` and `OUT.md` (the README's fidelity
table).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.analysis.query_checks import first_query_checks
from agent.policy import make_policy
from agent.policy.persona import Intent, Persona, PersonaIntent
from agent.runtime.session import RunConfig, run_sessions
from agent.runtime.trace import iter_traces
from agent.runtime.validity import measure_step_validity
from agent.wiring import embedded_store
from training.data import persona_intent_of
from training.evaluate import evaluate_model, reference_traces, session_realism
from training.experiments import layout_test_data

log = logging.getLogger(__name__)

__all__ = ["format_fidelity", "free_text_queries", "measure_fidelity"]


def _persona_intents(path: Path) -> list[tuple[Any, str]]:
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            row = json.loads(line)
            persona = Persona(persona_id=f"free{i:03d}", name="Sam", description="")
            out.append((PersonaIntent(persona=persona, intent=Intent(text=row["text"])), row["head"]))
    return out


def free_text_queries(policy: Any, site: str, path: Path, *, max_steps: int = 3, seed: int = 0) -> dict[str, Any]:
    """Run each request of `path` for up to `max_steps` steps; check the first query typed."""
    rows = _persona_intents(path)
    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig(site=site, backend="http", concurrency=8, seed=seed, max_steps=max_steps)
        asyncio.run(run_sessions(tmp, policy, [pi for pi, _ in rows], config, progress=False))
        traces = sorted(iter_traces(tmp), key=lambda t: t.session_id)
    searched = good = 0
    examples: list[dict[str, Any]] = []
    for (pi, head), trace in zip(rows, traces, strict=True):
        query = next((action.get("text") for s in trace.steps
                      if (action := s.action_dict) and action.get("type") == "type_and_submit"), None)
        problems = first_query_checks(query, head) if query is not None else ["no search typed"]
        searched += query is not None
        good += not problems
        if len(examples) < 8:
            examples.append({"request": pi.intent.text, "query": query, "problems": problems})
    n = len(rows)
    return {"requests": n, "searched": searched / n, "good_first_query": good / n, "examples": examples}


def _model_test_data(model_dir: Path, exp: Path, work: Path) -> Path:
    """The held-out test data in the prompt layout `model_dir` was trained with (the experiment's own data when it
    matches): `training.experiments.layout_test_data`."""
    return layout_test_data(model_dir, exp / "data" / "test", exp / "traces" / "test", work / model_dir.name,
                            tokenizer_dir=model_dir)


def measure_fidelity(exp: Path, models: dict[str, Path], *, sessions: int = 20, validity_steps: int = 50,
                     eval_limit: int | None = 64, free_text: Path | None = None, catalog: Path | None = None,
                     work: Path | None = None, max_steps: int = 30) -> dict[str, Any]:
    """Every measurement of the module docstring for the scripted shopper and each of `models` (label -> dir)."""
    test_data = exp / "data" / "test"
    shoppers = [pi for t in reference_traces(test_data, "test")
                if (pi := persona_intent_of(t.header.persona, t.header.intent)) is not None]
    work = work or Path(tempfile.mkdtemp(prefix="fidelity-"))
    results: dict[str, Any] = {}
    with embedded_store("a", catalog) as (url, _):
        entries: list[tuple[str, Path | None]] = [("scripted shopper", None), *models.items()]
        for label, model_dir in entries:
            started = time.perf_counter()
            log.info("fidelity: %s", label)
            row: dict[str, Any] = {"model": str(model_dir) if model_dir else "scripted"}
            data = _model_test_data(model_dir, exp, work) if model_dir else test_data
            row["next_action"] = evaluate_model(str(model_dir) if model_dir else "scripted", data, split="test",
                                                temperature=0.6, limit=eval_limit, max_new_tokens=96,
                                                device="cpu")["metrics"]
            policies = ([("shipped", make_policy("scripted", react_to_waits=False))] if model_dir is None else
                        [(key, make_policy("local", model=str(model_dir), device="cpu", structured=structured))
                         for key, structured in (("shipped", True), ("raw", False))])
            for key, policy in policies:
                try:
                    validity = asyncio.run(measure_step_validity(policy, url, shoppers, steps=validity_steps, seed=0))
                    row[f"validity_{key}"] = validity.as_dict()
                    if key == "shipped":
                        realism = session_realism(policy, test_data, url, sessions, split="test", seed=2,
                                                  concurrency=8, max_steps=max_steps)
                        row["sessions"] = {"js": realism["js"], "rates": realism["rates"],
                                           "mean_length": realism["simulated"]["mean_length"],
                                           "reference_mean_length": realism["reference"]["mean_length"]}
                        if free_text is not None:
                            row["free_text"] = free_text_queries(policy, url, free_text)
                finally:
                    asyncio.run(policy.close())
            row["seconds"] = round(time.perf_counter() - started, 1)
            results[label] = row
    return {"exp": str(exp), "sessions": sessions, "validity_steps": validity_steps, "eval_limit": eval_limit,
            "max_steps": max_steps, "shoppers": results}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def format_fidelity(result: dict[str, Any]) -> str:
    lines = ["| shopper | next action: exact / type acc / F1 (%) | validity raw / with grammar (%) | "
             "JS action types | JS session lengths | JS funnel | purchase % | terminate % | search % | "
             "steps / session | free text: searched / good first query (%) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    ref = None
    for label, row in result["shoppers"].items():
        na, s = row["next_action"], row["sessions"]
        rates = s["rates"]
        ref = ref or rates
        raw = row.get("validity_raw", row["validity_shipped"])
        ft = row.get("free_text")
        lines.append(
            f"| {label} | {_pct(na['exact_accuracy'])} / {_pct(na['type_accuracy'])} / {_pct(na['type_macro_f1'])} | "
            f"{_pct(raw['valid_rate'])} / {_pct(row['validity_shipped']['valid_rate'])} | "
            f"{s['js']['action_types']:.2f} | {s['js']['session_lengths']:.2f} | {s['js']['funnel']:.2f} | "
            f"{_pct(rates['purchase_rate']['simulated'])} | {_pct(rates['terminate_rate']['simulated'])} | "
            f"{_pct(rates['search_rate']['simulated'])} | {s['mean_length']:.1f} | "
            + (f"{_pct(ft['searched'])} / {_pct(ft['good_first_query'])} |" if ft else "– |"))
    if ref is not None:
        lines.append(f"| held-out reference sessions | – | – | 0 | 0 | 0 | {_pct(ref['purchase_rate']['reference'])} | "
                     f"{_pct(ref['terminate_rate']['reference'])} | {_pct(ref['search_rate']['reference'])} | "
                     f"{next(iter(result['shoppers'].values()))['sessions']['reference_mean_length']:.1f} | – |")
    return "\n".join(lines) + "\n"
