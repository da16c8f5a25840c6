"""Screenshots of every page type of the store, in both layout variants, taken with JavaScript disabled.

    .venv/bin/python scripts/store_screenshots.py --out docs/screenshots [--db catalog.db] [--query "running shoes"]

Writes `store-{variant}-{page}.png` for page in home, results, product, cart, checkout, confirmation, 404.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sites.store.catalog import Catalog
from sites.store.models import SearchQuery
from sites.store.server import StoreServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

log = logging.getLogger(__name__)

PAGES = ("home", "results", "product", "cart", "checkout", "confirmation", "404")


def default_query(db: Path) -> str:
    """A query with a few pages of results, so that the screenshot shows pagination: a featured product's category."""
    catalog = Catalog(db)
    fallback = ""
    for product in catalog.featured(8):
        leaf = product.category.split("›")[-1].strip()
        total = catalog.search(SearchQuery(q=leaf)).total
        if total > 20:
            return leaf
        fallback = fallback or leaf
    return fallback or "shoes"


def take_screenshots(db: Path, out: Path, query: str | None = None, variants: tuple[str, ...] = ("a", "b"),
                     width: int = 1280, height: int = 900) -> list[Path]:
    """Walk home → results → product → cart → checkout → confirmation (+ a 404) and save a full-page PNG of each."""
    from playwright.sync_api import sync_playwright

    from envs.chromium import launch_kwargs

    out.mkdir(parents=True, exist_ok=True)
    query = query or default_query(db)
    written: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_kwargs())
        try:
            for variant in variants:
                with StoreServer(db, variant=variant) as server:
                    viewport = {"width": width, "height": height}
                    context = browser.new_context(java_script_enabled=False, viewport=viewport)
                    page = context.new_page()

                    def shot(name: str, variant: str = variant, page: Page = page) -> None:
                        path = out / f"store-{variant}-{name}.png"
                        page.screenshot(path=str(path), full_page=True)
                        written.append(path)
                        log.info("wrote %s", path)

                    page.goto(server.url + "/")
                    shot("home")
                    page.fill("#search-input", query)
                    page.press("#search-input", "Enter")
                    page.wait_for_load_state()
                    shot("results")
                    with_options = page.locator("#search-results article:has(.card-options)")
                    card = with_options.first if with_options.count() else page.locator("#search-results article").first
                    card.locator("h2 a").click()
                    page.wait_for_load_state()
                    for group in page.locator(".option-group").all():
                        group.locator(".option-values a").first.click()
                        page.wait_for_load_state()
                    shot("product")
                    page.click("#add-to-cart")
                    page.wait_for_load_state()
                    shot("cart")
                    page.click("#checkout-link")
                    page.wait_for_load_state()
                    shot("checkout")
                    page.click("#place-order")
                    page.wait_for_load_state()
                    shot("confirmation")
                    page.goto(server.url + "/product/NO-SUCH-PRODUCT")
                    shot("404")
                    context.close()
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="Directory for the PNG files.")
    parser.add_argument("--db", type=Path, default=None, help="Catalog database; default: the cached default catalog.")
    parser.add_argument("--query", default=None, help="What to search for; default: a featured product's category.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    db = args.db
    if db is None:
        from sites.store.defaults import default_catalog

        db = default_catalog()
    take_screenshots(db, args.out, query=args.query)


if __name__ == "__main__":
    main()
