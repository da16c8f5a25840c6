"""The scripted shopper's reactions to how a store treats it (`agent.policy.scripted_traits`), on hand-written
pages, and on the real store's known-effect variants over HTTP."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest
from test_scripted import (
    BOOTS,
    CALM,
    DECISIVE,
    HEADER,
    OPENED,
    PAGES,
    RESULTS,
    SEARCHED,
    history_item,
    obs,
    page,
    persona,
    product_page,
    run,
)

from agent.policy.persona import Intent
from agent.policy.scripted import decide, step_rng
from agent.policy.scripted_traits import attention_span, side_rng
from envs.actions import Click, Terminate, TypeAndSubmit

RUSHED = persona(patience=0.0, decisiveness=1.0, exploration=0.0)
CALM_PERSONA = persona(patience=1.0, decisiveness=1.0, exploration=0.0)
SEEDS = range(60)


def with_load(ob, seconds: float | None):
    return dataclasses.replace(ob, load_s=seconds)


def test_side_rng_leaves_the_step_rng_alone():
    rng = step_rng(4, 2)
    before = rng.getstate()
    first = side_rng(rng, "x").random()
    assert rng.getstate() == before
    assert side_rng(step_rng(4, 2), "x").random() == first, "deterministic per seed and step"
    assert side_rng(step_rng(4, 2), "y").random() != first and side_rng(step_rng(5, 2), "x").random() != first


# ------------------------------------------------------------------------------------------------------- waiting
def slow(item, seconds: float = 4.0):
    """A history item whose page took `seconds` to arrive."""
    return dataclasses.replace(item, load_s=seconds)


def test_waits_under_a_second_and_one_slow_page_change_nothing():
    for key in ("home", "results", "product", "cart"):
        ob = page(key)
        history = {"home": [], "results": [SEARCHED], "product": [SEARCHED, OPENED],
                   "cart": [SEARCHED, OPENED]}[key]
        plain = run(RUSHED, BOOTS, history, ob)
        assert run(RUSHED, BOOTS, [slow(h) for h in history], with_load(ob, 0.9)) == plain, key
        assert run(RUSHED, BOOTS, [slow(h, 0.3) for h in history], with_load(ob, 9.0)) == plain, key  # a hiccup


def test_slow_pages_make_impatient_shoppers_leave():
    ob = page("results")
    rushed = run(RUSHED, BOOTS, [slow(SEARCHED)], with_load(ob, 4.0), seeds=SEEDS)
    calm = run(CALM_PERSONA, BOOTS, [slow(SEARCHED)], with_load(ob, 4.0), seeds=SEEDS)
    left = [s for s in rushed if isinstance(s.action, Terminate)]
    # 1 - exp(-3/5) = 45% for the least patient; 1 - exp(-3/50) = 6% for the most
    assert 15 <= len(left) <= 40 and sum(isinstance(s.action, Terminate) for s in calm) <= 10
    assert all("seconds" in s.rationale for s in left)
    fast = run(RUSHED, BOOTS, [SEARCHED], ob, seeds=SEEDS)
    for slow_step, fast_step in zip(rushed, fast, strict=True):  # who stays does exactly what it would have done
        if not isinstance(slow_step.action, Terminate):
            assert slow_step == fast_step


def test_reference_runs_can_ignore_the_clock():
    from agent.policy import make_policy
    from agent.policy.scripted import ScriptedConfig

    ob = with_load(page("results"), 9.0)
    deaf = ScriptedConfig(react_to_waits=False)
    assert run(RUSHED, BOOTS, [slow(SEARCHED)], ob, seeds=SEEDS, config=deaf) == run(
        RUSHED, BOOTS, [SEARCHED], page("results"), seeds=SEEDS, config=deaf)
    assert make_policy("scripted", react_to_waits=False).config.react_to_waits is False
    assert make_policy("scripted").config.react_to_waits is True


# ---------------------------------------------------------------------------------------------------- attention
def _results_with_target_at(position: int) -> str:
    cards = []
    for i in range(20):
        if i == position:
            cards.append('<article><h2><a name="search_results.trailcraft.title">Trailcraft Waterproof Hiking Boots'
                         '</a></h2><p>by Trailcraft</p> ★★★★☆ 4.4 (1,234 ratings) <p>$79.99</p></article>')
        else:
            cards.append(f'<article><h2><a name="search_results.mug_{i}.title">Ceramic Coffee Mug {i}</a></h2>'
                         f'<p>by Kilnware</p> ★★★★☆ 4.4 (50 ratings) <p>$9.99</p></article>')
    return HEADER.format(q="hiking boots", cart=0) + ("<main><h1>Results for “hiking boots”</h1>"
                                                      '<section aria-label="Search results">' + "".join(cards)
                                                      + "</section></main>")


def test_attention_reads_from_the_top_and_less_when_impatient():
    assert attention_span(RUSHED) == (4, 6) and attention_span(CALM_PERSONA) == (20, 20)
    ob = obs("http://shop/search?q=hiking+boots", _results_with_target_at(15))
    opened = lambda p: sum(isinstance(s.action, Click) and s.action.name == "search_results.trailcraft.title"  # noqa: E731
                           for s in run(p, BOOTS, [SEARCHED], ob, seeds=range(20), config=CALM))
    assert opened(CALM_PERSONA) == 20 and opened(RUSHED) == 0
    near_top = obs("http://shop/search?q=hiking+boots", _results_with_target_at(3))
    assert all(s.action.name == "search_results.trailcraft.title"
               for s in run(RUSHED, BOOTS, [SEARCHED], near_top, seeds=range(20), config=CALM))


# -------------------------------------------------------------------------------------------------- effort cost
NO_BOX_RESULTS = RESULTS.format(q="", cart=0).replace(
    '<form role="search">Search products <input name="search.products_input" type="search" value=""> '
    '<button name="search">Search</button></form>', '<a name="header.search">Search</a>')
NOTHING_FITS = NO_BOX_RESULTS.replace("Hiking Boots", "Tent").replace("Boot Socks", "Tent Pegs")


def test_an_extra_click_to_search_costs_some_shoppers_their_search():
    assert "search.products_input" not in NOTHING_FITS and "header.search" in NOTHING_FITS
    ob = obs("http://shop/search?q=hiking+boots", NOTHING_FITS)
    for p, share in ((CALM_PERSONA, 0.9), (RUSHED, 0.3)):
        steps = run(p, BOOTS, [SEARCHED], ob, seeds=range(200), config=CALM)
        names = Counter(s.action.name if isinstance(s.action, Click) else type(s.action).__name__ for s in steps)
        assert set(names) <= {"header.search", "Terminate", "pagination.next"}, names  # never types: no box
        wanting = names["header.search"] + names["Terminate"]  # those who wanted to search again rather than page
        assert share - 0.12 <= names["header.search"] / wanting <= share + 0.12, (p.patience, names)


def test_a_more_specific_search_is_worth_an_extra_click_to_fewer_shoppers():
    box = obs("http://shop/search?q=hiking+boots", RESULTS.format(q="hiking boots", cart=0))
    no_box = obs("http://shop/search?q=hiking+boots", NO_BOX_RESULTS)
    for p, share in ((persona(patience=1.0, exploration=1.0, budget_sensitivity=0.0, review_reading=0.0), 0.45),
                     (persona(patience=0.0, exploration=1.0, budget_sensitivity=0.0, review_reading=0.0), 0.15)):
        typed = [s for s in run(p, BOOTS, [SEARCHED], box, seeds=range(300))
                 if isinstance(s.action, TypeAndSubmit) and s.action.name == "search.products_input"]
        assert typed and all(s.action.text.lower() == "waterproof hiking boots" for s in typed)  # adds a word
        assert 100 <= len(typed) <= 250, len(typed)  # an exploratory shopper often narrows a two-word query
        detours = sum(isinstance(s.action, Click) and s.action.name == "header.search"
                      for s in run(p, BOOTS, [SEARCHED], no_box, seeds=range(300)))
        # the same seeds wish to narrow it (same options, same draws); half the usual detour rate pay for it
        assert share - 0.1 <= detours / len(typed) <= share + 0.1, (p.patience, detours, len(typed))


# ------------------------------------------------------------------------------------------------- no filters
WITH_FILTERS = RESULTS.format(q="hiking boots", cart=0)
NO_FILTERS = WITH_FILTERS[:WITH_FILTERS.index("<aside")] + WITH_FILTERS[WITH_FILTERS.index("</aside>") + 8:]


def test_a_shopper_who_wants_to_filter_and_cannot_may_leave():
    assert "refinements." not in NO_FILTERS and "search_results." in NO_FILTERS
    with_filters, without = (obs("http://shop/search?q=hiking+boots", html) for html in (WITH_FILTERS, NO_FILTERS))
    left = {}
    for patience in (0.0, 1.0):
        thrifty = persona(budget_sensitivity=1.0, exploration=1.0, review_reading=0.0, patience=patience)
        filtered = run(thrifty, BOOTS, [SEARCHED], with_filters, seeds=range(300))
        wished = sum(isinstance(s.action, (Click, TypeAndSubmit)) and s.action.name.startswith("refinements.price")
                     for s in filtered)
        steps = run(thrifty, BOOTS, [SEARCHED], without, seeds=range(300))
        gave_up = lambda step: isinstance(step.action, Terminate) and any(  # noqa: E731
            w in step.rationale for w in ("no filters", "narrow them down"))
        leaving = [s for s in steps if gave_up(s)]
        assert not any(gave_up(s) for s in filtered)
        assert 60 <= wished <= 200, wished  # the wish to filter by budget is common for this persona ...
        left[patience] = len(leaving) / wished  # ... and the same on both pages: same options, same draws
    # 0.2 + 0.6 (1 - patience) of those who wanted to filter leave: 80% of the least patient, 20% of the most
    assert 0.7 <= left[0.0] <= 0.9 and 0.1 <= left[1.0] <= 0.3, left


# ----------------------------------------------------------------------------------------- surprise at checkout
def _checkout(fee: float) -> str:
    total = 79.99 + fee
    fee_line = f"<p>Service fee: ${fee:.2f}</p>" if fee else ""
    return HEADER.format(q="", cart=1) + f"""<main><h1>Checkout</h1>
<fieldset><legend>Shipping address</legend>Full name <input name="shipping_address.full_name_input" value="A B">
</fieldset><button name="place_order">Place order</button>
<aside><h2>Order summary</h2><ul><li>1 × Trailcraft Men's Hiking Boots $79.99</li></ul>
<p>Items (1): $79.99</p><p>Shipping: Free</p>{fee_line}<p>Order total: ${total:.2f}</p>
<p><a name="order_summary.edit_cart">Edit cart</a></p></aside></main>"""


def test_a_surcharge_at_checkout_loses_price_sensitive_shoppers():
    history = [SEARCHED, OPENED, history_item("product", {"type": "click", "name": "trailcraft_hiking_boots.buy_now"})]
    fair, shock = obs("http://shop/checkout", _checkout(0)), obs("http://shop/checkout", _checkout(16.0))
    intent = Intent(text="I need hiking boots.")  # no budget: only the surprise matters
    thrifty, lavish = persona(budget_sensitivity=1.0, decisiveness=1.0), persona(budget_sensitivity=0.0,
                                                                               decisiveness=1.0)
    left = {}
    for name, p in (("thrifty", thrifty), ("lavish", lavish)):
        assert all(isinstance(s.action, Click) for s in run(p, intent, history, fair, seeds=SEEDS))
        steps = run(p, intent, history, shock, seeds=SEEDS)
        left[name] = [s for s in steps if isinstance(s.action, Terminate)]
        assert all("$16" in s.rationale for s in left[name])
    # 20% fee: 0.2 · (0.5 + 3) = 70% of the thrifty, 0.2 · 0.5 = 10% of the lavish
    assert 30 <= len(left["thrifty"]) <= 54 and len(left["lavish"]) <= 14


# --------------------------------------------------------------------------------------------- unnamed buttons
def _unnamed_product() -> str:
    html = product_page(size="10", color="Brown")
    return (html.replace('<button name="trailcraft_hiking_boots.add_to_cart">Add to Cart</button>',
                         '<button name="trailcraft_hiking_boots.button"></button>')
            .replace('<button name="trailcraft_hiking_boots.buy_now">Buy Now</button>',
                     '<button name="trailcraft_hiking_boots.button_2"></button>'))


def test_unnamed_buy_buttons_are_tried_once_or_given_up_on():
    ob = obs("http://shop/product/B1?size=10&color=brown", _unnamed_product())
    curious, incurious = persona(exploration=1.0, decisiveness=1.0), persona(exploration=0.0, decisiveness=1.0)
    for p, lo, hi in ((curious, 25, 50), (incurious, 0, 15)):  # 0.6 and 0.1 of the time
        steps = [s for s in run(p, BOOTS, [SEARCHED, OPENED], ob, seeds=SEEDS, config=CALM)
                 if not (isinstance(s.action, Click) and s.action.name.startswith("breadcrumb"))]
        pressed = [s for s in steps if isinstance(s.action, Click) and s.action.name.endswith(".button")]
        gave_up = [s for s in steps if isinstance(s.action, Terminate)]
        assert lo <= len(pressed) <= hi and len(pressed) + len(gave_up) == len(steps), p.exploration
    pressed_once = history_item("product", {"type": "click", "name": "trailcraft_hiking_boots.button"})
    tried = [SEARCHED, OPENED, dataclasses.replace(pressed_once, observation=_unnamed_product())]
    again = run(curious, BOOTS, tried, ob, seeds=SEEDS, config=CALM)
    assert not any(isinstance(s.action, Click) and s.action.name.endswith(".button") for s in again), "once only"


# ---------------------------------------------------------------------------------------------- the real store
@pytest.fixture(scope="module")
def items(store_db):
    from agent.wiring import featured_items

    return featured_items(12, 0, store_db)


@pytest.mark.parametrize("variant", ["unlabeled-buttons", "price-shock", "slow"])
def test_known_bad_variants_cost_the_scripted_shopper_purchases(variant, store_db, items, tmp_path):
    """Over HTTP on the real store: the same 12 shoppers and seeds buy less on the variant than on a, never more.

    `slow` runs with 1.2 s per page (below its default 1.5 s, to keep the test short); it costs a few percent of the
    visits per slow page, too few to show in 12 sessions, so there the test checks the waiting it measures."""
    from agent.policy.scripted import ScriptedPolicy
    from agent.runtime.session import RunConfig
    from agent.wiring import abtest_embedded

    config = RunConfig(site="unused", backend="http", concurrency=12, seed=0)
    delay = 1.2 if variant == "slow" else None
    result = abtest_embedded("a", variant, ScriptedPolicy, items, config, tmp_path, catalog=store_db,
                             page_delay=delay)
    paired = result.paired
    assert paired is not None and paired.pairs == 12
    assert paired.conversion_table["b_only"] == 0, paired.conversion_table
    if variant == "slow":
        assert paired.seconds.diff.estimate > 3 and paired.seconds.detected
    else:
        assert paired.conversion_table["a_only"] >= 1, paired.conversion_table


def test_random_module_is_not_used_for_reactions():
    """The reactions draw only from the step's side generator: the global `random` state is untouched."""
    random.seed(123)
    state = random.getstate()
    decide(RUSHED, BOOTS, [slow(SEARCHED)], with_load(page("results"), 4.0), step_rng(1, 1))
    assert random.getstate() == state
    assert PAGES and DECISIVE  # the shared pages and personas are the ones test_scripted uses
