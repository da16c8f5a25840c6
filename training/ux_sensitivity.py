"""`shop-r1 experiment ux-sensitivity --out DIR`: can a shopper tell a better store from a worse one?

A thin command over `agent.wiring.run_sensitivity` (which needs no training code): every known-effect store variant
against `a`, with the scripted shopper or the shipped default trained shopper (`--policy local`), paired, on the http
backend of an embedded store. Writes `DIR/ux_sensitivity.md` (copy it to `docs/ux_sensitivity.md`) and
`DIR/ux_sensitivity.json`, and keeps every arm's traces in `DIR/<variant>/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from agent.policy import make_policy
from agent.runtime.session import RunConfig
from agent.wiring import VariantName, default_catalog, run_sensitivity, sample_from_catalog

from .experiment_cli import experiment_app


@experiment_app.command("ux-sensitivity")
def ux_sensitivity_command(
    out: Annotated[Path, typer.Option(help="Experiment directory: one run per variant, and the report.")],
    sessions: Annotated[int, typer.Option(min=2, help="Sessions per arm (the issue's target: 200).")] = 20,
    policy: Annotated[Literal["scripted", "local"], typer.Option(
        help="scripted (rule-based) or local (the shipped default trained shopper, on CPU; slow).")] = "scripted",
    model: Annotated[str | None, typer.Option(help="Model dir for --policy local (default: the shipped one).")] = None,
    variant: Annotated[list[VariantName] | None, typer.Option(
        help="A variant to compare with a, repeatable (default: every one).")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the personas, intents and every session.")] = 0,
    concurrency: Annotated[int, typer.Option(
        min=1, help="Sessions at a time per arm. The arms run at once: keep the total below what the machine serves "
                    "without contention, or seconds per session measure the contention.")] = 2,
    catalog: Annotated[Path | None, typer.Option(help="Catalog of the embedded store (default: the cached one).")]
    = None,
    page_delay: Annotated[float | None, typer.Option(
        min=0, max=60, help="Seconds every page of the slow variant waits (default: its own 1.5 s); the other "
                            "variants stay fast.")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Step budget per session.")] = 30,
) -> None:
    """Run each known-effect store variant against a with the same shoppers; report what was detected."""
    try:
        catalog_path = catalog or default_catalog()
        items = sample_from_catalog(catalog_path, sessions, seed)
        shopper = make_policy(policy, model=model)  # one policy answers every arm (a model is loaded once)
    except (ValueError, OSError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    config = RunConfig(site="embedded", backend="http", concurrency=concurrency, seed=seed, max_steps=max_steps)
    run_sensitivity(out, lambda: shopper, items, config, policy_name=policy,
                    variants=[v.value for v in variant] if variant else None, catalog=catalog_path,
                    page_delay=page_delay)
    typer.echo((out / "ux_sensitivity.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {out / 'ux_sensitivity.md'} and {out / 'ux_sensitivity.json'}")
