"""The scripted shopper, one handler per page kind, and the registry that picks one: `handler_for(kind)`.

Each handler is a function `ShopperState -> Step` (rationale, action). The page kinds are those `page_reader` tells
apart: home, results, product (with the store's notices about options), cart, checkout, order (the confirmation),
error, and other (any page it does not recognise). `after_failure` answers instead of the page's handler when the
previous action failed. The search results and product handlers, the big ones, have modules of their own
(`scripted_results`, `scripted_product`).
"""

from __future__ import annotations

from collections.abc import Callable

from .page_reader import PageKind, match_choice
from .scripted_acts import aside, budget_clause, click, next_query, search, speak, terminate, type_in
from .scripted_product import on_product
from .scripted_results import median_price, on_results
from .scripted_state import ShopperState, Step, judge_card
from .scripted_text import money, relevance, short_title
from .scripted_traits import leave_after_surcharge, side_rng

__all__ = ["HANDLERS", "Handler", "after_failure", "handler_for", "on_cart", "on_checkout", "on_error", "on_home",
           "on_order", "on_other", "on_product", "on_results"]

Handler = Callable[[ShopperState], Step]


def on_home(s: ShopperState) -> Step:
    """Go to the cart when something is in it; else browse the intent's department, open a featured product that is
    exactly what it wants, or search (or leave when patience is out or no query is left).

    Traits: `brand_loyalty` leans the first query towards the brand; `review_reading` sets the lowest rating a
    featured product may have; `patience` is the step budget.
    """
    page = s.page
    if s.mem.added and page.cart_link and (page.cart_count or 0) > 0:
        return click(speak(s, "go_to_cart", item=short_title(s.mem.added)), page.cart_link)
    if s.steps_left <= 0 and s.steps > 0:
        return terminate(speak(s, "out_of_patience", aside=aside(s, "impatient")))
    if s.want.department and not s.mem.searches:
        dept = match_choice(page.departments, s.want.department)
        if dept is not None and (s.rng.random() < 0.75 or page.search_input is None):
            return click(speak(s, "browse_department", dept=dept.text), dept.name)
    if not s.mem.searches and s.want.terms:
        ref = median_price([c.price_min for c in page.cards])
        for card in page.cards:
            j = judge_card(s, card, ref)
            if j.fit and relevance(card.title, s.want) >= 0.99 and s.rng.random() < 0.5:
                return click(speak(s, "featured", title=short_title(card.title), price=money(card.price_min)),
                             card.name)
    step = search(s, "search" if not s.mem.searches else "search_again")
    if step is not None:
        return step
    return terminate(speak(s, "nothing_fits", budget_clause=budget_clause(s)))


def on_cart(s: ShopperState) -> Step:
    """Check out, or abandon the cart now and then (`ScriptedConfig.abandon_rate`). An empty cart sends it back to
    shopping.

    Traits: low `decisiveness` and high `budget_sensitivity` abandon more, and a total over budget more still.
    """
    page, p = s.page, s.persona
    if not page.cart_items or not page.checkout_link:
        if page.continue_link and s.steps_left > 2:
            return click(speak(s, "empty_cart"), page.continue_link)
        step = search(s, "search_again") if s.steps_left > 2 else None
        if step is not None:
            return step
        return terminate(speak(s, "out_of_patience"))
    total = page.cart_total
    item = short_title(page.cart_items[0])
    abandon = s.config.abandon_rate + 0.25 * (1 - p.decisiveness) * (0.5 + p.budget_sensitivity)
    if s.want.max_price and total and total > s.want.max_price:
        abandon += 0.4 * p.budget_sensitivity
    if s.rng.random() < abandon:
        pricey = p.budget_sensitivity >= 0.6 or bool(s.want.max_price and total and total > 0.8 * s.want.max_price)
        return terminate(speak(s, "abandon_price" if pricey else "abandon", total=money(total)))
    return click(speak(s, "checkout", item=item, total=money(total)), page.checkout_link)


def on_checkout(s: ShopperState) -> Step:
    """Place the order, unless a fee first shown here puts it off (`leave_after_surcharge`) or it hesitates.

    Traits: `budget_sensitivity` (the surcharge, a total over budget); low `decisiveness` hesitates a little.
    """
    page, p = s.page, s.persona
    if page.place_order is None:
        return on_other(s)
    items, total = page.items_total, page.order_total
    if items and total and total > items:  # something on top of the items, first shown here
        if side_rng(s.rng, "surcharge").random() < leave_after_surcharge(p, total / items - 1):
            return terminate(speak(s, "surcharge", extra=money(total - items), total=money(total)))
    hesitate = 0.03 * (1 - p.decisiveness)
    if s.want.max_price and page.order_total and page.order_total > s.want.max_price * 1.05:
        hesitate += 0.5 * p.budget_sensitivity
    if s.rng.random() < hesitate:
        return terminate(speak(s, "hesitate_checkout", total=money(page.order_total)))
    return click(speak(s, "place_order", total=money(page.order_total)), page.place_order)


def on_order(s: ShopperState) -> Step:
    """The order is placed: done. No trait matters here."""
    return terminate(speak(s, "done"))


def on_error(s: ShopperState) -> Step:
    """An error page: search again (half the time, when there is a box), else go home, else leave. No trait
    matters here."""
    page = s.page
    if page.search_input and s.rng.random() < 0.5:
        q = next_query(s) or (("again", s.mem.searches[-1]) if s.mem.searches else None)
        if q is not None:
            return type_in(speak(s, "error_search", query=q[1]), page.search_input, q[1])
    if page.home_link:
        return click(speak(s, "error_page"), page.home_link)
    return terminate(speak(s, "out_of_patience"))


def on_other(s: ShopperState) -> Step:
    """A page it does not recognise (and a checkout page without "Place order"): search, else go home, else leave.

    Traits: `patience` (the step budget).
    """
    page = s.page
    if page.search_input and s.steps_left > 1:
        step = search(s, "search" if not s.mem.searches else "search_again")
        if step is not None:
            return step
    if page.home_link and s.steps_left > 1:
        return click(speak(s, "leave_page"), page.home_link)
    return terminate(speak(s, "out_of_patience"))


def after_failure(s: ShopperState, error: str) -> Step:
    """The previous action failed (outside cart, checkout and order pages): search again (three times in four), else
    go home; after three failures in a row, leave. No trait matters here."""
    short = error.split(";")[0][:80]
    page = s.page
    if s.mem.errors_in_row < 3:
        q = next_query(s) if page.search_input else None
        if q is None and s.mem.searches and page.search_input:
            q = ("again", s.mem.searches[-1])
        if q is not None and page.search_input and s.rng.random() < 0.75:
            return type_in(speak(s, "recover_search", error=short, query=q[1]), page.search_input, q[1])
        if page.home_link and page.kind != "home":
            return click(speak(s, "recover_home", error=short), page.home_link)
        if q is not None and page.search_input:
            return type_in(speak(s, "recover_search", error=short, query=q[1]), page.search_input, q[1])
    return terminate(speak(s, "out_of_patience"))


HANDLERS: dict[PageKind, Handler] = {
    "home": on_home, "results": on_results, "product": on_product, "cart": on_cart, "checkout": on_checkout,
    "order": on_order, "error": on_error, "other": on_other,
}
"""Page kind → its handler."""


def handler_for(kind: PageKind) -> Handler:
    """The handler of page kind `kind`; `on_other` for a kind without one."""
    return HANDLERS.get(kind, on_other)
