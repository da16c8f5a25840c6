"""The product page: details, option groups chosen by plain links, quantity, Add to Cart / Buy Now, and reviews."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from ..catalog import Catalog
from ..models import Product
from ..state import MAX_QUANTITY
from ..web import (
    MAX_ASIN_CHARS,
    CatalogDep,
    PageError,
    SidDep,
    StateDep,
    option_key,
    page_view,
    product_url,
    render,
    resolve_option,
    safe_back_path,
    search_url,
    slug,
    track,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["pages"], dependencies=[Depends(page_view)])


def find_product(catalog: Catalog, asin: str) -> Product:
    """The product, or a 404 page."""
    product = catalog.get(asin) if 0 < len(asin) <= MAX_ASIN_CHARS else None
    if product is None:
        shown = asin if len(asin) <= 40 else asin[:40] + "…"
        raise PageError(404, f"We couldn't find a product with the id “{shown}”. It may have been removed.",
                        [("Search all products", "/search")])
    return product


def read_selection(product: Product, given: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The options chosen in `given` (query or form fields keyed by `option_key(group)`), and what was wrong.

    Fields that name no option group are not looked at here; empty values mean "not chosen".
    """
    selection: dict[str, str] = {}
    errors: list[str] = []
    for group, values in product.options.items():
        raw = given.get(option_key(group))
        if raw is None or not raw.strip():
            continue
        value = resolve_option(values, raw)
        if value is None:
            shown = raw if len(raw) <= 40 else raw[:40] + "…"
            errors.append(f"“{shown}” is not an available {group}. Choose one of: {', '.join(values)}.")
        else:
            selection[group] = value
    return selection, errors


def missing_options(product: Product, selection: Mapping[str, str]) -> list[str]:
    return [f"Please choose a {group} before adding this item to your cart."
            for group in product.options if group not in selection]


def option_groups(product: Product, selection: Mapping[str, str], back: str | None) -> list[dict[str, Any]]:
    """What the template needs to draw each option group: every value with the link that selects it."""
    groups = []
    for group, values in product.options.items():
        choices = []
        for value in values:
            url = product_url(product.asin, {**selection, group: value}, back, product.options)
            choices.append({"value": value, "slug": slug(value), "url": url, "selected": selection.get(group) == value})
        groups.append({"name": group, "key": option_key(group), "selected": selection.get(group), "choices": choices})
    return groups


def back_link(request: Request, state: Any, sid: str, given: str | None) -> str | None:
    """The results page to go back to: the `from` parameter when it is safe, else the session's last results page."""
    back = safe_back_path(given)
    if back is None:
        memo = state.memo(sid, "search")
        if memo:
            try:
                back = search_url(json.loads(memo))
            except (ValueError, TypeError):
                back = None
    return back


def render_product(request: Request, catalog: Catalog, product: Product, selection: dict[str, str],
                   back: str | None, errors: list[str] | None = None, status_code: int = 200,
                   quantity: int = 1) -> HTMLResponse:
    return render(
        request, "product.html", status_code=status_code,
        product=product, reviews=catalog.reviews(product.asin), selection=selection, back=back,
        groups=option_groups(product, selection, back), errors=errors or [], quantity=quantity,
        max_quantity=MAX_QUANTITY, this_url=product_url(product.asin, selection, back, product.options),
    )


def _track_view(request: Request, state: Any, sid: str, product: Product, selection: dict[str, str],
                back: str | None) -> None:
    """A first look at a product is `product_view`; a new pick of options on the same page is `option_select`."""
    previous = state.swap_memo(sid, "product", json.dumps({"asin": product.asin, "selection": selection}))
    prev = json.loads(previous) if previous else {}
    reloaded = getattr(request.state, "previous_page", None) == request.url.path
    same_product = reloaded and prev.get("asin") == product.asin
    if same_product and prev.get("selection") != selection:
        old = prev.get("selection") or {}
        changed = {g: v for g, v in selection.items() if old.get(g) != v}
        track(request, "option_select", {"asin": product.asin, "changed": changed, "selection": selection})
    elif not same_product:
        track(request, "product_view", {"asin": product.asin, "title": product.title, "price": product.price_min,
                                        "selection": selection, "from": back})


@router.api_route("/product/{asin:path}", methods=["GET", "HEAD"], response_class=HTMLResponse, name="product")
def product_page(
    asin: str,
    request: Request,
    catalog: CatalogDep,
    state: StateDep,
    sid: SidDep,
    from_: Annotated[str | None, Query(alias="from", description="The results page that led here.")] = None,
) -> HTMLResponse:
    """A product; `?color=navy&size=m` selects options (by value slug); `from` is the results page to go back to."""
    product = find_product(catalog, asin)
    selection, errors = read_selection(product, request.query_params)
    back = back_link(request, state, sid, from_)
    if errors:
        raise PageError(400, " ".join(errors), [("Back to the product", product_url(product.asin, selection, back))])

    if request.method == "GET":  # HEAD is not a visit
        _track_view(request, state, sid, product, selection, back)
    return render_product(request, catalog, product, selection, back)
