"""`shop-r1 store ...`: build, import, export and serve the local store."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from .variants import VariantName

app = typer.Typer(help="The local WebShop-style store: build a catalog, import WebShop data, export its products, "
                       "serve it.", no_args_is_help=True)


@app.command()
def build(
    out: Annotated[Path, typer.Option(help="Where to write the catalog database.")] = Path("catalog.db"),
    products: Annotated[int, typer.Option(min=1, help="How many products to generate.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same catalog content.")] = 0,
) -> None:
    """Generate a deterministic synthetic catalog."""
    from .generate import build_catalog

    stats = build_catalog(out, n_products=products, seed=seed, progress=True)
    typer.echo(f"wrote {out} ({stats})")


@app.command("import-webshop")
def import_webshop_cmd(
    items: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="WebShop items JSON or JSONL.")],
    out: Annotated[Path, typer.Option(help="Where to write the catalog database.")] = Path("catalog.db"),
) -> None:
    """Load WebShop's product JSON into a catalog database."""
    from .webshop import import_webshop

    stats = import_webshop(items, out, progress=True)
    typer.echo(f"wrote {out} ({stats})")


@app.command("export-products")
def export_products(
    catalog: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Catalog database; default: the cached default catalog.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSONL file.")] = Path("products.jsonl"),
) -> None:
    """Write every product as one JSON line (the records of GET /api/products), in catalog order: what
    `shop-r1 simulate --products` draws shopper intents from."""
    from .catalog import Catalog
    from .defaults import default_catalog
    from .export import write_products_jsonl

    try:
        n = write_products_jsonl(Catalog(catalog or default_catalog()), out)
    except sqlite3.DatabaseError as exc:
        raise typer.BadParameter(f"Expect a catalog database, actually: {catalog} ({exc})",
                                 param_hint="--catalog") from None
    typer.echo(f"wrote {out} ({n} products)")


@app.command()
def serve(
    db: Annotated[Path | None, typer.Option(help="Catalog database; default: a cached default catalog.")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 = a free one).")] = 8000,
    variant: Annotated[VariantName, typer.Option(
        help="Store variant: a and b are two layouts; the others are a with one change known to hurt shoppers "
             "(see sites/store/variants.py).")] = VariantName.a,  # type: ignore[attr-defined]
    page_delay: Annotated[float | None, typer.Option(
        min=0, max=60, help="Seconds every page waits before answering; default: the variant's (1.5 with slow, "
                            "else 0).")] = None,
    state: Annotated[Path | None, typer.Option(
        help="SQLite file (WAL) that keeps sessions, carts, orders and analytics across restarts and crashes; "
             "default: in memory, lost when the server stops.")] = None,
    analytics_token: Annotated[str | None, typer.Option(
        envvar="SHOP_R1_ANALYTICS_TOKEN",
        help="Bearer token required by /api/analytics. Without one the API is open on a loopback --host and off "
             "on any other.")] = None,
) -> None:
    """Serve the store over HTTP until interrupted."""
    from .defaults import default_catalog
    from .server import serve_forever

    serve_forever(db or default_catalog(), host=host, port=port, variant=variant.value, state_path=state,
                  analytics_token=analytics_token, page_delay=page_delay)
