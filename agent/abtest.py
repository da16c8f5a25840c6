"""A/B tests of site variants with simulated shoppers (in the spirit of AgentA/B).

`abtest` runs the same personas and intents, with the same session ids and seeds, on variant A and on variant B
(`agent.session.run_sessions` into `OUT/a` and `OUT/b`), then compares the arms:

- **conversion** (purchase rate): a 95% Wilson interval per arm, and a 95% interval for the difference B - A by
  Newcombe's hybrid score method (Newcombe 1998, method 10), which keeps good coverage near 0 and 1 and with small
  arms, where the two-proportion normal (Wald) interval does not;
- **steps to purchase** over purchasing sessions: mean with a Student-t interval per arm, and Welch's interval for
  the difference;
- **searches per session** (typed searches, as in `agent.summary`): mean, t interval, Welch difference;
- **terminate rate**: Wilson per arm, Newcombe difference.

Because the arms share shoppers, the same session id on A and B is one pair, and `ABResult.paired` compares pairs
(`agent.paired_stats`): conversion by the exact McNemar test on the discordant pairs with Newcombe's paired interval,
and steps, searches and seconds waited per session by paired t intervals, each with the sessions per arm a paired
test needs to detect the measured effect at 80% power and 5% two-sided (`agent.power`). The unpaired intervals stay
beside them: pairing removes the spread between shoppers, so the paired ones are narrower when shoppers are alike
on both arms. Seconds are wall-clock time and the arms run one after the other, so on a busy machine they also
measure the load and the first arm's cold start (a few hundredths of a second per session, enough for a paired test
to call "significant"); `agent.ux_sensitivity` runs its arms at once for that reason.

The arms run one after the other, each with a fresh policy from `policy_factory`, so a stateful policy cannot
carry anything from A into B. Interval formulas are in `agent.stats`. `OUT/report.html` (`agent.ab_report`) shows the
verdict, a forest plot of the paired differences and both arms' funnels side by side.
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
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from sites.store.variants import VariantName

from .paired_stats import PairedTable, mcnemar_exact_p, paired_diff_interval, paired_mean_interval
from .persona import PersonaIntent
from .policies.base import Policy
from .power import paired_mean_n, paired_proportion_n, two_proportion_n
from .session import RunConfig, run_sessions, session_ids
from .stats import Interval, diff_interval, mean_interval, welch_interval, wilson_interval
from .summary import FunnelConfig, RunSummary, load_run, session_searches, summarize
from .trace import Trace

__all__ = ["ABResult", "ArmResult", "PairedMetric", "PairedResult", "abtest", "abtest_async", "abtest_command",
           "abtest_embedded", "compare_runs", "format_abtest", "paired_comparison", "save_abtest"]

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


def abtest_embedded(
    variant_a: str,
    variant_b: str,
    policy_factory: Callable[[], Policy],
    items: Sequence[PersonaIntent],
    config: RunConfig,
    out_dir: str | Path,
    *,
    catalog: str | Path | None = None,
    page_delay: float | None = None,
    **kwargs: Any,
) -> ABResult:
    """`abtest` on two in-process stores of one catalog, serving `variant_a` and `variant_b` on their own ports.

    The shoppers get the two URLs and nothing else; the variant names go only into `abtest.json` and the
    report.
    """
    from .embedded import embedded_store, slow_pages

    with embedded_store(variant_a, catalog, slow_pages(variant_a, page_delay)) as (url_a, _), \
            embedded_store(variant_b, catalog, slow_pages(variant_b, page_delay)) as (url_b, _):
        result = abtest(url_a + "/", url_b + "/", policy_factory, items, config, out_dir, **kwargs)
    result = result.model_copy(update={"a": result.a.model_copy(update={"variant": variant_a}),
                                       "b": result.b.model_copy(update={"variant": variant_b})})
    save_abtest(result, out_dir)
    return result


def format_abtest(result: ABResult, width: int = 110) -> str:
    """The comparison as a plain-text table."""
    from rich.console import Console
    from rich.table import Table

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
    from rich.table import Table

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


def _default_items(n: int, seed: int, catalog: Path | None) -> list[PersonaIntent]:
    """`n` sampled personas, each with an intent written from one of the catalog's featured products."""
    from sites.store.catalog import Catalog
    from sites.store.defaults import default_catalog

    from .persona import Intent, sample_personas

    products = Catalog(catalog or default_catalog()).featured(n)
    if not products:
        raise ValueError("the catalog has no products to write intents from")
    personas = sample_personas(n, seed)
    items = []
    for i, persona in enumerate(personas):
        p = products[i % len(products)]
        intent = Intent.from_product(title=p.title, brand=p.brand, department=p.department, price=p.price_min,
                                     options={k: v[0] for k, v in p.options.items() if v}, asin=p.asin,
                                     seed=seed * 100_003 + i)
        items.append(PersonaIntent(persona=persona, intent=intent))
    return items


def abtest_command(
    a: Annotated[str | None, typer.Option("--a", metavar="URL", help="Variant A's site.")] = None,
    b: Annotated[str | None, typer.Option("--b", metavar="URL", help="Variant B's site.")] = None,
    variant_a: Annotated[VariantName | None, typer.Option(
        "--variant-a", help="Instead of --a: serve this store variant in-process (a, b, or a known-effect variant "
                            "of a; see sites/store/variants.py).")] = None,
    variant_b: Annotated[VariantName | None, typer.Option(
        "--variant-b", help="Instead of --b: serve this store variant in-process.")] = None,
    page_delay: Annotated[float | None, typer.Option(
        "--page-delay", min=0, max=60, help="With --variant-a/-b: seconds every page of a slow variant waits "
                                            "(default: its own 1.5); the other variants stay fast.")] = None,
    sessions: Annotated[int, typer.Option("--sessions", min=1, help="Sessions per arm.")] = 20,
    policy: Annotated[str, typer.Option(
        "--policy", help="Shopper policy (see `shop-r1 simulate`): local (the default shopper), scripted or openai.")
    ] = "local",
    model: Annotated[str | None, typer.Option(
        "--model", help="Model dir of the local policy (default: the shipped default shopper).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Sessions at a time.")] = 4,
    backend: Annotated[str, typer.Option("--backend", help="browser or http.")] = "browser",
    seed: Annotated[int, typer.Option("--seed", help="Seeds the personas and every session.")] = 0,
    out: Annotated[Path, typer.Option(
        "--out", help="Output directory (gets a/, b/, abtest.json and report.html).")] = Path("runs/abtest"),
    personas: Annotated[Path | None, typer.Option("--personas", help="Persona-intent JSONL; default: sampled "
                                                  "personas with intents from the catalog's products.")] = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="Catalog for sampled intents; default: the "
                                                 "store's default catalog.")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Step budget per session.")] = 30,
) -> None:
    """Run the same shoppers on two site variants and compare conversion, steps and searches (paired and unpaired).

    Each arm is a running site (--a URL, --b URL) or a store variant served in-process (--variant-a, --variant-b).
    """
    from .persona import PersonaFileError, load_persona_intents
    from .policies import make_policy  # provided by the CLI owner

    if backend not in ("browser", "http"):
        raise typer.BadParameter(f"Expect browser or http, actually: {backend!r}", param_hint="--backend")
    from envs.origin import origin_of

    for option, url, variant in (("--a", a, variant_a), ("--b", b, variant_b)):
        if (url is None) == (variant is None):
            raise typer.BadParameter(f"Expect exactly one of {option} URL or --variant-{option[-1]} NAME, actually: "
                                     f"{'both' if url else 'neither'}", param_hint=option)
        if url is not None:
            try:
                origin_of(url)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=option) from None
    try:
        items = load_persona_intents(personas)[:sessions] if personas else _default_items(sessions, seed, catalog)
    except (PersonaFileError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"ERROR: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        made = [make_policy(policy, model=model)]  # fail fast on a bad name or options; this one serves arm A
    except (ValueError, OSError) as exc:
        typer.echo(f"ERROR: {exc}", err=True)
        raise typer.Exit(2) from None

    def factory() -> Policy:
        return made.pop() if made else make_policy(policy, model=model)

    config = RunConfig(site=a or "embedded", backend=backend, concurrency=concurrency,  # type: ignore[arg-type]
                       seed=seed, max_steps=max_steps)
    if a is not None and b is not None:
        result = abtest(a, b, factory, items, config, out, progress=True)
    else:
        result = _abtest_mixed(a, b, variant_a, variant_b, factory, items, config, out, catalog, page_delay)
    typer.echo(format_abtest(result))
    typer.echo(f"wrote {out / 'abtest.json'}")
    typer.echo(f"report: {(out / 'report.html').resolve()}")


def _abtest_mixed(a: str | None, b: str | None, variant_a: Any, variant_b: Any, factory: Callable[[], Policy],
                  items: Sequence[PersonaIntent], config: RunConfig, out: Path, catalog: Path | None,
                  page_delay: float | None) -> ABResult:
    """At least one arm served in-process: both embedded, or one URL and one embedded store."""
    if variant_a is not None and variant_b is not None:
        return abtest_embedded(variant_a.value, variant_b.value, factory, items, config, out, catalog=catalog,
                               page_delay=page_delay, progress=True)
    from .embedded import embedded_store, slow_pages

    variant = variant_a if variant_a is not None else variant_b
    with embedded_store(variant.value, catalog, slow_pages(variant.value, page_delay)) as (url, _):
        return abtest(a or url + "/", b or url + "/", factory, items, config, out, progress=True)
