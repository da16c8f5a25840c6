"""The scripted shopper on a search results (or department) page: `on_results`."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence

from .page_reader import Card, match_choice, price_band
from .scripted_acts import aside, budget_clause, click, detour_to_search, habits, search, speak, terminate, type_in
from .scripted_state import Judgement, ShopperState, Step, brand_bonus, judge_card, title_key
from .scripted_text import money, query_variants, short_title
from .scripted_traits import leave_without_filters, side_rng

__all__ = ["median_price", "on_results"]


def on_results(s: ShopperState) -> Step:
    """Scan the results from the top (as far as `patience` lets it read), judge each card (relevance, price against
    the budget, rating), maybe refine or sort, then open the most promising product it has not seen.

    Traits: `exploration` drives refining, paginating and how many products it compares before choosing (with
    `decisiveness`); `budget_sensitivity` the price filter, the cheapest-first sort and preferring cheap cards;
    `review_reading` the rating filter and sort and the lowest rating it accepts; `brand_loyalty` the brand filter
    and favouring its brands; `patience` how many pages and searches it tries before leaving. Once it has compared
    enough (or its patience is out), it reopens the best product it saw; with nothing fitting it pages on,
    searches again or leaves.
    """
    page, mem, p = s.page, s.mem, s.persona
    cards = page.cards[:s.results_read]  # read from the top, as far as attention goes
    ref = median_price([c.price_min for c in cards])
    judged = [(c, judge_card(s, c, ref)) for c in cards]
    fits = [(c, j) for c, j in judged if j.fit]
    unseen = [(c, j) for c, j in fits if title_key(c.title) not in mem.viewed]
    # products already looked at that fit: candidates to come back to, scored like the others on this page
    deferred = [(c, j) for c, j in fits if title_key(c.title) in mem.viewed and mem.viewed[title_key(c.title)].fit]
    fit_views = sum(1 for seen in mem.viewed.values() if seen.fit)
    out_of_time = s.steps_left <= 0

    if out_of_time:
        if deferred:
            card, _ = max(deferred, key=lambda d: d[1].score)
            return click(speak(s, "reopen", title=short_title(card.title), price=money(card.price_min),
                               reason=_reason(s, card, fits)), card.name)
        return terminate(speak(s, "out_of_patience", aside=aside(s, "impatient")))

    if page.no_results or not cards:
        old = page.search_value or (mem.searches[-1] if mem.searches else "that")
        if len(mem.searches) < s.max_searches and s.steps_left > 2:
            step = search(s, "search_empty", old=old)
            if step is not None:
                return step
        return terminate(speak(s, "nothing_fits", budget_clause=budget_clause(s)))

    refine = _maybe_refine(s, judged)
    if refine is not None:
        return refine

    if fit_views >= s.views_wanted and deferred:
        card, judged_old = max(deferred, key=lambda d: d[1].score)
        best_new = max(unseen, key=lambda cj: cj[1].score, default=None)
        if best_new is None or judged_old.score >= best_new[1].score - 0.2:
            return click(speak(s, "reopen", title=short_title(card.title), price=money(card.price_min),
                               reason=_reason(s, card, fits)), card.name)
    if (unseen and fit_views >= 1 and fit_views < s.views_wanted and page.next_page
            and mem.pages_since_search < s.max_pages - 1 and s.steps_left > 4
            and s.rng.random() < 0.35 * p.exploration):
        return click(speak(s, "next_page_browse"), page.next_page)
    if unseen:
        noisy = [(c, j.score + s.rng.gauss(0, 0.25)) for c, j in unseen]
        card, _ = max(noisy, key=lambda cs: cs[1])
        return click(speak(s, "open", title=short_title(card.title), reason=_reason(s, card, fits),
                           aside=aside(s, *habits(s, card.brand))), card.name)
    if deferred:
        card, _ = max(deferred, key=lambda d: d[1].score)
        return click(speak(s, "reopen", title=short_title(card.title), price=money(card.price_min),
                           reason=_reason(s, card, fits)), card.name)

    why = _why_nothing(s, judged)
    if page.next_page and mem.pages_since_search < s.max_pages - 1 + (s.rng.random() < 0.3) \
            and s.steps_left > 3:
        return click(speak(s, "next_page", why=why), page.next_page)
    if len(mem.searches) < s.max_searches and s.steps_left > 2:
        step = search(s, "search_again")
        if step is not None:
            return step
    return terminate(speak(s, "nothing_fits", budget_clause=budget_clause(s), aside=aside(s, "budget", "reviews")))


def median_price(values: Sequence[float | None]) -> float | None:
    """The median of the known, positive prices: what a card's price is compared with."""
    got = [v for v in values if v is not None and v > 0]
    return statistics.median(got) if got else None


def _why_nothing(s: ShopperState, judged: list[tuple[Card, Judgement]]) -> str:
    reasons = [j.reason for _, j in judged if not j.fit]
    if not reasons:
        return "what I need"
    top = max(dict.fromkeys(reasons), key=reasons.count)  # a tie goes to the reason met first on the page
    return {
        "over_budget": f"my budget of {money(s.want.max_price)}",
        "low_rating": "my standards; the ratings are too low",
        "not_relevant": f"what I'm after ({s.want.spoken})",
    }.get(top, "what I need")


def _reason(s: ShopperState, card: Card, fits: list[tuple[Card, Judgement]]) -> str:
    """Why this card: its brand, its price or its rating, whichever this persona cares about most."""
    p = s.persona
    prices = [c.price_min for c, _ in fits if c.price_min is not None]
    if brand_bonus(s, card.brand) >= 0.4:
        return f"it's from {card.brand}, a brand I like, at {money(card.price_min)}"
    if p.budget_sensitivity >= 0.6 and prices and card.price_min == min(prices) and len(prices) > 1:
        return f"at {money(card.price_min)} it's the cheapest one that fits"
    if p.review_reading >= 0.6 and card.rating is not None:
        return f"it has {card.rating:g} stars from {card.reviews or 0:,} ratings"
    if s.want.max_price and card.price_min is not None:
        return f"{money(card.price_min)} is within my {money(s.want.max_price)} budget"
    if card.rating is not None and s.rng.random() < 0.5:
        return f"{card.rating:g} stars and {money(card.price_min)}"
    if s.want.thing:
        return f"it looks like the {s.want.thing} I want, for {money(card.price_min)}"
    return f"it looks nice and costs {money(card.price_min)}"


def _maybe_refine(s: ShopperState, judged: list[tuple[Card, Judgement]]) -> Step | None:
    """Filter by brand, price, rating or department, sort by price or rating, or search again more specifically
    (adding a quality, the brand or the option it wants to the query), each with a chance set by the matching
    trait (and `ScriptedConfig.refine_rate`); at most 1 + 2 · exploration refinements per search.

    On a page with no filters at all, the wish to filter (by brand, budget, rating or department) comes with the
    same chances as on any store; when it comes, there is nothing to filter with, and the shopper may leave
    (`leave_without_filters`)."""
    page, p, mem = s.page, s.persona, s.mem
    no_filters = not page.facets and page.price_max_input is None
    cap = 1 + int(p.exploration * 2)
    if mem.refines_since_search >= cap or mem.pages_since_search > 0 or s.steps_left < 5:
        return None
    active = " | ".join(page.active_filters).lower()
    scale = s.config.refine_rate * (0.4 + p.exploration)
    options: list[tuple[float, Callable[[], Step | None]]] = []
    over = sum(1 for _, j in judged if j.reason == "over_budget")
    fits = sum(1 for _, j in judged if j.fit)

    brands = page.facets.get("brand", ())
    for fav in s.favourites:
        choice = match_choice(brands, fav)
        if (choice is not None and fav.lower() not in active and len(brands) > 1) or no_filters:
            prob = (0.3 + 0.4 * p.brand_loyalty) if fav == s.want.brand else 0.6 * p.brand_loyalty
            options.append((prob * scale, _no_filter if choice is None else _clicker(
                s, "refine_brand", choice.name, aside(s, "brand"), brand=choice.text)))
            break
    if s.want.max_price and "price" not in active:
        prob = 0.35 * p.budget_sensitivity * scale * (2.0 if over * 2 >= len(judged) else 1.0)
        options.append((prob, lambda: _refine_price(s)))
    narrower = _narrower_query(s)
    if narrower is not None:  # search again, more specifically: the query refined
        options.append((0.5 * scale, lambda: _search_narrower(s, narrower)))
    if p.review_reading >= 0.5 and not re.search(r"rating|stars", active):
        choice = next((c for c in page.facets.get("rating", ()) if c.text.strip().startswith("4")), None)
        if choice is not None or no_filters:
            options.append((0.22 * p.review_reading * scale, _no_filter if choice is None else _clicker(
                s, "refine_rating", choice.name, band=choice.text)))
    if p.budget_sensitivity >= 0.5 and page.current_sort != "price_asc" and "price_asc" in page.sorts:
        options.append((0.25 * p.budget_sensitivity * scale, _clicker(s, "sort_price", page.sorts["price_asc"].name,
                                                                       aside(s, "budget"))))
    if p.review_reading >= 0.6 and page.current_sort != "rating" and "rating" in page.sorts:
        options.append((0.15 * p.review_reading * scale, _clicker(s, "sort_rating", page.sorts["rating"].name)))
    if s.want.department and "department" not in active:
        depts = page.facets.get("department", ())
        choice = match_choice(depts, s.want.department)
        if (choice is not None and len(depts) > 1) or no_filters:
            options.append((0.6, _no_filter if choice is None else _clicker(
                s, "refine_department", choice.name, dept=choice.text)))
    if fits >= 3:  # plenty to choose from already: refining is less tempting
        options = [(prob * 0.6, fn) for prob, fn in options]
    s.rng.shuffle(options)
    for prob, fn in options:
        if s.rng.random() < prob:
            step = fn()
            if step is not None:
                return step
            if no_filters:  # wanted to narrow the results down, and there is nothing to narrow them with
                return _without_filters(s)
    return None


def _narrower_query(s: ShopperState) -> str | None:
    """A query the intent suggests that adds words to the last one (a quality, the brand or the option it wants:
    "bed frame" -> "charcoal bed frame"), when searches are left; else None."""
    if not s.mem.searches or len(s.mem.searches) >= s.max_searches or s.steps_left < 5:
        return None
    last = set(s.mem.searches[-1].lower().split())
    used = {" ".join(q.lower().split()) for q in s.mem.searches}
    return next((text for _, text in query_variants(s.want) if text not in used and set(text.split()) > last), None)


def _search_narrower(s: ShopperState, query: str) -> Step | None:
    """Type the narrower query, or reach for a search box the page does not have (`detour_to_search`)."""
    if s.page.search_input is None:
        return detour_to_search(s, optional=True)
    return type_in(speak(s, "search_narrower", query=query), s.page.search_input, query)


def _without_filters(s: ShopperState) -> Step | None:
    """Leave a results page that cannot be filtered (`leave_without_filters`), or None to read on as it is."""
    if side_rng(s.rng, "no_filters").random() >= leave_without_filters(s.persona):
        return None
    return terminate(speak(s, "no_filters", budget_clause=budget_clause(s)))


def _no_filter() -> None:
    """The wish to filter on a page without filters: nothing to click."""
    return None


def _clicker(s: ShopperState, situation: str, name: str, aside: str | None = None,
             **facts: str) -> Callable[[], Step]:
    """A click on `name` to make later, if chosen: its rationale is only spoken (drawn) then."""
    return lambda: click(speak(s, situation, aside=aside, **facts), name)


def _refine_price(s: ShopperState) -> Step | None:
    """Type the budget as the maximum price, or click the narrowest price band that holds it."""
    page, cap = s.page, s.want.max_price
    if cap is None:
        return None
    budget = money(cap)
    if page.price_max_input and s.rng.random() < 0.5:
        value = f"{cap:g}"
        return type_in(speak(s, "refine_max", budget=budget, value=f"${value}"), page.price_max_input, value)
    bands = []
    for c in page.facets.get("price", ()):
        lo, hi = price_band(c.text)
        if lo is not None and lo < cap <= hi:
            bands.append((hi - lo, c))
    if bands:
        _, choice = min(bands, key=lambda b: b[0])
        return click(speak(s, "refine_price", budget=budget, band=choice.text), choice.name)
    if page.price_max_input:
        value = f"{cap:g}"
        return type_in(speak(s, "refine_max", budget=budget, value=f"${value}"), page.price_max_input, value)
    return None
