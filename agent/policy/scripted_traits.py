"""How the scripted shopper reacts to what people react to: attention, waiting, effort, surprise costs, dead ends.

Used by :mod:`agent.policy.scripted`. Each reaction is a pure function of the persona's existing traits
(`agent.policy.persona.Persona`), so it needs no new fields and a persona file written before it still works:

- **attention**: shoppers read a page from the top, and how far down they read grows with `patience`. Results:
  4 to 20 (:func:`attention_span`), so the least patient judge only the first handful a search returns and the
  most patient read two pages' worth of a long list: position bias, the reason a store's ranking matters (on a
  results page people look at the top few results far more than at the rest: Joachims et al. 2005, "Accurately
  interpreting clickthrough data as implicit feedback", SIGIR). Reviews: at least the 6 a generated product has
  at most, up to 20 for the most patient.
- **patience in seconds**: waits under :data:`FLOW_LIMIT_S` (1 s, the limit for an uninterrupted flow of thought,
  Nielsen 1993) go unnoticed, and so does one slow page. On a site slow page after page, each longer wait may end
  the visit: the chance grows with the excess wait and shrinks with `patience` (:func:`leave_after_wait`).
- **effort cost**: when the search box is not on the page, reaching it costs a click. Patient shoppers take the
  detour more often; the others give up on searching (:func:`take_detour`). It bites on every search after the
  first: a new query when nothing fits, or a more specific one when the results are broader than wanted (people
  refine a query by adding words far more often than they start over).
- **price sensitivity at checkout**: charges on top of the items that first appear at checkout (a fee) make shoppers
  leave, the more so the bigger the surprise and the higher `budget_sensitivity` (:func:`leave_after_surcharge`).
- **giving up when the needed thing is not findable**: on a product page whose buy buttons have no names, curious
  (`exploration`) shoppers press an unnamed button once; the rest, and anyone it did not help, give up
  (:func:`try_unnamed_button`). On a results page with no filters at all, a shopper who wanted to narrow the
  results (to its budget, its brand) and finds nothing to narrow them with may leave (:func:`leave_without_filters`);
  the intention to filter is the one it forms on any store (`scripted_results`), so this fires only where filters
  are missing.

Every draw comes from :func:`side_rng`, derived from the step's rng without consuming it: a reaction that does not
fire leaves every other decision of the step exactly as it was, so on the default store (where none fires) the
shopper behaves as before, and all of it stays deterministic per session seed and step. (Attention is the one
trait that shapes every session: it sets how many results are judged at all.)

>>> from agent.policy.persona import Persona
>>> calm, rushed = Persona(persona_id="c", name="C", patience=0.9), Persona(persona_id="r", name="R", patience=0.1)
>>> attention_span(calm), attention_span(rushed)
((18, 19), (6, 7))
>>> leave_after_wait(calm, 0.8, 1.5), round(leave_after_wait(rushed, 1.5, 1.5), 3), leave_after_wait(rushed, 1.5, 0.2)
(0.0, 0.051, 0.0)
>>> round(leave_after_wait(calm, 1.5, 1.5), 3)
0.011
>>> round(1 - math.exp(-0.5 / 9.5), 3)  # the rushed one by hand: tolerance 5 + 45 · 0.1 = 9.5 s
0.051
"""

from __future__ import annotations

import math
import random

from .persona import Persona

__all__ = ["FLOW_LIMIT_S", "attention_span", "leave_after_surcharge", "leave_after_wait", "leave_without_filters",
           "side_rng", "take_detour", "try_unnamed_button"]

FLOW_LIMIT_S = 1.0
"""Waits up to this many seconds go unnoticed (Nielsen 1993, "Usability Engineering", ch. 5: 1 s keeps the flow)."""
RESULTS_READ = (4, 20)  # results judged on a page by the least and the most patient shopper
REVIEWS_SHOWN = 6  # the most reviews a generated product has


def side_rng(rng: random.Random, salt: str) -> random.Random:
    """A generator seeded from `rng`'s state and `salt`, leaving `rng` untouched (same seed and step, same draws)."""
    state = rng.getstate()[1]
    return random.Random(f"{salt}:{state[0]}:{state[1]}:{state[2]}:{state[-1]}")


def attention_span(persona: Persona) -> tuple[int, int]:
    """(results, reviews) read from the top of a page.

    Results: 4 + 16 · patience (the default store shows 10 a page, so a shopper with patience under 0.4 judges
    fewer than a page). Reviews: never fewer than a generated product has (6), up to 14 more with patience.
    """
    least, most = RESULTS_READ
    return least + round((most - least) * persona.patience), REVIEWS_SHOWN + round(14 * persona.patience)


def leave_after_wait(persona: Persona, wait_s: float | None, previous_s: float | None = None) -> float:
    """The chance of leaving after waiting `wait_s` seconds for a page: 1 - exp(-(wait - 1 s) / tolerance).

    tolerance = 5 + 45 · patience seconds: a page 1.5 s late costs the least patient shopper about 5% of its visits
    per page, the most patient about 1%. Only a site that is slow twice in a row counts (`previous_s`, the page
    before, also over `FLOW_LIMIT_S`): one slow page is a hiccup, which people forgive, and which on a busy machine
    says nothing about the store. 0 when either wait is under the limit or unknown.
    """
    if wait_s is None or wait_s <= FLOW_LIMIT_S or previous_s is None or previous_s <= FLOW_LIMIT_S:
        return 0.0
    tolerance = 5.0 + 45.0 * persona.patience
    return 1.0 - math.exp(-(wait_s - FLOW_LIMIT_S) / tolerance)


def take_detour(persona: Persona, optional: bool = False) -> float:
    """The chance of paying an extra click to reach the search box: 0.3 + 0.6 · patience (0.3 to 0.9), and half
    that for an `optional` search (a more specific query while the results already hold something to look at):
    the click is worth what the search is expected to bring."""
    return (0.3 + 0.6 * persona.patience) * (0.5 if optional else 1.0)


def leave_after_surcharge(persona: Persona, share: float) -> float:
    """The chance of leaving when checkout adds `share` (0.2 = 20%) on top of the items.

    share · (0.5 + 3 · budget_sensitivity), at most 0.95: a 20% fee loses a tenth of the least price-sensitive
    shoppers and over half of the most. 0 when nothing is added.
    """
    if share <= 0.005:  # rounding, not a charge
        return 0.0
    return min(0.95, share * (0.5 + 3.0 * persona.budget_sensitivity))


def leave_without_filters(persona: Persona) -> float:
    """The chance of leaving when the shopper wanted to narrow the results and the page has no filters at all:
    0.2 + 0.6 · (1 - patience) (0.2 to 0.8). The patient page through by hand instead."""
    return 0.2 + 0.6 * (1.0 - persona.patience)


def try_unnamed_button(persona: Persona) -> float:
    """The chance of pressing a button that says nothing about what it does: 0.1 + 0.5 · exploration."""
    return 0.1 + 0.5 * persona.exploration
