"""`shop-r1 abtest`: the same shoppers on two site variants, compared (`agent.analysis.abtest`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.analysis.abtest import ABResult, abtest, format_abtest
from agent.policy import Policy, make_policy
from agent.policy.persona import PersonaFileError, PersonaIntent, load_persona_intents
from agent.runtime.population import sample_from_products
from agent.runtime.products import ProductSourceError, load_products
from agent.runtime.session import RunConfig
from agent.wiring import VariantName, abtest_embedded, embedded_store, featured_items, slow_pages
from envs.origin import origin_of

from .usage import usage_error

__all__ = ["abtest_command"]


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
    products: Annotated[str | None, typer.Option(
        "--products", metavar="FILE|URL", help="Draw the intents from a product export instead of the catalog (as "
        "simulate --products): a JSONL file (shop-r1 store export-products) or a site's /api/products URL.")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Step budget per session.")] = 30,
) -> None:
    """Run the same shoppers on two site variants and compare conversion, steps and searches (paired and unpaired).

    Each arm is a running site (--a URL, --b URL) or a store variant served in-process (--variant-a, --variant-b).
    """
    if backend not in ("browser", "http"):
        raise typer.BadParameter(f"Expect browser or http, actually: {backend!r}", param_hint="--backend")
    for option, url, variant in (("--a", a, variant_a), ("--b", b, variant_b)):
        if (url is None) == (variant is None):
            raise typer.BadParameter(f"Expect exactly one of {option} URL or --variant-{option[-1]} NAME, actually: "
                                     f"{'both' if url else 'neither'}", param_hint=option)
        if url is not None:
            try:
                origin_of(url)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=option) from None
    if personas is not None and products is not None:
        raise usage_error("Expect one of --personas FILE.jsonl or --products FILE|URL, actually: both", "--products")
    if a is not None and b is not None and products is not None and catalog is not None:  # --catalog only samples
        raise usage_error("Expect one of --products FILE|URL or --catalog DB to draw intents from with --a and --b "
                          "URLs, actually: both", "--products")
    if products is not None:
        try:
            items = sample_from_products(load_products(products), sessions, seed)
        except ProductSourceError as exc:
            raise usage_error(str(exc), "--products") from None
    else:
        try:
            items = load_persona_intents(personas)[:sessions] if personas else featured_items(sessions, seed, catalog)
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
    variant = variant_a if variant_a is not None else variant_b
    with embedded_store(variant.value, catalog, slow_pages(variant.value, page_delay)) as (url, _):
        return abtest(a or url + "/", b or url + "/", factory, items, config, out, progress=True)
