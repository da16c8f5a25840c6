"""A scripted, persona-driven shopper: our stand-in for human logs, and the reference labeller for training.

`decide(persona, intent, history, observation, rng)` is a pure function. Everything it knows comes from the persona,
the intent as the prompt shows it (`text`, `max_price`, `options`; never `target_asin`, `keywords` or `department`),
the history (previous pages, actions and rationales) and the current simplified page. Its "memory" (products viewed,
searches typed, patience left) is re-derived from the history each step, so it can label any state:
`label(persona, intent, history, observation, seed)` answers "what would this persona do here?", also on states it
never reached itself (online RL).

How it shops, in short: it searches with a human-like query built from the intent (shortened, reworded, brand first
for brand lovers, rarely with a typo); scans results judging relevance, price against its budget, ratings and
brands; sometimes refines, sorts or makes its query more specific the way its traits suggest; opens the most
promising product, reads its reviews, picks the options it wants, compares a few products when it is indecisive, and
buys through the cart (or "Buy now" when it is impulsive). It re-searches when results are poor, paginates when
patient, abandons a cart now and then, recovers from failed actions, and leaves (`terminate`) when nothing fits or
its patience (a step budget) runs out.

It also reacts to how the store treats it, as people do (`scripted_traits`, driven by the same persona traits):
it reads a page from the top and judges fewer results when impatient (attention: position bias, which is what
makes a store's ranking matter); a page that keeps it waiting over a second may make it leave (patience in
seconds); an extra click to reach the search box may make it stop searching (effort cost); a fee that first appears
at checkout may make it abandon (price sensitivity); when it wanted to narrow the results and the page has no
filters, or when it cannot find how to buy (unnamed icon buttons; it tries one once if curious), it may give up.
Apart from attention, none of these fire on the default store, and they draw from a side generator.

Randomness comes only from `rng`; `ScriptedPolicy` derives it from `(request.seed, request.step)`, so a run is
reproducible. Rationales are first-person, name the product, price, rating, brand or filter that drove the action,
and are drawn from several templates per situation.

Where each part lives: `scripted_state` (what the shopper knows: `ShopperState`, its habits, its memory and its
judgement of products), `scripted_acts` (speaking, clicking, typing, searching), `scripted_pages` (one handler per
page kind, and the registry `handler_for`), with the two big handlers in `scripted_results` and `scripted_product`.
This module holds the checks that come before any page (`_decide`) and the policy.

>>> from agent.policy.persona import Intent, Persona
>>> from envs.observation import ElementRef, Observation
>>> home = Observation(url="http://shop/", title="Home", html='<form role="search"><input name="search.q_input" '
...                    'type="search"></form>', elements=(ElementRef("search.q_input", "input"),))
>>> step = label(Persona(persona_id="p", name="Kim"), Intent(text="I need a yoga mat under $40.", max_price=40),
...              [], home, seed=1)
>>> step.action.type, step.action.name, "yoga mat" in step.action.text
('type_and_submit', 'search.q_input', True)
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from envs.actions import Terminate, TypeAndSubmit
from envs.observation import Observation

from .base import Policy, PolicyRequest, PolicyResponse
from .persona import Intent, Persona
from .prompt import HistoryItem
from .schema import ShopperStep, format_step
from .scripted_acts import click, speak, terminate
from .scripted_pages import after_failure, handler_for
from .scripted_state import Action, ShopperState, Step, start
from .scripted_text import money
from .scripted_traits import leave_after_wait, side_rng

__all__ = ["ScriptedConfig", "ScriptedPolicy", "decide", "label", "step_rng"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScriptedConfig:
    """Knobs of the scripted shopper. The defaults were tuned on the embedded store (variant a, 2,000 products) to a
    purchase rate of about half and 6 to 15 steps a session."""

    min_patience_steps: int = field(default=6, metadata={"help": "Step budget of the least patient persona."})
    max_patience_steps: int = field(default=25, metadata={"help": "Step budget of the most patient persona."})
    hard_max_steps: int = field(
        default=28, metadata={"help": "Leave (or finish checking out) by this step, whatever the patience. Keep it "
                                      "below RunConfig.max_steps (30) so sessions end by choice, not truncation."})
    typo_rate: float = field(default=0.03, metadata={"help": "Chance that a typed query has one swapped letter pair."})
    abandon_rate: float = field(default=0.25, metadata={"help": "Base chance of leaving at the cart; indecisive and "
                                                               "over-budget shoppers leave more often."})
    walk_away_rate: float = field(default=0.6, metadata={"help": "Chance that a fully undecided shopper leaves a "
                                                                  "product that fits instead of buying it (scaled by "
                                                                  "(1 - decisiveness)^2)."})
    refine_rate: float = field(default=1.0, metadata={"help": "Scales every refine/sort probability."})
    aside_rate: float = field(default=0.15, metadata={"help": "Chance of a persona aside in a rationale."})
    option_slip_rate: float = field(
        default=0.0, metadata={"help": "Chance that a shopper presses Add to Cart / Buy Now before choosing the "
                                       "options the intent says nothing about, once a product, then answers the "
                                       "store's \"Please choose a size\" notice. 0: never (the reference sessions "
                                       "then never show that page, and a model trained on them cannot recover "
                                       "from it)."})
    react_to_waits: bool = field(
        default=True, metadata={"help": "Leave a site that keeps the shopper waiting (`scripted_traits`). Off, a "
                                        "session depends on its seed alone, never on the clock: for reference data "
                                        "recorded on a busy machine, where the simulator, not the store, is slow."})

    def __post_init__(self) -> None:
        if not 1 <= self.min_patience_steps <= self.max_patience_steps <= self.hard_max_steps:
            raise ValueError("Expect 1 <= min_patience_steps <= max_patience_steps <= hard_max_steps, actually: "
                             f"{self.min_patience_steps}, {self.max_patience_steps}, {self.hard_max_steps}")
        for key in ("typo_rate", "abandon_rate", "walk_away_rate", "aside_rate", "option_slip_rate"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"Expect {key} in [0, 1], actually: {getattr(self, key)}")
        if self.refine_rate < 0:
            raise ValueError(f"Expect refine_rate >= 0, actually: {self.refine_rate}")


# --------------------------------------------------------------------------------------------------------------------
# The policy


def step_rng(seed: int, step: int) -> random.Random:
    """The randomness of one step of one session: a function of the session seed and the step only."""
    return random.Random(f"scripted:{seed}:{step}")


class ScriptedPolicy(Policy):
    """The scripted shopper as a `Policy`: each request is answered by `decide`, with `step_rng(seed, step)`."""

    name = "scripted"
    max_batch = 64

    def __init__(self, config: ScriptedConfig | None = None):
        self.config = config or ScriptedConfig()

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        responses = []
        for req in requests:
            step = decide(req.persona, req.intent, req.history, req.observation, step_rng(req.seed, req.step),
                          self.config)
            responses.append(PolicyResponse(step=step, raw=format_step(step)))
        return responses

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self.config)}


def label(persona: Persona, intent: Intent, history: Sequence[HistoryItem], observation: Observation, seed: int = 0,
          config: ScriptedConfig | None = None) -> ShopperStep:
    """What this persona would do in this state: `decide` with the rng of step `len(history)` of session `seed`."""
    return decide(persona, intent, history, observation, step_rng(seed, len(history)), config)


def decide(persona: Persona, intent: Intent, history: Sequence[HistoryItem], observation: Observation,
           rng: random.Random, config: ScriptedConfig | None = None) -> ShopperStep:
    """The next step of a shopper with this persona and intent, after `history`, on `observation`."""
    s = start(persona, intent, history, observation, rng, config or ScriptedConfig())
    rationale, action = _decide(s)
    if not _valid(s, action):
        log.warning("scripted shopper chose %r, which is not on %s; falling back", action, s.page.url)
        rationale, action = _fallback(s)
    return ShopperStep(rationale=rationale, action=action)


def _decide(s: ShopperState) -> Step:
    """Checks that come before any page: the hard step limit, a site too slow to bear (`leave_after_wait`, driven
    by `patience`), a failed last action; then the handler of the page's kind (`scripted_pages.handler_for`)."""
    page = s.page
    if s.steps >= s.config.hard_max_steps:
        if page.kind == "checkout" and page.place_order:
            return click(speak(s, "place_order", total=money(page.order_total)), page.place_order)
        return terminate(speak(s, "out_of_patience"))
    previous = s.history[-1].load_s if s.history else None
    wait_risk = leave_after_wait(s.persona, s.load_s, previous) if s.config.react_to_waits else 0.0
    if page.kind != "order" and wait_risk > 0 and side_rng(s.rng, "wait").random() < wait_risk:
        return terminate(speak(s, "slow_page", wait=f"{s.load_s:.1f}"))
    last = s.history[-1] if s.history else None
    if last is not None and last.error and page.kind not in ("cart", "checkout", "order"):
        return after_failure(s, last.error)
    return handler_for(page.kind)(s)


def _valid(s: ShopperState, action: Action) -> bool:
    """Whether `action` names an element of the page of the right kind (typing into an input, clicking the rest)."""
    if isinstance(action, Terminate):
        return True
    kind = s.kinds.get(action.name)
    return kind == ("input" if isinstance(action, TypeAndSubmit) else "clickable")


def _fallback(s: ShopperState) -> Step:
    if s.page.home_link and s.page.kind != "home":
        return click(speak(s, "leave_page"), s.page.home_link)
    return terminate(speak(s, "out_of_patience"))
