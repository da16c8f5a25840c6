"""The `shop-r1` command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Annotated, Literal

import typer

from agent.analysis.report import write_report
from agent.analysis.summary import format_summary, write_summary
from agent.policy import make_policy
from agent.runtime.distributed import import_ray, ray_address, run_sessions_ray
from agent.runtime.population import load_population, sample_from_products
from agent.runtime.products import load_products
from agent.runtime.session import RunConfig, run_sessions
from agent.wiring import VariantName, embedded_store, sample_from_catalog, store_app
from envs.origin import origin_of

from .abtest import abtest_command
from .options import RayOptionCommand
from .record import record_command
from .replay import replay_command
from .serve import serve_policy_command
from .usage import usage_error

app = typer.Typer(help="shop-r1: simulated shoppers in a real browser, trained with the Shop-R1 recipe.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(store_app, name="store")
log = logging.getLogger("shop_r1")


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"shop-r1 {version('shop-r1')}")
        except PackageNotFoundError:  # pragma: no cover - running from a checkout that was never installed
            typer.echo("shop-r1 (not installed)")
        raise typer.Exit()


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
          version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str, param: str | None = None) -> Exception:
    return usage_error(message, param)


Backend = Annotated[Literal["browser", "http"],
                    typer.Option(help="browser (Playwright + Chromium) or http (no browser, faster).")]
Sessions = Annotated[int, typer.Option(min=1, help="How many sessions (shoppers).")]
Concurrency = Annotated[int, typer.Option(min=1, help="Sessions at once.")]
Seed = Annotated[int, typer.Option(help="Seed for personas, intents and the scripted shopper.")]
MaxSteps = Annotated[int, typer.Option(min=1, help="Step budget per session.")]
Variant = Annotated[VariantName, typer.Option(
    help="Store variant with --embedded: a or b (two layouts), or a with one change known to hurt shoppers "
         "(sites/store/variants.py).")]


@app.command(cls=RayOptionCommand)
def simulate(
    out: Annotated[Path, typer.Option(help="Run directory for traces, run.json, summary.json and report.html.")],
    site: Annotated[str | None, typer.Option(help="URL of the site to shop (same-origin only).")] = None,
    embedded: Annotated[bool, typer.Option(help="Start the local store in-process on a free port.")] = False,
    variant: Variant = VariantName.a,  # type: ignore[attr-defined]
    catalog: Annotated[Path | None, typer.Option(help="Catalog DB for --embedded and for sampling intents.")] = None,
    personas: Annotated[Path | None, typer.Option(help="JSONL of {persona, intent}; default: sampled.")] = None,
    products: Annotated[str | None, typer.Option(
        metavar="FILE|URL", help="Draw the intents from a product export instead of the catalog: a JSONL file "
        "(shop-r1 store export-products) or a site's /api/products URL.")] = None,
    policy: Annotated[Literal["local", "scripted", "openai"], typer.Option(
        help="local (a model in-process; default: the shipped default shopper on CPU), scripted (rule-based, no "
             "model) or openai (an OpenAI-compatible server).")] = "local",
    model: Annotated[str | None, typer.Option(
        help="Model dir (local; default: the shipped checkpoint) or served model name (openai).")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL(s), comma-separated.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (paper: 0.6).")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Completion budget per step (openai, local).")] = None,
    structured: Annotated[bool, typer.Option(
        help="openai: send the action JSON schema as response_format; local: decode inside the action grammar with "
             "names from the page.")] = True,
    schema_field: Annotated[Literal["response_format", "structured_outputs"], typer.Option(
        help="openai: send the schema as OpenAI's response_format, or in vLLM's own structured_outputs field.")
    ] = "response_format",
    sessions: Sessions = 10,
    concurrency: Concurrency = 4,
    backend: Backend = "browser",
    seed: Seed = 0,
    max_steps: MaxSteps = 30,
    screenshots: Annotated[bool, typer.Option(help="Save a screenshot per step (browser backend).")] = False,
    playwright_trace: Annotated[bool, typer.Option(help="Save a Playwright trace.zip per session.")] = False,
    report: Annotated[bool, typer.Option(help="Write report.html at the end.")] = True,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="[ADDRESS]", help="Run the sessions on Ray actors: --ray alone starts a local Ray; "
        "--ray auto or --ray ray://HOST:PORT joins that cluster (needs the ray extra: pip install ray).")] = None,
    actors: Annotated[int, typer.Option(min=1, help="Ray actors with --ray; each runs --concurrency sessions.")] = 2,
) -> None:
    """Run simulated shopper sessions and record their traces."""
    if (site is None) == (not embedded):
        raise _fail(f"Expect exactly one of --site URL or --embedded, actually: {'both' if embedded else 'neither'}")
    if out.exists() and any((out / "sessions").glob("*.jsonl")):
        raise _fail(f"Expect a new run directory, actually: {out} already holds a run", "--out")
    if site is not None:
        try:
            origin_of(site)
        except ValueError as exc:
            raise _fail(str(exc), "--site") from None
    if personas is not None and products is not None:
        raise _fail("Expect one of --personas FILE.jsonl or --products FILE|URL, actually: both", "--products")
    if site is not None and products is not None and catalog is not None:  # with --site, --catalog only samples
        raise _fail("Expect one of --products FILE|URL or --catalog DB to draw intents from with --site, actually: "
                    "both", "--products")
    if site is not None and personas is None and products is None and catalog is None:  # embedded: its catalog
        raise _fail("Expect --personas FILE.jsonl (or --products FILE|URL or --catalog DB to draw intents from) with "
                    "--site, actually: none of them")
    try:
        if ray is not None:  # each actor builds its own policy from this spec
            import_ray()
            pol = {"name": policy, "model": model, "base_url": base_url, "temperature": temperature,
                   **_budget_options(policy, max_tokens, structured, schema_field)}
        else:
            pol = _make_policy(policy, model=model, base_url=base_url, temperature=temperature,
                               **_budget_options(policy, max_tokens, structured, schema_field))
    except (ValueError, OSError, ImportError) as exc:
        raise _fail(str(exc)) from None
    with contextlib.ExitStack() as stack:
        catalog_path = catalog
        if embedded:
            site, catalog_path = stack.enter_context(_embedded(VariantName(variant).value, catalog))
        assert site is not None
        try:
            items = _population(personas, catalog_path, sessions, seed, products)
            config = RunConfig(site=site, backend=backend, concurrency=concurrency, seed=seed, max_steps=max_steps,
                               screenshots=screenshots, playwright_trace=playwright_trace)
        except (ValueError, OSError) as exc:
            raise _fail(str(exc)) from None
        _run(out, pol, items, config, {"embedded": embedded, "variant": VariantName(variant).value if embedded
                                       else None, "products": products},
             ray=ray, actors=actors)
    if report:
        _write_report(out)


def _budget_options(policy: str, max_tokens: int | None, structured: bool,
                    schema_field: str = "response_format") -> dict:
    if policy == "openai":
        return {"max_tokens": max_tokens, "structured": structured, "schema_field": schema_field}
    if policy == "local":
        return {"max_new_tokens": max_tokens, "structured": structured}
    return {}


def _make_policy(name: str, **options):
    return make_policy(name, **options)


def _embedded(variant: str, catalog: Path | None):
    return embedded_store(variant, catalog)


def _population(personas: Path | None, catalog: Path | None, n: int, seed: int, products: str | None = None):
    """Who shops: the --personas file in turn, else intents drawn from the --products export, else from the catalog
    (the same intents for the same products and seed)."""
    if personas is not None:
        items = load_population(personas)
        if not items:
            raise ValueError(f"{personas} holds no persona/intent lines")
        return [items[i % len(items)] for i in range(n)]
    if products is not None:
        return sample_from_products(load_products(products), n, seed)
    assert catalog is not None
    return sample_from_catalog(catalog, n, seed)


def _run(out: Path, policy, items, config, extra: dict, ray: str | None = None, actors: int = 2) -> None:
    if ray is not None:  # `policy` is a spec: {"name": ..., **options}
        try:
            run_sessions_ray(out, policy, items, config, address=ray_address(ray), actors=actors, extra=extra)
        except (RuntimeError, ValueError, ConnectionError, FileExistsError) as exc:
            raise _fail(str(exc)) from None
    else:
        async def go():
            try:
                return await run_sessions(out, policy, items, config, extra=extra)
            finally:
                await policy.close()

        asyncio.run(go())
    summary = write_summary(out)
    typer.echo(format_summary(summary))


def _write_report(run_dir: Path) -> Path:
    path = write_report(run_dir)
    typer.echo(f"report: {path.resolve()}")
    return path


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run directory (a fresh one is made inside it).")] = Path("runs/demo"),
    sessions: Sessions = 4,
    concurrency: Concurrency = 4,
    policy: Annotated[Literal["local", "scripted"], typer.Option(
        help="local (the shipped default shopper, on CPU) or scripted (rule-based).")] = "local",
    seed: Seed = 0,
    max_steps: MaxSteps = 12,
) -> None:
    """The main job on the embedded default: shoppers browse the local store in Chromium; then the report.
    `simulate --embedded --backend browser --screenshots` with these options and simulate's defaults for the rest.
    At most 12 steps a shopper by default (simulate: 30): the reference shoppers take ~7, and the default model,
    which rarely leaves, would otherwise spend most of the demo at ~0.1 steps/s on 2 cores going nowhere."""
    run_dir = out / datetime.now().strftime("%Y%m%d-%H%M%S")
    typer.echo(f"shop-r1 demo: {sessions} {policy} shoppers on the embedded store, in Chromium -> {run_dir}")
    simulate(out=run_dir, embedded=True, policy=policy, sessions=sessions, concurrency=concurrency, seed=seed,
             max_steps=max_steps, backend="browser", screenshots=True)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory written by simulate.")]) -> None:
    """Write RUN_DIR/report.html: sessions, steps with screenshots, funnel, action mix."""
    if not (run_dir / "sessions").is_dir():
        raise _fail(f"Expect a run directory written by simulate, actually: {run_dir} has no sessions/ inside")
    try:
        _write_report(run_dir)
    except ValueError as exc:
        raise _fail(str(exc)) from None


for name, command in (("replay", replay_command), ("abtest", abtest_command), ("record", record_command),
                      ("serve-policy", serve_policy_command)):
    app.command(name)(command)


def _register_plugins() -> None:
    """Packages above agent (training) add their commands through the `shop_r1.commands` entry-point group, so
    agent never imports them: dependencies point one way. A broken plugin is logged, not fatal."""
    for ep in entry_points(group="shop_r1.commands"):
        try:
            register = ep.load()
        except ImportError as exc:  # pragma: no cover - a broken optional install
            log.warning("commands from %s unavailable: %s", ep.value, exc)
            continue
        register(app)


_register_plugins()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="yellow", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
