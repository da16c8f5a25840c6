"""A/B tests of site variants with simulated shoppers (in the spirit of AgentA/B).

`abtest` runs the same personas and intents, with the same session ids and seeds, on variant A and on variant B
(`agent.runtime.session.run_sessions` into `OUT/a` and `OUT/b`), then compares the arms:

- **conversion** (purchase rate): a 95% Wilson interval per arm, and a 95% interval for the difference B - A by
  Newcombe's hybrid score method (Newcombe 1998, method 10), which keeps good coverage near 0 and 1 and with small
  arms, where the two-proportion normal (Wald) interval does not;
- **steps to purchase** over purchasing sessions: mean with a Student-t interval per arm, and Welch's interval for
  the difference;
- **searches per session** (typed searches, as in `agent.analysis.summary`): mean, t interval, Welch difference;
- **terminate rate**: Wilson per arm, Newcombe difference.

Because the arms share shoppers, the same session id on A and B is one pair, and `ABResult.paired` compares pairs
(`agent.analysis.paired_stats`): conversion by the exact McNemar test on the discordant pairs with Newcombe's paired
interval, and steps, searches and seconds waited per session by paired t intervals, each with the sessions per arm a
paired test needs to detect the measured effect at 80% power and 5% two-sided (`agent.analysis.power`). The unpaired
intervals stay beside them: pairing removes the spread between shoppers, so the paired ones are narrower when shoppers
are alike on both arms. Seconds are wall-clock time and the arms run one after the other, so on a busy machine they also
measure the load and the first arm's cold start (a few hundredths of a second per session, enough for a paired test
to call "significant"); `agent.analysis.ux_sensitivity` runs its arms at once for that reason.

The arms run one after the other, each with a fresh policy from `policy_factory`, so a stateful policy cannot
carry anything from A into B. Interval formulas are in `agent.analysis.stats`. `OUT/report.html`
(`agent.analysis.ab_report`) shows the verdict, a forest plot of the paired differences and both arms' funnels side by
side.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from agent.policy.base import Policy
from agent.policy.persona import PersonaIntent
from agent.runtime.session import RunConfig, run_sessions, session_ids
from agent.runtime.trace import Trace

from .paired_stats import PairedTable, mcnemar_exact_p, paired_diff_interval, paired_mean_interval
from .power import paired_mean_n, paired_proportion_n, two_proportion_n
from .stats import Interval, diff_interval, mean_interval, welch_interval, wilson_interval
from .summary import FunnelConfig, RunSummary, load_run, session_searches, summarize

__all__ = ["ABResult", "ArmResult", "PairedMetric", "PairedResult", "abtest", "abtest_async", "compare_runs",
           "format_abtest", "paired_comparison", "save_abtest"]

POWER = 0.8  # sessions needed are for this power, at the two-sided level 1 - confidence (5% by default)

log = logging.getLogger(__name__)


class ArmResult(BaseModel):
    """One variant's numbers."""

    name: str
    site: str
    variant: str | None = None  # the store variant served there, when abtest started the store (the experimenter's
    # record: the shoppers only ever got the URL)
    run_dir: str
    sessions: int
    purchases: int
    conversion: Interval
    terminate: Interval
    steps_to_purchase: Interval
    searches_per_session: Interval
    summary: RunSummary


class PairedMetric(BaseModel):
    """One per-session metric compared pair by pair: mean(B - A), its paired interval, the unpaired one beside it."""

    name: str
    diff: Interval  # paired: mean of the per-pair differences B - A (conversion: Newcombe's paired interval)
    unpaired_diff: Interval  # the same difference treating the arms as independent (Welch; conversion: Newcombe)
    p_value: float | None = None  # conversion: exact McNemar
    detected: bool  # the paired test rejects "no difference" at 1 - confidence
    sessions_needed: int | None  # sessions per arm for a paired test to detect this effect (80% power, 5% two-sided)
    unpaired_sessions_needed: int | None = None  # conversion: the same for two independent arms


class PairedResult(BaseModel):
    """The pairs (same session id, persona, intent and seed on both arms) and the paired comparisons of B - A."""

    pairs: int
    conversion_table: dict[str, int]  # both, a_only, b_only, neither
    conversion: PairedMetric
    steps: PairedMetric  # steps per session (every session, not only purchases: a pair needs both)
    searches: PairedMetric
    seconds: PairedMetric  # seconds spent waiting for pages per session


class ABResult(BaseModel):
    """Both arms and the differences B - A (`conversion_diff` by Newcombe's method, means by Welch), and `paired`."""

    a: ArmResult
    b: ArmResult
    conversion_diff: Interval
    terminate_diff: Interval
    steps_to_purchase_diff: Interval
    searches_diff: Interval
    confidence: float = 0.95
    paired_sessions: int = 0
    paired: PairedResult | None = None  # None when no session id is on both arms


def session_seconds(trace: Trace) -> float:
    """Seconds the shopper spent waiting for pages in a session: the env's time per step, summed."""
    return sum(step.timing_ms.get("env", 0.0) for step in trace.steps) / 1000


def _mean_metric(name: str, a: list[float], b: list[float], confidence: float) -> PairedMetric:
    diff = paired_mean_interval(a, b, confidence)
    detected = diff.low is not None and diff.high is not None and (diff.low > 0 or diff.high < 0)
    needed = None
    if diff.estimate is not None and len(a) > 1:
        diffs = [y - x for x, y in zip(a, b, strict=True)]
        sd = math.sqrt(math.fsum((d - diff.estimate) ** 2 for d in diffs) / (len(diffs) - 1))
        needed = paired_mean_n(diff.estimate, sd, 1 - confidence, POWER)
    return PairedMetric(name=name, diff=diff, unpaired_diff=welch_interval(a, b, confidence), detected=detected,
                        sessions_needed=needed)


def paired_comparison(traces_a: list[Trace], traces_b: list[Trace], funnel: FunnelConfig | None = None,
                      confidence: float = 0.95) -> PairedResult | None:
    """Compare the sessions whose id is on both arms, pair by pair (None when there is no such pair)."""
    cfg = funnel or FunnelConfig()
    by_id = {t.session_id: t for t in traces_b}
    pairs = [(t, by_id[t.session_id]) for t in traces_a if t.session_id in by_id]
    if not pairs:
        return None
    alpha = 1 - confidence
    bought_a = [a.outcome == "purchase" for a, _ in pairs]
    bought_b = [b.outcome == "purchase" for _, b in pairs]
    table = PairedTable.from_outcomes(bought_a, bought_b)
    n = table.n
    p_value = mcnemar_exact_p(table.a_only, table.b_only)
    conversion = PairedMetric(
        name="conversion", diff=paired_diff_interval(table, confidence),
        unpaired_diff=diff_interval(sum(bought_a), n, sum(bought_b), n, confidence), p_value=p_value,
        detected=p_value < alpha, sessions_needed=paired_proportion_n(table.a_only / n, table.b_only / n, alpha, POWER),
        unpaired_sessions_needed=two_proportion_n(sum(bought_a) / n, sum(bought_b) / n, alpha, POWER))

    def per_session(fn: Callable[[Trace], float]) -> tuple[list[float], list[float]]:
        return [float(fn(a)) for a, _ in pairs], [float(fn(b)) for _, b in pairs]

    return PairedResult(
        pairs=n, conversion_table={"both": table.both, "a_only": table.a_only, "b_only": table.b_only,
                                   "neither": table.neither},
        conversion=conversion,
        steps=_mean_metric("steps per session", *per_session(lambda t: len(t.steps)), confidence),
        searches=_mean_metric("searches per session", *per_session(lambda t: session_searches(t, cfg)), confidence),
        seconds=_mean_metric("seconds waiting per session", *per_session(session_seconds), confidence),
    )


def _arm(name: str, site: str, run_dir: Path, funnel: FunnelConfig, confidence: float
         ) -> tuple[ArmResult, list[float], list[float], list[Trace]]:
    traces, unreadable = load_run(run_dir)
    if unreadable:
        log.warning("arm %s: %d unreadable session files left out", name, len(unreadable))
    n = len(traces)
    purchase_steps = [float(len(t.steps)) for t in traces if t.outcome == "purchase"]
    searches = [float(session_searches(t, funnel)) for t in traces]
    terminates = sum(t.outcome == "terminate" for t in traces)
    arm = ArmResult(
        name=name, site=site, run_dir=str(run_dir), sessions=n, purchases=len(purchase_steps),
        conversion=wilson_interval(len(purchase_steps), n, confidence),
        terminate=wilson_interval(terminates, n, confidence),
        steps_to_purchase=mean_interval(purchase_steps, confidence),
        searches_per_session=mean_interval(searches, confidence),
        summary=summarize(traces, funnel),
    )
    return arm, purchase_steps, searches, traces


def compare_runs(a_dir: str | Path, b_dir: str | Path, *, a_site: str = "", b_site: str = "",
                 confidence: float = 0.95, funnel: FunnelConfig | None = None) -> ABResult:
    """Compare two finished runs (the statistics half of `abtest`; also usable on existing run directories)."""
    cfg = funnel or FunnelConfig()
    a, a_steps, a_searches, a_traces = _arm("a", a_site, Path(a_dir), cfg, confidence)
    b, b_steps, b_searches, b_traces = _arm("b", b_site, Path(b_dir), cfg, confidence)
    ids_a = {p.stem for p in (Path(a_dir) / "sessions").glob("*.jsonl")}
    ids_b = {p.stem for p in (Path(b_dir) / "sessions").glob("*.jsonl")}
    a_term, b_term = a.summary.outcomes.get("terminate", 0), b.summary.outcomes.get("terminate", 0)
    return ABResult(
        a=a, b=b,
        conversion_diff=diff_interval(a.purchases, a.sessions, b.purchases, b.sessions, confidence),
        terminate_diff=diff_interval(a_term, a.sessions, b_term, b.sessions, confidence),
        steps_to_purchase_diff=welch_interval(a_steps, b_steps, confidence),
        searches_diff=welch_interval(a_searches, b_searches, confidence),
        confidence=confidence,
        paired_sessions=len(ids_a & ids_b),
        paired=paired_comparison(a_traces, b_traces, cfg, confidence),
    )


async def abtest_async(
    a_url: str,
    b_url: str,
    policy_factory: Callable[[], Policy],
    items: Sequence[PersonaIntent],
    config: RunConfig,
    out_dir: str | Path,
    *,
    confidence: float = 0.95,
    funnel: FunnelConfig | None = None,
    progress: bool = False,
) -> ABResult:
    """Run both arms (A, then B) and compare them; writes `OUT/a`, `OUT/b`, `OUT/abtest.json` and `OUT/report.html`."""
    if not items:
        raise ValueError("Expect at least one persona/intent, actually: none")
    out = Path(out_dir)
    ids = session_ids(len(items))
    for name, url in (("a", a_url), ("b", b_url)):
        policy = policy_factory()
        try:
            arm_config = dataclasses.replace(config, site=url)
            log.info("A/B arm %s: %d sessions on %s", name, len(items), url)
            await run_sessions(out / name, policy, items, arm_config, ids=ids, progress=progress,
                               extra={"abtest": {"arm": name, "a": a_url, "b": b_url}})
        finally:
            await policy.close()
    result = compare_runs(out / "a", out / "b", a_site=a_url, b_site=b_url, confidence=confidence, funnel=funnel)
    save_abtest(result, out)
    return result


def save_abtest(result: ABResult, out_dir: str | Path) -> None:
    """Write `OUT/abtest.json` (the numbers) and `OUT/report.html` (the verdict, charts and tables)."""
    from .ab_report import write_abtest_report

    out = Path(out_dir)
    (out / "abtest.json").write_text(json.dumps(result.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    write_abtest_report(result, out / "report.html")


def abtest(
    a_url: str,
    b_url: str,
    policy_factory: Callable[[], Policy],
    items: Sequence[PersonaIntent],
    config: RunConfig,
    out_dir: str | Path,
    **kwargs: Any,
) -> ABResult:
    """Synchronous `abtest_async` (call it outside a running event loop)."""
    return asyncio.run(abtest_async(a_url, b_url, policy_factory, items, config, out_dir, **kwargs))


def format_abtest(result: ABResult, width: int = 110) -> str:
    """The comparison as a plain-text table."""
    pct = int(round(result.confidence * 100))
    table = Table(title=f"A/B test ({result.a.sessions} vs {result.b.sessions} sessions, {pct}% intervals)",
                  title_justify="left")
    table.add_column("metric")
    table.add_column(f"A {result.a.variant or result.a.site}".strip(), justify="right")
    table.add_column(f"B {result.b.variant or result.b.site}".strip(), justify="right")
    table.add_column("B - A", justify="right")
    table.add_row("conversion (purchase rate)", result.a.conversion.format(percent=True),
                  result.b.conversion.format(percent=True), result.conversion_diff.format(percent=True))
    table.add_row("  purchases", f"{result.a.purchases}/{result.a.sessions}",
                  f"{result.b.purchases}/{result.b.sessions}", "")
    table.add_row("steps to purchase (mean)", result.a.steps_to_purchase.format(), result.b.steps_to_purchase.format(),
                  result.steps_to_purchase_diff.format())
    table.add_row("searches per session", result.a.searches_per_session.format(),
                  result.b.searches_per_session.format(), result.searches_diff.format())
    table.add_row("terminate rate", result.a.terminate.format(percent=True), result.b.terminate.format(percent=True),
                  result.terminate_diff.format(percent=True))
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False)
    console.print(table)
    console.print("Rates: Wilson intervals; rate difference: Newcombe's hybrid score interval; means: Student t; "
                  "mean differences: Welch.")
    if result.paired is not None:
        console.print(_paired_table(result.paired, pct))
        t = result.paired.conversion_table
        console.print(f"Pairs: the same shopper and seed on both arms. Conversion: bought on both {t['both']}, A only "
                      f"{t['a_only']}, B only {t['b_only']}, neither {t['neither']}; exact McNemar test on the "
                      f"discordant pairs, Newcombe's paired interval. Means: paired t. Sessions needed: per arm, for a "
                      f"paired test to detect the measured B - A at {POWER:.0%} power, {100 - pct}% two-sided. "
                      "Seconds are wall-clock and the arms ran in turn: small differences are machine load.")
    return buf.getvalue()


def _paired_table(paired: PairedResult, pct: int) -> Any:

    table = Table(title=f"Paired comparison ({paired.pairs} pairs, {pct}% intervals)", title_justify="left")
    for column, justify in (("metric", "left"), ("B - A paired", "right"), ("B - A unpaired", "right"),
                            ("p", "right"), ("detected", "left"), ("sessions needed", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for m in (paired.conversion, paired.steps, paired.searches, paired.seconds):
        percent = m.name == "conversion"
        table.add_row(m.name, m.diff.format(percent=percent), m.unpaired_diff.format(percent=percent),
                      f"{m.p_value:.3g}" if m.p_value is not None else "", "yes" if m.detected else "no",
                      str(m.sessions_needed) if m.sessions_needed is not None else "-")
    return table
