"""The scripted shopper on a product page (and on the store's notices there, such as "Please choose a size"):
`on_product`."""

from __future__ import annotations

import re

from envs.actions import Click

from .page_reader import Choice, OptionGroup, ProductView, kinds_from_html, option_choice, read_page, same_label
from .scripted_acts import aside, budget_clause, click, habits, search, speak, terminate
from .scripted_state import ShopperState, Step, brand_bonus, judge_product, title_key
from .scripted_text import money, short_title
from .scripted_traits import side_rng, try_unnamed_button

__all__ = ["on_product"]


def on_product(s: ShopperState) -> Step:
    """Judge the product (relevance, budget, the options the intent asks for, rating and the reviews it reads), then
    leave it, compare it with others, read its reviews, choose its options, or buy it.

    Traits: `brand_loyalty` leaves a product of another brand than the one asked for; `decisiveness` and
    `exploration` set how many products it compares first, how often an undecided shopper walks away, and (with
    little `review_reading`) how often it presses "Buy now" on impulse rather than "Add to Cart"; `review_reading`
    opens the reviews and sets the lowest rating it accepts; `budget_sensitivity` and a favourite brand colour the
    rationale. When the store complains about a missing option (a notice), it picks one. With no labelled way to buy
    (icon buttons), a curious (`exploration`) shopper presses one once, else leaves (`try_unnamed_button`).
    """
    pv = s.page.product
    assert pv is not None
    mem, p = s.mem, s.persona
    key = title_key(pv.title)
    title = short_title(pv.title)
    judged = judge_product(s, pv)
    seen_before = key in mem.viewed
    deferred = seen_before and mem.viewed[key].left

    if mem.same_product_steps > len(pv.options) + 3:  # stuck on this page: move on
        return _leave_product(s, "back_to_results", {})
    if not judged.fit:
        facts = {"title": title, "price": money(pv.price_min), "budget": money(s.want.max_price),
                 "rating": f"{pv.rating:g}" if pv.rating is not None else "few", **judged.detail}
        return _leave_product(s, judged.reason, facts)

    if (not seen_before and s.want.brand and p.brand_loyalty >= 0.75 and pv.brand
            and pv.brand.lower() != s.want.brand.lower() and s.steps_left > 5 and s.rng.random() < 0.3):
        return _leave_product(s, "wrong_brand", {"title": title, "brand": pv.brand, "preferred": s.want.brand})
    fit_views_before = sum(1 for k, seen in mem.viewed.items() if seen.fit and k != key)
    if (not seen_before and fit_views_before + 1 < s.views_wanted and pv.back and s.steps_left > 4
            and s.rng.random() < 0.85):
        return click(speak(s, "compare", title=title, price=money(pv.price_min),
                           rating=f"{pv.rating:g}" if pv.rating is not None else "no"), pv.back)
    if pv.reviews_link and p.review_reading >= 0.7 and key not in mem.reviews_read and s.rng.random() < 0.8:
        return click(speak(s, "read_reviews", title=title), pv.reviews_link)

    option = _wanted_option(s, pv)
    if option is None and not _slips(s, pv):
        option = _any_option(s, pv)
    if option is not None:
        return option

    summary = _facts(s, pv)
    walk_away = s.config.walk_away_rate * (1 - p.decisiveness) ** 2 + (0.25 if s.want.department else 0.0)
    if not mem.added and s.rng.random() < walk_away:
        return terminate(speak(s, "walk_away", title=title, price=money(pv.price_min)))
    if pv.add_to_cart is None and pv.buy_now is None and pv.unnamed:
        return _press_unnamed(s, pv)
    kind = "decide_after_compare" if deferred or fit_views_before > 0 else "add_to_cart"
    impulse = 0.05 + max(0.0, p.decisiveness - 0.5) * 1.4 * (1 - 0.5 * p.review_reading)
    if pv.buy_now and (pv.add_to_cart is None or (kind == "add_to_cart" and s.rng.random() < impulse)):
        return click(speak(s, "buy_now", title=title, facts=summary), pv.buy_now)
    if pv.add_to_cart:
        return click(speak(s, kind, title=title, facts=summary, aside=aside(s, *habits(s, pv.brand))),
                     pv.add_to_cart)
    return _leave_product(s, "back_to_results", {})


def _press_unnamed(s: ShopperState, pv: ProductView) -> Step:
    """No labelled way to buy: press an unnamed button once if curious enough (`try_unnamed_button`), else leave."""
    title = short_title(pv.title)
    if not _pressed_unnamed(s) and side_rng(s.rng, "unnamed").random() < try_unnamed_button(s.persona):
        return click(speak(s, "try_unnamed", title=title), pv.unnamed[0])
    return terminate(speak(s, "cannot_buy", title=title))


def _pressed_unnamed(s: ShopperState) -> bool:
    """Whether this session has already pressed an unnamed button on a product page."""
    for h in s.history:
        if isinstance(h.action, Click):
            past = read_page(h.url, h.observation, kinds_from_html(h.observation)).product
            if past is not None and h.action.name in past.unnamed:
                return True
    return False


def _leave_product(s: ShopperState, reason: str, facts: dict[str, str]) -> Step:
    """Back to the results, saying why (or search again, go home, or leave the store when patience is out)."""
    pv = s.page.product
    templates = {"not_relevant", "over_budget", "bad_reviews", "bad_reviews_read", "missing_option", "wrong_brand"}
    situation = reason if reason in templates else "back_to_results"
    if s.steps_left <= 1:
        return terminate(speak(s, "out_of_patience", aside=aside(s, "impatient")))
    if pv is not None and pv.back:
        return click(speak(s, situation, **facts), pv.back)
    step = search(s, "search_again")
    if step is not None:
        return step
    if s.page.home_link:
        return click(speak(s, "leave_page"), s.page.home_link)
    return terminate(speak(s, "nothing_fits", budget_clause=budget_clause(s)))


def _wanted_option(s: ShopperState, pv: ProductView) -> Step | None:
    """Click an option the intent asks for and the page has not selected yet."""
    for group in pv.options:
        wanted_value = next((v for k, v in s.want.options.items() if same_label(k, group.label)), None)
        wanted = option_choice(group, wanted_value)
        if wanted is not None and (group.selected is None or group.selected.name != wanted.name):
            return click(speak(s, "option_wanted", value=wanted.text, group=group.label.lower()), wanted.name)
    return None


def _slips(s: ShopperState, pv: ProductView) -> bool:
    """Whether the shopper goes for the buy button with an option still unchosen (`option_slip_rate`): only on
    a page the store has not yet complained about, and once a product."""
    if (s.config.option_slip_rate <= 0 or pv.notices or all(g.selected is not None for g in pv.options)
            or not (pv.add_to_cart or pv.buy_now)):
        return False
    buttons = {pv.add_to_cart, pv.buy_now} - {None}
    if any(isinstance(h.action, Click) and h.action.name in buttons for h in s.history):
        return False
    return side_rng(s.rng, "slip").random() < s.config.option_slip_rate


def _any_option(s: ShopperState, pv: ProductView) -> Step | None:
    """Click a value for the first option the store still needs ("option_fix" when a notice asked for it)."""
    for group in pv.options:
        if group.selected is not None:
            continue
        choice = _pick_any(s, group)
        situation = "option_fix" if any(group.label.lower() in n.lower() for n in pv.notices) else "option_any"
        return click(speak(s, situation, value=choice.text, group=group.label.lower()), choice.name)
    return None


def _pick_any(s: ShopperState, group: OptionGroup) -> Choice:
    """A value for an option the intent says nothing about: the middle sizes are popular, else anything."""
    choices = list(group.choices)
    if len(choices) > 2 and re.search(r"size", group.label, re.I):
        mid = len(choices) // 2
        weights = [1.0 / (1 + abs(i - mid)) for i in range(len(choices))]
        return s.rng.choices(choices, weights=weights)[0]
    return s.rng.choice(choices)


def _facts(s: ShopperState, pv: ProductView) -> str:
    """What sold it, for the rationale: price (against the budget when `budget_sensitivity` is high), rating, a
    favourite brand, and the reviews read (when `review_reading` is high)."""
    parts = [("from " if pv.price_max and pv.price_min and pv.price_max > pv.price_min else "")
             + money(pv.price_min)]
    if s.want.max_price and s.persona.budget_sensitivity >= 0.5:
        parts[0] += f", under my {money(s.want.max_price)} budget"
    if pv.rating is not None:
        parts.append(f"{pv.rating:g} stars from {pv.reviews or 0:,} ratings")
    if brand_bonus(s, pv.brand) >= 0.4:
        parts.append(f"made by {pv.brand}")
    stars = pv.review_stars[:s.reviews_read]
    if s.persona.review_reading >= 0.6 and stars:
        good = sum(1 for g in stars if g >= 4)
        parts.append(f"{good} of the {len(stars)} reviews I read are positive")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
