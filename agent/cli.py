"""The `shop-r1` command line."""

from __future__ import annotations

import logging

import typer

from sites.store.cli import app as store_app

app = typer.Typer(help="shop-r1: simulated shoppers in a real browser, trained with the Shop-R1 recipe.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(store_app, name="store")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
