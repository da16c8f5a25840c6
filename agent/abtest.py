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

The arms run one after the other, each with a fresh policy from `policy_factory`, so a stateful policy cannot
carry anything from A into B. Interval formulas are in `agent.stats`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from .persona import PersonaIntent
from .policies.base import Policy
from .session import RunConfig, run_sessions, session_ids
from .stats import Interval, diff_interval, mean_interval, welch_interval, wilson_interval
from .summary import FunnelConfig, RunSummary, load_run, session_searches, summarize

__all__ = ["ABResult", "ArmResult", "abtest", "abtest_async", "abtest_command", "compare_runs", "format_abtest"]

log = logging.getLogger(__name__)


class ArmResult(BaseModel):
    """One variant's numbers."""

    name: str
    site: str
    run_dir: str
    sessions: int
    purchases: int
    conversion: Interval
    terminate: Interval
    steps_to_purchase: Interval
    searches_per_session: Interval
    summary: RunSummary


class ABResult(BaseModel):
    """Both arms and the differences B - A (`conversion_diff` by Newcombe's method, means by Welch)."""

    a: ArmResult
    b: ArmResult
    conversion_diff: Interval
    terminate_diff: Interval
    steps_to_purchase_diff: Interval
    searches_diff: Interval
    confidence: float = 0.95
    paired_sessions: int = 0


def _arm(name: str, site: str, run_dir: Path, funnel: FunnelConfig, confidence: float
         ) -> tuple[ArmResult, list[float], list[float]]:
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
    return arm, purchase_steps, searches


def compare_runs(a_dir: str | Path, b_dir: str | Path, *, a_site: str = "", b_site: str = "",
                 confidence: float = 0.95, funnel: FunnelConfig | None = None) -> ABResult:
    """Compare two finished runs (the statistics half of `abtest`; also usable on existing run directories)."""
    cfg = funnel or FunnelConfig()
    a, a_steps, a_searches = _arm("a", a_site, Path(a_dir), cfg, confidence)
    b, b_steps, b_searches = _arm("b", b_site, Path(b_dir), cfg, confidence)
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
    """Run both arms (A, then B) and compare them; writes `OUT/a`, `OUT/b` and `OUT/abtest.json`."""
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
    (out / "abtest.json").write_text(json.dumps(result.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    return result


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
    from rich.console import Console
    from rich.table import Table

    pct = int(round(result.confidence * 100))
    table = Table(title=f"A/B test ({result.a.sessions} vs {result.b.sessions} sessions, {pct}% intervals)",
                  title_justify="left")
    table.add_column("metric")
    table.add_column(f"A {result.a.site}".strip(), justify="right")
    table.add_column(f"B {result.b.site}".strip(), justify="right")
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
    return buf.getvalue()


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
    a: Annotated[str, typer.Option("--a", metavar="URL", help="Variant A's site.")],
    b: Annotated[str, typer.Option("--b", metavar="URL", help="Variant B's site.")],
    sessions: Annotated[int, typer.Option("--sessions", min=1, help="Sessions per arm.")] = 20,
    policy: Annotated[str, typer.Option(
        "--policy", help="Shopper policy (see `shop-r1 simulate`): local (the default shopper), scripted or openai.")
    ] = "local",
    model: Annotated[str | None, typer.Option(
        "--model", help="Model dir of the local policy (default: the shipped default shopper).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Sessions at a time.")] = 4,
    backend: Annotated[str, typer.Option("--backend", help="browser or http.")] = "browser",
    seed: Annotated[int, typer.Option("--seed", help="Seeds the personas and every session.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Output directory (gets a/, b/ and abtest.json).")] = Path(
        "runs/abtest"),
    personas: Annotated[Path | None, typer.Option("--personas", help="Persona-intent JSONL; default: sampled "
                                                  "personas with intents from the catalog's products.")] = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="Catalog for sampled intents; default: the "
                                                 "store's default catalog.")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Step budget per session.")] = 30,
) -> None:
    """Run the same shoppers on two site variants and compare conversion, steps and searches."""
    from .persona import PersonaFileError, load_persona_intents
    from .policies import make_policy  # provided by the CLI owner

    if backend not in ("browser", "http"):
        raise typer.BadParameter(f"Expect browser or http, actually: {backend!r}", param_hint="--backend")
    from envs.origin import origin_of

    for option, url in (("--a", a), ("--b", b)):
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

    config = RunConfig(site=a, backend=backend, concurrency=concurrency, seed=seed,  # type: ignore[arg-type]
                       max_steps=max_steps)
    result = abtest(a, b, factory, items, config, out, progress=True)
    typer.echo(format_abtest(result))
    typer.echo(f"wrote {out / 'abtest.json'}")
