"""The results page: BM25 search with refinements, sorting and pagination, all as plain links and GET forms."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BeforeValidator, Field

from ..models import SORT_KEYS, SearchPage, SearchQuery, SortKey
from ..web import (
    MAX_QUERY_CHARS,
    PRICE_BUCKETS,
    REFINEMENT_PARAMS,
    SORT_LABELS,
    CatalogDep,
    SidDep,
    StateDep,
    VariantDep,
    fmt_number,
    page_view,
    render,
    search_url,
    track,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["pages"], dependencies=[Depends(page_view)])

MAX_PAGE = 100_000
MAX_PRICE = 1e9
PAGE_WINDOW = 2  # page links shown either side of the current one


def _blank_to_none(value: Any) -> Any:
    """GET forms send empty fields as ''; treat them as absent."""
    return None if isinstance(value, str) and not value.strip() else value


def _blank_to_relevance(value: Any) -> Any:
    return "relevance" if isinstance(value, str) and not value.strip() else value


Blank = BeforeValidator(_blank_to_none)
# Constraints sit on the inner type: on the Optional they would also be applied to the None from a blank field.
Price = Annotated[Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)] | None, Blank, Query()]
Rating = Annotated[Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)] | None, Blank, Query()]
Text = Annotated[Annotated[str, Field(max_length=300)] | None, Blank, Query()]


def page_numbers(current: int, pages: int, window: int = PAGE_WINDOW) -> list[int | None]:
    """Page numbers to link, with None for a gap: always the first and last, and `window` either side of `current`.

    >>> page_numbers(6, 14)
    [1, None, 4, 5, 6, 7, 8, None, 14]
    """
    shown = sorted({1, pages, *range(max(1, current - window), min(pages, current + window) + 1)})
    out: list[int | None] = []
    for n in shown:
        if out and n - (out[-1] or 0) > 1:
            out.append(None)
        out.append(n)
    return out


def _price_label(lo: float | None, hi: float | None) -> str:
    for b_lo, b_hi, label in PRICE_BUCKETS:
        if b_lo == lo and b_hi == hi:
            return label
    if lo is not None and hi is not None:
        return f"${fmt_number(lo)} to ${fmt_number(hi)}"
    if lo is not None:
        return f"${fmt_number(lo)} & above"
    return f"Up to ${fmt_number(hi or 0)}"


def active_filters(params: dict[str, Any]) -> list[dict[str, str]]:
    """The refinements in force, each with a label and the URL that clears it (keeping everything else)."""
    out = []
    if params["department"]:
        out.append({"group": "Department", "value": params["department"],
                    "clear_url": search_url(params, department=None, page=None)})
    if params["brand"]:
        out.append({"group": "Brand", "value": params["brand"], "clear_url": search_url(params, brand=None, page=None)})
    if params["price_min"] is not None or params["price_max"] is not None:
        out.append({"group": "Price", "value": _price_label(params["price_min"], params["price_max"]),
                    "clear_url": search_url(params, price_min=None, price_max=None, page=None)})
    if params["min_rating"] is not None:
        stars = "star" if params["min_rating"] == 1 else "stars"
        out.append({"group": "Customer rating", "value": f"{fmt_number(params['min_rating'])} {stars} & up",
                    "clear_url": search_url(params, min_rating=None, page=None)})
    return out


def _classify(previous: str | None, current: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Which analytics event this results page is, compared with the session's previous results page."""
    if previous is None:
        return "search", {}
    try:
        prev = json.loads(previous)
    except ValueError:
        return "search", {}
    if prev.get("q") != current["q"]:
        return "search", {}
    changed = {k: [prev.get(k), current[k]] for k in REFINEMENT_PARAMS if prev.get(k) != current[k]}
    if changed:
        return "refine", {"changed": changed}
    if prev.get("sort") != current["sort"]:
        return "sort", {"from": prev.get("sort"), "to": current["sort"]}
    if prev.get("page") != current["page"]:
        return "paginate", {"from": prev.get("page"), "to": current["page"]}
    return None, {}  # a reload


@router.api_route("/search", methods=["GET", "HEAD"], response_class=HTMLResponse, name="search")
def search(
    request: Request,
    catalog: CatalogDep,
    state: StateDep,
    variant: VariantDep,
    sid: SidDep,
    q: Annotated[str, Query(description="Search text; cut to 500 characters.")] = "",
    department: Text = None,
    brand: Text = None,
    price_min: Price = None,
    price_max: Price = None,
    min_rating: Rating = None,
    sort: Annotated[SortKey, BeforeValidator(_blank_to_relevance), Query()] = "relevance",
    page: Annotated[int, BeforeValidator(lambda v: _blank_to_none(v) or 1), Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """Results for a query with refinements. A page past the end is a normal page saying so, with a way back."""
    q = " ".join(q.split())[:MAX_QUERY_CHARS]
    if price_min is not None and price_max is not None and price_min > price_max:
        price_min, price_max = price_max, price_min
    params: dict[str, Any] = {"q": q, "department": department, "brand": brand, "price_min": price_min,
                              "price_max": price_max, "min_rating": min_rating, "sort": sort, "page": page}
    # The page always shows the sort the visitor chose; a variant may order "relevance" by another key.
    ordered_by = variant.relevance_order if sort == "relevance" else sort
    result: SearchPage = catalog.search(SearchQuery(**{**params, "sort": ordered_by}, per_page=variant.per_page))

    if request.method == "GET":  # HEAD is not a visit
        event, extra = _classify(state.swap_memo(sid, "search", json.dumps(params)), params)
        if event is not None:
            filters = {k: params[k] for k in REFINEMENT_PARAMS if params[k] is not None}
            track(request, event, {"q": q, "total": result.total, "page": page, "sort": sort, "filters": filters,
                                   **extra})

    first = (page - 1) * variant.per_page + 1
    last = first + len(result.products) - 1
    past_end = result.total > 0 and not result.products
    this_url = search_url(params)
    return render(
        request, "search.html",
        q=q, params=params, result=result, this_url=this_url, first=first, last=last, past_end=past_end,
        pages=result.pages, page_links=page_numbers(page, result.pages) if not past_end else [],
        filters=active_filters(params), sort_keys=SORT_KEYS, sort_labels=SORT_LABELS,
        price_selected=(price_min, price_max),
    )
