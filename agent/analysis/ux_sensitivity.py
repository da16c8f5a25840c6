"""Can a shopper tell a better store from a worse one? Every known-effect variant against `a`, paired.

`compare_variants` serves the store's variants (through the `open_store` it is given), runs the same shoppers (personas,
intents, session ids and seeds) on `a` (twice: the A/A check) and on each other variant, all arms at the same time
with one policy (so that machine load falls on every arm alike), compares each variant with `a` pair by pair
(`agent.analysis.abtest.compare_runs`) and writes `OUT/ux_sensitivity.md` and `OUT/ux_sensitivity.json`:

- the direction each variant is expected to move (`Variant.expected_effects`, most telling metric first);
- the measured paired effect B - A on conversion, steps, searches and seconds waited per session, with intervals;
- whether the most telling metric moved significantly, in the expected direction, at this many sessions per arm;
- the sessions per arm a paired test needs to detect the measured effect on that metric at 80% power.

The shoppers never learn which variant they are on: they get a URL. Nothing here looks at a variant's name either;
the expected directions come from the variants' own specs. `shop-r1 experiment ux-sensitivity` is the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.policy.base import Policy
from agent.policy.persona import PersonaIntent
from agent.policy.scripted_traits import FLOW_LIMIT_S
from agent.runtime.session import RunConfig, run_sessions, session_ids

from .abtest import ABResult, PairedMetric, compare_runs
from .stats import Interval
from .summary import load_run

__all__ = ["BASELINE", "Effects", "StoreOpener", "compare_variants", "format_sensitivity", "sensitivity_rows"]

log = logging.getLogger(__name__)

BASELINE = "a"  # the default store: the arm every variant is compared with
Effects = Sequence[tuple[str, int]]
"""A variant's expected effects: `(metric, +1 or -1)`, most telling first."""
StoreOpener = Callable[[str], contextlib.AbstractContextManager[str]]
"""Serves a store of the given variant while its context is open; yields the store's URL (no trailing slash)."""
METRICS = ("conversion", "steps", "searches", "seconds")
WARM_UP = 4  # sessions run and thrown away before the first arm
AA_DIR = f"{BASELINE}-again"  # the A/A arm: the baseline once more, on a store of its own
AA_ROW = f"{BASELINE} (A/A)"


def _metric(result: ABResult, name: str) -> PairedMetric:
    assert result.paired is not None
    return getattr(result.paired, name)


def _right_way(result: ABResult, metric: str, sign: int) -> bool:
    """The paired test on `metric` rejects "no difference", and B - A has the expected sign."""
    m = _metric(result, metric)
    return m.detected and m.diff.estimate is not None and m.diff.estimate * sign > 0


def sensitivity_rows(results: dict[str, ABResult], expected: dict[str, tuple[tuple[str, int], ...]]
                     ) -> list[dict[str, Any]]:
    """One row per variant: its expected effects, the measured paired effects and the verdict."""
    rows = []
    for variant, result in results.items():
        effects = expected.get(variant, ())
        row: dict[str, Any] = {"variant": variant, "expected": [list(e) for e in effects],
                               "pairs": result.paired.pairs if result.paired else 0}
        for name in METRICS:
            m = _metric(result, name)
            row[name] = {"diff": m.diff.model_dump(), "unpaired_diff": m.unpaired_diff.model_dump(),
                         "p_value": m.p_value, "detected": m.detected, "sessions_needed": m.sessions_needed}

        primary = effects[0] if effects else None
        row["primary"] = primary[0] if primary else None
        row["detected"] = bool(primary and _right_way(result, *primary))
        row["wrong_way"] = [metric for metric, sign in effects
                            if _metric(result, metric).detected and not _right_way(result, metric, sign)]
        row["also"] = [metric for metric, sign in effects[1:] if _right_way(result, metric, sign)]
        row["sessions_needed"] = _metric(result, primary[0]).sessions_needed if primary else None
        row["moved"] = [metric for metric in METRICS if _metric(result, metric).detected]
        rows.append(row)
    return rows


def _fmt(row: dict[str, Any], metric: str) -> str:
    cell = row[metric]
    text = Interval(**cell["diff"]).format(percent=metric == "conversion")
    if metric == "conversion" and cell["p_value"] is not None:
        text += f" (p={cell['p_value']:.2g})"
    return text + (" *" if cell["detected"] else "")


def baseline_wait(run_dir: Path) -> float | None:
    """The median seconds a page of the baseline arm took: the machine's speed, since the default store adds none."""
    traces, _ = load_run(run_dir)
    waits = [s.timing_ms["env"] / 1000 for t in traces for s in t.steps if "env" in s.timing_ms]
    return statistics.median(waits) if waits else None


def format_sensitivity(rows: list[dict[str, Any]], *, sessions: int, policy: str, confidence: float = 0.95,
                       wait_s: float | None = None) -> str:
    """The markdown report: one table row per variant, then how to read it."""
    pct = round(confidence * 100)
    arrow = {1: "↑", -1: "↓"}
    lines = [
        f"# UX sensitivity: known-effect variants against `{BASELINE}`",
        "",
        f"Shopper: `{policy}`; {sessions} sessions per arm, the same personas, intents and seeds on every arm "
        f"(paired); {pct}% paired intervals of B − A; `*` marks a paired test that rejects \"no difference\".",
        "",
        "| variant | expected | conversion | steps / session | searches / session | seconds / session | "
        f"detected at {sessions}/arm | sessions/arm for 80% power |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        expected = ", ".join(f"{metric} {arrow[sign]}" for metric, sign in row["expected"]) or "none"
        if not row["expected"]:
            false_alarm = row["variant"] == AA_ROW
            moved = ", ".join(row["moved"])
            verdict = (f"false alarm on {moved}" if false_alarm else f"moved: {moved}") if moved else "nothing moved"
            lines.append(f"| `{row['variant']}` | {expected} | " + " | ".join(_fmt(row, m) for m in METRICS)
                         + f" | {verdict} | — |")
            continue
        verdict = "yes" if row["detected"] else "no"
        if row["also"]:
            verdict += f" (also {', '.join(row['also'])})"
        if row["wrong_way"]:
            verdict += f"; opposite way on {', '.join(row['wrong_way'])}"
        needed = row["sessions_needed"]
        lines.append(f"| `{row['variant']}` | {expected} | " + " | ".join(_fmt(row, m) for m in METRICS)
                     + f" | {verdict} | {needed if needed is not None else '—'} ({row['primary'] or '—'}) |")
    if wait_s is not None:
        overloaded = (f" That is over {FLOW_LIMIT_S:g} s, where shoppers notice waiting: the machine, not the store, "
                      "was slow, and shoppers who react to waits reacted to it on every arm. Rerun with a lower "
                      "--concurrency.")
        lines += ["", f"Median wait per page on `{BASELINE}`: {wait_s:.2f} s." + (overloaded if wait_s > FLOW_LIMIT_S
                                                                                 else "")]
    lines += [
        "",
        "Conversion: exact McNemar test on the pairs that bought on one arm only, Newcombe's paired interval. Steps, "
        "searches and seconds spent waiting for pages: paired t. \"Detected\" means the first expected metric moved "
        "significantly in the expected direction. Sessions needed: per arm, for a paired test to detect the measured "
        "difference on that metric at 80% power and 5% two-sided (— when the measured difference is 0).",
        "",
    ]
    return "\n".join(lines)


async def _run_arms(out: Path, arms: Sequence[tuple[str, str]], policy_factory: Callable[[], Policy],
                    items: Sequence[PersonaIntent], config: RunConfig, open_store: StoreOpener) -> None:
    """Run every arm at the same time, each on its own store, all answered by one policy.

    Arms run side by side, not one after another, so a pair's sessions meet the same machine load: on a shared
    machine, arms run in turn would differ in seconds per session for no reason of the store's (the A/A row shows it).
    """
    ids = session_ids(len(items))
    todo = [(arm_dir, variant) for arm_dir, variant in arms if not (out / arm_dir / "run.json").exists()]
    if len(todo) < len(arms):
        log.info("%d arms already run; kept", len(arms) - len(todo))
    if not todo:
        return
    policy = policy_factory()
    try:
        with contextlib.ExitStack() as stack:
            urls = [stack.enter_context(open_store(variant)) for _, variant in todo]
            # Warm up (imports, the catalog's pages in the OS cache), so that the first sessions do not wait longer
            # for reasons of their own.
            scratch = stack.enter_context(tempfile.TemporaryDirectory())
            await run_sessions(Path(scratch) / "warm-up", policy, items[:WARM_UP],
                               dataclasses.replace(config, site=urls[0] + "/"), progress=False)
            log.info("ux-sensitivity: %d arms of %d sessions at once", len(todo), len(items))
            await asyncio.gather(*(
                run_sessions(out / arm_dir, policy, items, dataclasses.replace(config, site=url + "/"), ids=ids,
                             progress=False, extra={"ux_sensitivity": {"arm": arm_dir}})
                for (arm_dir, _), url in zip(todo, urls, strict=True)))
    finally:
        await policy.close()


def compare_variants(out_dir: str | Path, policy_factory: Callable[[], Policy], items: Sequence[PersonaIntent],
                     config: RunConfig, *, policy_name: str, expected: Mapping[str, Effects],
                     open_store: StoreOpener, confidence: float = 0.95, aa: bool = True) -> list[dict[str, Any]]:
    """Run `a` and every variant of `expected` with the same shoppers; write the report; return its rows.

    `expected` maps each variant to compare with `a` to its expected effects (`(metric, sign)`, most telling first);
    `open_store(variant)` serves a store of that variant for as long as its context is open and yields its URL. With
    `aa`, `a` also runs a second time on a store of its own (`OUT/a-again`) and its row, first, is the A/A check:
    anything it "detects" is a false alarm. Arms already in `OUT/<arm>` are kept, so an interrupted run continues.
    """
    if not items:
        raise ValueError("Expect at least one persona/intent, actually: none")
    chosen = [v for v in expected if v != BASELINE]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arms = [(BASELINE, BASELINE)] + ([(AA_DIR, BASELINE)] if aa else []) + [(v, v) for v in chosen]
    asyncio.run(_run_arms(out, arms, policy_factory, items, config, open_store))
    results = {AA_ROW if arm_dir == AA_DIR else arm_dir: compare_runs(out / BASELINE, out / arm_dir, a_site=BASELINE,
                                                                      b_site=arm_dir, confidence=confidence)
               for arm_dir, _ in arms[1:]}
    rows = sensitivity_rows(results, {v: tuple(expected[v]) for v in chosen})
    wait_s = baseline_wait(out / BASELINE)
    if wait_s is not None and wait_s > FLOW_LIMIT_S:
        log.warning("pages of %s took a median %.2f s: the machine is overloaded; lower the concurrency", BASELINE,
                    wait_s)
    (out / "ux_sensitivity.json").write_text(json.dumps({"sessions": len(items), "policy": policy_name,
                                                         "baseline_wait_s": wait_s, "rows": rows}, indent=2) + "\n",
                                             encoding="utf-8")
    (out / "ux_sensitivity.md").write_text(format_sensitivity(rows, sessions=len(items), policy=policy_name,
                                                              confidence=confidence, wait_s=wait_s), encoding="utf-8")
    return rows
