"""A scripted, persona-driven shopper: our stand-in for human logs, and the reference labeller for training.

`decide(persona, intent, history, observation, rng)` is a pure function. Everything it knows comes from the persona,
the intent as the prompt shows it (`text`, `max_price`, `options`; never `target_asin`, `keywords` or `department`),
the history (previous pages, actions and rationales) and the current simplified page. Its "memory" (products viewed,
searches typed, patience left) is re-derived from the history each step, so it can label any state:
`label(persona, intent, history, observation, seed)` answers "what would this persona do here?", also on states it
never reached itself (online RL).

How it shops, in short: it searches with a human-like query built from the intent (shortened, reworded, brand first
for brand lovers, rarely with a typo); scans results judging relevance, price against its budget, ratings and brands;
sometimes refines or sorts the way its traits suggest; opens the most promising product, reads its reviews, picks
the options it wants, compares a few products when it is indecisive, and buys through the cart (or "Buy now" when it
is impulsive). It re-searches when results are poor, paginates when patient, abandons a cart now and then, recovers
from failed actions, and leaves (`terminate`) when nothing fits or its patience (a step budget) runs out.

It also reacts to how the store treats it, as people do (`scripted_traits`, driven by the same persona traits):
it reads a page from the top and reads less of a long page when impatient (attention); a page that keeps it waiting
over a second may make it leave (patience in seconds); an extra click to reach the search box may make it stop
searching (effort cost); a fee that first appears at checkout may make it abandon (price sensitivity); and when it
cannot find how to buy (unnamed icon buttons) it tries one once if curious, else gives up. On the default store none
of these fire, and they draw from a side generator, so the shopper's choices there are what they were.

Randomness comes only from `rng`; `ScriptedPolicy` derives it from `(request.seed, request.step)`, so a run is
reproducible. Rationales are first-person, name the product, price, rating, brand or filter that drove the action,
and are drawn from several templates per situation.

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

import hashlib
import logging
import random
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from envs.actions import Click, Terminate, TypeAndSubmit
from envs.observation import Observation

from .base import Policy, PolicyRequest, PolicyResponse
from .page_reader import (
    Card,
    Choice,
    OptionGroup,
    ProductView,
    kinds_from_html,
    match_choice,
    option_choice,
    option_group,
    price_band,
    read_page,
    same_label,
)
from .persona import Intent, Persona
from .prompt import HistoryItem
from .schema import ShopperStep, format_step
from .scripted_text import money, query_variants, read_intent, relevance, say, short_title, typo
from .scripted_traits import (
    attention_span,
    leave_after_surcharge,
    leave_after_wait,
    side_rng,
    take_detour,
    try_unnamed_button,
)

__all__ = ["ScriptedConfig", "ScriptedPolicy", "decide", "label", "step_rng"]

log = logging.getLogger(__name__)

Action = Click | TypeAndSubmit | Terminate
_MIN_RELEVANCE = 0.65  # the head noun in the title's core, and a third of the other words


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
    shopper = _Shopper(persona, intent, history, observation, rng, config or ScriptedConfig())
    rationale, action = shopper.decide()
    return ShopperStep(rationale=rationale, action=action)


# --------------------------------------------------------------------------------------------------------------------
# Memory: what the shopper remembers, re-derived from the history


@dataclass
class _Seen:
    """A product page the shopper has looked at."""

    title: str
    fit: bool
    score: float
    price: float | None
    left: bool = False  # the last thing done on its page was leaving it (back, search, home)


@dataclass
class _Memory:
    searches: list[str] = field(default_factory=list)
    viewed: dict[str, _Seen] = field(default_factory=dict)
    added: str | None = None  # the title of a product that made it into the cart
    pages_since_search: int = 0
    refines_since_search: int = 0
    errors_in_row: int = 0
    reviews_read: set[str] = field(default_factory=set)
    same_product_steps: int = 0  # consecutive steps on the current product's pages


def kinds_of(observation: Observation) -> dict[str, str]:
    """Element name → kind; read from the HTML when the observation carries no element list (e.g. a trace record)."""
    if observation.elements:
        return {e.name: e.kind for e in observation.elements}
    return kinds_from_html(observation.html)


def _stable_unit(*parts: str) -> float:
    """A number in [0, 1) fixed by `parts`: per-persona jitter that does not change from step to step."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _key(title: str) -> str:
    return " ".join(title.lower().split())


# --------------------------------------------------------------------------------------------------------------------
# The shopper


@dataclass(frozen=True)
class _Judgement:
    fit: bool
    score: float
    reason: str  # "fit", "not_relevant", "over_budget", "bad_reviews(_read)", "missing_option", "low_rating"
    detail: dict[str, str] = field(default_factory=dict)


class _Shopper:
    """One decision: reads the page and the memory, then picks a rationale and an action."""

    def __init__(self, persona: Persona, intent: Intent, history: Sequence[HistoryItem], observation: Observation,
                 rng: random.Random, config: ScriptedConfig):
        self.p = persona
        self.intent = intent
        self.history = list(history)
        self.rng = rng
        self.cfg = config
        self.want = read_intent(intent.text, intent.max_price, intent.options)
        self.kinds = kinds_of(observation)
        self.page = read_page(observation.url, observation.html, self.kinds)
        self.steps = len(self.history)
        u1 = _stable_unit(persona.persona_id, intent.text, "patience")
        u2 = _stable_unit(persona.persona_id, intent.text, "compare")
        span = config.max_patience_steps - config.min_patience_steps
        self.budget = round(config.min_patience_steps + persona.patience * span + (u1 - 0.5) * 4)
        self.budget = max(config.min_patience_steps, min(config.hard_max_steps - 3, self.budget))
        self.views_wanted = 1 + int((1 - persona.decisiveness) * (0.4 + persona.exploration) * 1.8 + u2 * 0.8)
        self.max_searches = 2 + round(1.5 * persona.patience + 0.5 * persona.exploration)
        self.max_pages = 1 + round(2 * persona.patience * persona.exploration)
        self.min_rating = 3.0 + 1.3 * persona.review_reading
        self.favourites = tuple(b for b in ((self.want.brand,) if self.want.brand else ()) + persona.preferred_brands)
        self.results_read, self.reviews_read = attention_span(persona)
        self.load_s = observation.load_s
        self.mem = self._remember()

    # ------------------------------------------------------------------------------------------------- memory
    def _remember(self) -> _Memory:
        mem = _Memory()
        pages = [read_page(h.url, h.observation, kinds_from_html(h.observation)) for h in self.history]
        current_title = self.page.product.title if self.page.product else None
        for i, (h, page) in enumerate(zip(self.history, pages, strict=True)):
            nxt = pages[i + 1] if i + 1 < len(pages) else self.page
            action = h.action
            mem.errors_in_row = mem.errors_in_row + 1 if h.error else 0
            name = getattr(action, "name", None)
            if isinstance(action, TypeAndSubmit) and name == page.search_input and not h.error:
                mem.searches.append(action.text)
                mem.pages_since_search = mem.refines_since_search = 0
            elif page.kind == "results" and name and not h.error:
                if name == page.next_page:
                    mem.pages_since_search += 1
                elif name == page.price_max_input or name in {c.name for cs in page.facets.values() for c in cs} \
                        or name in {c.name for c in page.sorts.values()}:
                    mem.refines_since_search += 1
            if page.product is not None:
                pv = page.product
                judged = self._judge_product(pv)
                seen = mem.viewed.setdefault(_key(pv.title), _Seen(pv.title, judged.fit, judged.score, pv.price_min))
                stays = name is not None and not h.error and (
                    name in {c.name for g in pv.options for c in g.choices}
                    or name in (pv.add_to_cart, pv.buy_now, pv.reviews_link))
                seen.left = not stays
                if name is not None and name == pv.reviews_link:
                    mem.reviews_read.add(_key(pv.title))
                if name in (pv.add_to_cart, pv.buy_now) and not h.error and nxt.kind in ("cart", "checkout"):
                    mem.added = pv.title
            if page.kind == "cart" and page.cart_items and mem.added is None:
                mem.added = page.cart_items[0]
        if current_title:
            for page in reversed(pages):
                if page.product is None or _key(page.product.title) != _key(current_title):
                    break
                mem.same_product_steps += 1
        return mem

    # ------------------------------------------------------------------------------------------------- helpers
    def say(self, kind: str, aside: str | None = None, **facts: object) -> str:
        facts.setdefault("want", self.want.spoken)
        return say(kind, self.rng, aside=aside, aside_p=self.cfg.aside_rate, **facts)

    def aside(self, *allowed: str) -> str | None:
        """The persona's strongest habit among those that fit the moment (`allowed`), if it is strong."""
        traits = {"budget": self.p.budget_sensitivity, "reviews": self.p.review_reading,
                  "brand": self.p.brand_loyalty if self.p.preferred_brands else 0.0,
                  "impatient": 1 - self.p.patience}
        traits = {k: v for k, v in traits.items() if k in allowed}
        best = max(traits, key=lambda k: traits[k], default=None)
        return best if best is not None and traits[best] >= 0.75 else None

    def _habits(self, brand: str | None) -> tuple[str, ...]:
        """Asides that fit choosing a product of `brand`: brand loyalty only when it is a favourite."""
        return ("budget", "reviews", "impatient") + (("brand",) if self._brand_bonus(brand) >= 0.4 else ())

    @property
    def steps_left(self) -> int:
        return self.budget - self.steps

    def terminate(self, rationale: str) -> tuple[str, Action]:
        return rationale, Terminate()

    def click(self, rationale: str, name: str) -> tuple[str, Action]:
        return rationale, Click(name=name)

    def type(self, rationale: str, name: str, text: str) -> tuple[str, Action]:
        return rationale, TypeAndSubmit(name=name, text=text)

    def budget_clause(self) -> str:
        return f" under {money(self.want.max_price)}" if self.want.max_price else ""

    # ---------------------------------------------------------------------------------------------- judgement
    def _brand_bonus(self, brand: str | None) -> float:
        if not brand:
            return 0.0
        b = brand.lower()
        bonus = 0.0
        if self.want.brand and self.want.brand.lower() == b:
            bonus += 0.5 + 0.5 * self.p.brand_loyalty
        if any(f.lower() == b for f in self.p.preferred_brands):
            bonus += 1.0 * self.p.brand_loyalty
        return bonus

    def _score(self, title: str, brand: str | None, price: float | None, rating: float | None,
               reviews: int | None, ref_price: float | None) -> float:
        score = 2.0 * relevance(title, self.want)
        if price is not None and ref_price:
            score -= self.p.budget_sensitivity * (price / ref_price - 1.0) * 0.8
        confidence = min(1.0, (reviews or 0) / 20)
        score += self.p.review_reading * ((rating if rating is not None else 3.8) - 3.8) * 0.8 * confidence
        return score + self._brand_bonus(brand)

    def _judge_card(self, card: Card, ref_price: float | None) -> _Judgement:
        rel = relevance(card.title, self.want)
        if self.want.terms and rel < _MIN_RELEVANCE:
            return _Judgement(False, 0.0, "not_relevant")
        if self.want.max_price and card.price_min is not None and card.price_min > self.want.max_price:
            return _Judgement(False, 0.0, "over_budget")
        if card.rating is not None and (card.reviews or 0) >= 3 and card.rating < self.min_rating:
            return _Judgement(False, 0.0, "low_rating")
        score = self._score(card.title, card.brand, card.price_min, card.rating, card.reviews, ref_price)
        return _Judgement(True, score, "fit")

    def _judge_product(self, pv: ProductView) -> _Judgement:
        """Deterministic: the same page always gets the same verdict (memory depends on it)."""
        rel = relevance(pv.title, self.want)
        if self.want.terms and rel < _MIN_RELEVANCE:
            return _Judgement(False, 0.0, "not_relevant")
        if self.want.max_price and pv.price_min is not None and pv.price_min > self.want.max_price:
            return _Judgement(False, 0.0, "over_budget")
        for key, value in self.want.options.items():
            group = option_group(pv.options, key)
            if group is not None and option_choice(group, value) is None:
                return _Judgement(False, 0.0, "missing_option", {"value": value})
        if self.p.review_reading >= 0.4:
            stars = pv.review_stars[:self.reviews_read]
            low_rating = pv.rating is not None and (pv.reviews or 0) >= 3 and pv.rating < self.min_rating
            low_reviews = (len(stars) >= 3 and statistics.mean(stars) < self.min_rating - 0.4
                           and (pv.rating is None or pv.rating < 4.3))
            if low_rating or low_reviews:
                worst = min(range(len(stars)), key=lambda i: stars[i]) if stars else None
                review = pv.review_titles[worst] if worst is not None and pv.review_titles else "not great"
                return _Judgement(False, 0.0, "bad_reviews" if low_rating else "bad_reviews_read",
                                  {"review": review})
        score = self._score(pv.title, pv.brand, pv.price_min, pv.rating, pv.reviews, None)
        return _Judgement(True, score, "fit")

    # ------------------------------------------------------------------------------------------------ queries
    def next_query(self) -> tuple[str, str] | None:
        """(kind, text) of the query to type now: the first one, or a new variant after earlier searches."""
        variants = query_variants(self.want)
        if not variants:
            return None
        used = {" ".join(s.lower().split()) for s in self.mem.searches}
        if not self.mem.searches:
            # The first query names the product: no synonym, and one word only when the product phrase is one word.
            first = [v for v in variants if v[0] != "reworded" and (len(v[1].split()) > 1 or v[0] in ("full",
                                                                                                     "department"))]
            weights = []
            for kind, _ in first:
                w = {"full": 0.6, "plain": 0.2, "short": 0.25, "option": 0.08, "department": 1.0}.get(kind, 0.1)
                if kind == "brand":
                    w = 0.15 + 0.6 * self.p.brand_loyalty
                weights.append(w)
            kind, text = self.rng.choices(first, weights=weights)[0]
        else:
            fresh = [v for v in variants if v[1] not in used and not any(_close(v[1], u) for u in used)]
            if not fresh:
                return None
            kind, text = fresh[0] if self.rng.random() < 0.7 else self.rng.choice(fresh)
        if self.rng.random() < self.cfg.typo_rate:
            words = text.split()
            i = max(range(len(words)), key=lambda j: len(words[j]))
            words[i] = typo(words[i], self.rng)
            text = " ".join(words)
        if self.rng.random() < 0.1:
            text = text[:1].upper() + text[1:]
        return kind, text

    def search(self, situation: str, **facts: object) -> tuple[str, Action] | None:
        """Type a query into the search box, or None when there is no box or no new query.

        Without a box on the page, a link to search may be taken instead (an extra click: `take_detour`).
        """
        if self.page.search_input is None:
            return self._detour_to_search()
        q = self.next_query()
        if q is None:
            return None
        kind, text = q
        if situation == "search" and kind == "brand" and self.want.brand:
            situation = "search_brand"
            facts["brand"] = self.want.brand
        return self.type(self.say(situation, query=text, **facts), self.page.search_input, text)

    def _detour_to_search(self) -> tuple[str, Action] | None:
        """Click the page's "Search" link to reach the box, if worth the extra click to this persona; else None."""
        link = self.page.search_link
        if link is None or self.steps_left <= 2 or (self.mem.searches and self.next_query() is None):
            return None
        if side_rng(self.rng, "detour").random() >= take_detour(self.p):
            return None
        return self.click(self.say("find_search"), link)

    # ------------------------------------------------------------------------------------------------- decide
    def decide(self) -> tuple[str, Action]:
        rationale, action = self._decide()
        if not self._valid(action):
            log.warning("scripted shopper chose %r, which is not on %s; falling back", action, self.page.url)
            rationale, action = self._fallback()
        return rationale, action

    def _valid(self, action: Action) -> bool:
        if isinstance(action, Terminate):
            return True
        kind = self.kinds.get(action.name)
        return kind == ("input" if isinstance(action, TypeAndSubmit) else "clickable")

    def _fallback(self) -> tuple[str, Action]:
        if self.page.home_link and self.page.kind != "home":
            return self.click(self.say("leave_page"), self.page.home_link)
        return self.terminate(self.say("out_of_patience"))

    def _decide(self) -> tuple[str, Action]:
        page = self.page
        if self.steps >= self.cfg.hard_max_steps:
            if page.kind == "checkout" and page.place_order:
                return self.click(self.say("place_order", total=money(page.order_total)), page.place_order)
            return self.terminate(self.say("out_of_patience"))
        previous = self.history[-1].load_s if self.history else None
        wait_risk = leave_after_wait(self.p, self.load_s, previous) if self.cfg.react_to_waits else 0.0
        if page.kind != "order" and wait_risk > 0 and side_rng(self.rng, "wait").random() < wait_risk:
            return self.terminate(self.say("slow_page", wait=f"{self.load_s:.1f}"))
        last = self.history[-1] if self.history else None
        if last is not None and last.error and page.kind not in ("cart", "checkout", "order"):
            return self.recover(last.error)
        handler = {
            "home": self.on_home, "results": self.on_results, "product": self.on_product, "cart": self.on_cart,
            "checkout": self.on_checkout, "order": self.on_order, "error": self.on_error,
        }.get(page.kind, self.on_other)
        return handler()

    # ------------------------------------------------------------------------------------------------- pages
    def recover(self, error: str) -> tuple[str, Action]:
        short = error.split(";")[0][:80]
        if self.mem.errors_in_row < 3:
            q = self.next_query() if self.page.search_input else None
            if q is None and self.mem.searches and self.page.search_input:
                q = ("again", self.mem.searches[-1])
            if q is not None and self.page.search_input and self.rng.random() < 0.75:
                return self.type(self.say("recover_search", error=short, query=q[1]), self.page.search_input, q[1])
            if self.page.home_link and self.page.kind != "home":
                return self.click(self.say("recover_home", error=short), self.page.home_link)
            if q is not None and self.page.search_input:
                return self.type(self.say("recover_search", error=short, query=q[1]), self.page.search_input, q[1])
        return self.terminate(self.say("out_of_patience"))

    def on_home(self) -> tuple[str, Action]:
        page = self.page
        if self.mem.added and page.cart_link and (page.cart_count or 0) > 0:
            return self.click(self.say("go_to_cart", item=short_title(self.mem.added)), page.cart_link)
        if self.steps_left <= 0 and self.steps > 0:
            return self.terminate(self.say("out_of_patience", aside=self.aside("impatient")))
        if self.want.department and not self.mem.searches:
            dept = match_choice(page.departments, self.want.department)
            if dept is not None and (self.rng.random() < 0.75 or page.search_input is None):
                return self.click(self.say("browse_department", dept=dept.text), dept.name)
        if not self.mem.searches and self.want.terms:
            ref = _median([c.price_min for c in page.cards])
            for card in page.cards:
                j = self._judge_card(card, ref)
                if j.fit and relevance(card.title, self.want) >= 0.99 and self.rng.random() < 0.5:
                    return self.click(self.say("featured", title=short_title(card.title), price=money(card.price_min)),
                                      card.name)
        step = self.search("search" if not self.mem.searches else "search_again")
        if step is not None:
            return step
        return self.terminate(self.say("nothing_fits", budget_clause=self.budget_clause()))

    def on_results(self) -> tuple[str, Action]:
        page, mem, p = self.page, self.mem, self.p
        cards = page.cards[:self.results_read]  # read from the top, as far as attention goes
        ref = _median([c.price_min for c in cards])
        judged = [(c, self._judge_card(c, ref)) for c in cards]
        fits = [(c, j) for c, j in judged if j.fit]
        unseen = [(c, j) for c, j in fits if _key(c.title) not in mem.viewed]
        # products already looked at that fit: candidates to come back to, scored like the others on this page
        deferred = [(c, j) for c, j in fits if _key(c.title) in mem.viewed and mem.viewed[_key(c.title)].fit]
        fit_views = sum(1 for s in mem.viewed.values() if s.fit)
        out_of_time = self.steps_left <= 0

        if out_of_time:
            if deferred:
                card, _ = max(deferred, key=lambda d: d[1].score)
                return self.click(self.say("reopen", title=short_title(card.title), price=money(card.price_min),
                                           reason=self._reason(card, fits)), card.name)
            return self.terminate(self.say("out_of_patience", aside=self.aside("impatient")))

        if page.no_results or not cards:
            old = page.search_value or (mem.searches[-1] if mem.searches else "that")
            if len(mem.searches) < self.max_searches and self.steps_left > 2:
                step = self.search("search_empty", old=old)
                if step is not None:
                    return step
            return self.terminate(self.say("nothing_fits", budget_clause=self.budget_clause()))

        refine = self._maybe_refine(judged)
        if refine is not None:
            return refine

        if fit_views >= self.views_wanted and deferred:
            card, judged_old = max(deferred, key=lambda d: d[1].score)
            best_new = max(unseen, key=lambda cj: cj[1].score, default=None)
            if best_new is None or judged_old.score >= best_new[1].score - 0.2:
                return self.click(self.say("reopen", title=short_title(card.title), price=money(card.price_min),
                                           reason=self._reason(card, fits)), card.name)
        if (unseen and fit_views >= 1 and fit_views < self.views_wanted and page.next_page
                and mem.pages_since_search < self.max_pages - 1 and self.steps_left > 4
                and self.rng.random() < 0.35 * p.exploration):
            return self.click(self.say("next_page_browse"), page.next_page)
        if unseen:
            noisy = [(c, j.score + self.rng.gauss(0, 0.25)) for c, j in unseen]
            card, _ = max(noisy, key=lambda cs: cs[1])
            return self.click(self.say("open", title=short_title(card.title), reason=self._reason(card, fits),
                                       aside=self.aside(*self._habits(card.brand))), card.name)
        if deferred:
            card, _ = max(deferred, key=lambda d: d[1].score)
            return self.click(self.say("reopen", title=short_title(card.title), price=money(card.price_min),
                                       reason=self._reason(card, fits)), card.name)

        why = self._why_nothing(judged)
        if page.next_page and mem.pages_since_search < self.max_pages - 1 + (self.rng.random() < 0.3) \
                and self.steps_left > 3:
            return self.click(self.say("next_page", why=why), page.next_page)
        if len(mem.searches) < self.max_searches and self.steps_left > 2:
            step = self.search("search_again")
            if step is not None:
                return step
        return self.terminate(self.say("nothing_fits", budget_clause=self.budget_clause(),
                                       aside=self.aside("budget", "reviews")))

    def _why_nothing(self, judged: list[tuple[Card, _Judgement]]) -> str:
        reasons = [j.reason for _, j in judged if not j.fit]
        if not reasons:
            return "what I need"
        top = max(set(reasons), key=reasons.count)
        return {
            "over_budget": f"my budget of {money(self.want.max_price)}",
            "low_rating": "my standards; the ratings are too low",
            "not_relevant": f"what I'm after ({self.want.spoken})",
        }.get(top, "what I need")

    def _reason(self, card: Card, fits: list[tuple[Card, _Judgement]]) -> str:
        p = self.p
        prices = [c.price_min for c, _ in fits if c.price_min is not None]
        if self._brand_bonus(card.brand) >= 0.4:
            return f"it's from {card.brand}, a brand I like, at {money(card.price_min)}"
        if p.budget_sensitivity >= 0.6 and prices and card.price_min == min(prices) and len(prices) > 1:
            return f"at {money(card.price_min)} it's the cheapest one that fits"
        if p.review_reading >= 0.6 and card.rating is not None:
            return f"it has {card.rating:g} stars from {card.reviews or 0:,} ratings"
        if self.want.max_price and card.price_min is not None:
            return f"{money(card.price_min)} is within my {money(self.want.max_price)} budget"
        if card.rating is not None and self.rng.random() < 0.5:
            return f"{card.rating:g} stars and {money(card.price_min)}"
        if self.want.thing:
            return f"it looks like the {self.want.thing} I want, for {money(card.price_min)}"
        return f"it looks nice and costs {money(card.price_min)}"

    def _maybe_refine(self, judged: list[tuple[Card, _Judgement]]) -> tuple[str, Action] | None:
        page, p, mem = self.page, self.p, self.mem
        cap = 1 + int(p.exploration * 2)
        if mem.refines_since_search >= cap or mem.pages_since_search > 0 or self.steps_left < 5:
            return None
        active = " | ".join(page.active_filters).lower()
        scale = self.cfg.refine_rate * (0.4 + p.exploration)
        options: list[tuple[float, Any]] = []
        over = sum(1 for _, j in judged if j.reason == "over_budget")
        fits = sum(1 for _, j in judged if j.fit)

        brands = page.facets.get("brand", ())
        for fav in self.favourites:
            choice = match_choice(brands, fav)
            if choice is not None and fav.lower() not in active and len(brands) > 1:
                prob = (0.3 + 0.4 * p.brand_loyalty) if fav == self.want.brand else 0.6 * p.brand_loyalty
                options.append((prob * scale, lambda c=choice: self.click(
                    self.say("refine_brand", brand=c.text, aside=self.aside("brand")), c.name)))
                break
        if self.want.max_price and "price" not in active:
            prob = 0.35 * p.budget_sensitivity * scale * (2.0 if over * 2 >= len(judged) else 1.0)
            options.append((prob, self._refine_price))
        if p.review_reading >= 0.5 and not re.search(r"rating|stars", active):
            choice = next((c for c in page.facets.get("rating", ()) if c.text.strip().startswith("4")), None)
            if choice is not None:
                options.append((0.22 * p.review_reading * scale, lambda c=choice: self.click(
                    self.say("refine_rating", band=c.text), c.name)))
        if p.budget_sensitivity >= 0.5 and page.current_sort != "price_asc" and "price_asc" in page.sorts:
            c = page.sorts["price_asc"]
            options.append((0.25 * p.budget_sensitivity * scale, lambda c=c: self.click(
                self.say("sort_price", aside=self.aside("budget")), c.name)))
        if p.review_reading >= 0.6 and page.current_sort != "rating" and "rating" in page.sorts:
            c = page.sorts["rating"]
            options.append((0.15 * p.review_reading * scale, lambda c=c: self.click(self.say("sort_rating"), c.name)))
        if self.want.department and "department" not in active:
            depts = page.facets.get("department", ())
            choice = match_choice(depts, self.want.department)
            if choice is not None and len(depts) > 1:
                options.append((0.6, lambda c=choice: self.click(self.say("refine_department", dept=c.text), c.name)))
        if fits >= 3:  # plenty to choose from already: refining is less tempting
            options = [(prob * 0.6, fn) for prob, fn in options]
        self.rng.shuffle(options)
        for prob, fn in options:
            if self.rng.random() < prob:
                step = fn()
                if step is not None:
                    return step
        return None

    def _refine_price(self) -> tuple[str, Action] | None:
        page, cap = self.page, self.want.max_price
        if cap is None:
            return None
        budget = money(cap)
        if page.price_max_input and self.rng.random() < 0.5:
            value = f"{cap:g}"
            return self.type(self.say("refine_max", budget=budget, value=f"${value}"), page.price_max_input, value)
        bands = []
        for c in page.facets.get("price", ()):
            lo, hi = price_band(c.text)
            if lo is not None and lo < cap <= hi:
                bands.append((hi - lo, c))
        if bands:
            _, choice = min(bands, key=lambda b: b[0])
            return self.click(self.say("refine_price", budget=budget, band=choice.text), choice.name)
        if page.price_max_input:
            value = f"{cap:g}"
            return self.type(self.say("refine_max", budget=budget, value=f"${value}"), page.price_max_input, value)
        return None

    def on_product(self) -> tuple[str, Action]:
        pv = self.page.product
        assert pv is not None
        mem, p = self.mem, self.p
        key = _key(pv.title)
        title = short_title(pv.title)
        judged = self._judge_product(pv)
        seen_before = key in mem.viewed
        deferred = seen_before and mem.viewed[key].left

        if mem.same_product_steps > len(pv.options) + 3:  # stuck on this page: move on
            return self._leave_product("back_to_results", {})
        if not judged.fit:
            facts = {"title": title, "price": money(pv.price_min), "budget": money(self.want.max_price),
                     "rating": f"{pv.rating:g}" if pv.rating is not None else "few", **judged.detail}
            return self._leave_product(judged.reason, facts)

        if (not seen_before and self.want.brand and p.brand_loyalty >= 0.75 and pv.brand
                and pv.brand.lower() != self.want.brand.lower() and self.steps_left > 5 and self.rng.random() < 0.3):
            return self._leave_product("wrong_brand", {"title": title, "brand": pv.brand,
                                                       "preferred": self.want.brand})
        fit_views_before = sum(1 for k, s in mem.viewed.items() if s.fit and k != key)
        if (not seen_before and fit_views_before + 1 < self.views_wanted and pv.back and self.steps_left > 4
                and self.rng.random() < 0.85):
            return self.click(self.say("compare", title=title, price=money(pv.price_min),
                                       rating=f"{pv.rating:g}" if pv.rating is not None else "no"), pv.back)
        if (pv.reviews_link and p.review_reading >= 0.7 and key not in mem.reviews_read
                and self.rng.random() < 0.8):
            return self.click(self.say("read_reviews", title=title), pv.reviews_link)

        option = self._wanted_option(pv)
        if option is None and not self._slips(pv):
            option = self._any_option(pv)
        if option is not None:
            return option

        facts = self._facts(pv)
        walk_away = self.cfg.walk_away_rate * (1 - p.decisiveness) ** 2 + (0.25 if self.want.department else 0.0)
        if not mem.added and self.rng.random() < walk_away:
            return self.terminate(self.say("walk_away", title=title, price=money(pv.price_min)))
        if pv.add_to_cart is None and pv.buy_now is None and pv.unnamed:
            return self._press_unnamed(pv)
        kind = "decide_after_compare" if deferred or fit_views_before > 0 else "add_to_cart"
        impulse = 0.05 + max(0.0, p.decisiveness - 0.5) * 1.4 * (1 - 0.5 * p.review_reading)
        if pv.buy_now and (pv.add_to_cart is None or (kind == "add_to_cart" and self.rng.random() < impulse)):
            return self.click(self.say("buy_now", title=title, facts=facts), pv.buy_now)
        if pv.add_to_cart:
            return self.click(self.say(kind, title=title, facts=facts, aside=self.aside(*self._habits(pv.brand))),
                              pv.add_to_cart)
        return self._leave_product("back_to_results", {})

    def _press_unnamed(self, pv: ProductView) -> tuple[str, Action]:
        """No labelled way to buy: press an unnamed button once if curious enough (`try_unnamed_button`), else leave."""
        title = short_title(pv.title)
        if not self._pressed_unnamed() and side_rng(self.rng, "unnamed").random() < try_unnamed_button(self.p):
            return self.click(self.say("try_unnamed", title=title), pv.unnamed[0])
        return self.terminate(self.say("cannot_buy", title=title))

    def _pressed_unnamed(self) -> bool:
        """Whether this session has already pressed an unnamed button on a product page."""
        for h in self.history:
            if isinstance(h.action, Click):
                past = read_page(h.url, h.observation, kinds_from_html(h.observation)).product
                if past is not None and h.action.name in past.unnamed:
                    return True
        return False

    def _leave_product(self, reason: str, facts: dict[str, str]) -> tuple[str, Action]:
        pv = self.page.product
        templates = {"not_relevant", "over_budget", "bad_reviews", "bad_reviews_read", "missing_option", "wrong_brand"}
        situation = reason if reason in templates else "back_to_results"
        if self.steps_left <= 1:
            return self.terminate(self.say("out_of_patience", aside=self.aside("impatient")))
        if pv is not None and pv.back:
            return self.click(self.say(situation, **facts), pv.back)
        step = self.search("search_again")
        if step is not None:
            return step
        if self.page.home_link:
            return self.click(self.say("leave_page"), self.page.home_link)
        return self.terminate(self.say("nothing_fits", budget_clause=self.budget_clause()))

    def _wanted_option(self, pv: ProductView) -> tuple[str, Action] | None:
        """Click an option the intent asks for and the page has not selected yet."""
        for group in pv.options:
            wanted_value = next((v for k, v in self.want.options.items() if same_label(k, group.label)), None)
            wanted = option_choice(group, wanted_value)
            if wanted is not None and (group.selected is None or group.selected.name != wanted.name):
                return self.click(self.say("option_wanted", value=wanted.text, group=group.label.lower()),
                                  wanted.name)
        return None

    def _slips(self, pv: ProductView) -> bool:
        """Whether the shopper goes for the buy button with an option still unchosen (`option_slip_rate`): only on
        a page the store has not yet complained about, and once a product."""
        if (self.cfg.option_slip_rate <= 0 or pv.notices or all(g.selected is not None for g in pv.options)
                or not (pv.add_to_cart or pv.buy_now)):
            return False
        buttons = {pv.add_to_cart, pv.buy_now} - {None}
        if any(isinstance(h.action, Click) and h.action.name in buttons for h in self.history):
            return False
        return side_rng(self.rng, "slip").random() < self.cfg.option_slip_rate

    def _any_option(self, pv: ProductView) -> tuple[str, Action] | None:
        """Click a value for the first option the store still needs."""
        for group in pv.options:
            if group.selected is not None:
                continue
            choice = self._pick_any(group)
            situation = "option_fix" if any(group.label.lower() in n.lower() for n in pv.notices) else "option_any"
            return self.click(self.say(situation, value=choice.text, group=group.label.lower()), choice.name)
        return None

    def _pick_any(self, group: OptionGroup) -> Choice:
        """A value for an option the intent says nothing about: the middle sizes are popular, else anything."""
        choices = list(group.choices)
        if len(choices) > 2 and re.search(r"size", group.label, re.I):
            mid = len(choices) // 2
            weights = [1.0 / (1 + abs(i - mid)) for i in range(len(choices))]
            return self.rng.choices(choices, weights=weights)[0]
        return self.rng.choice(choices)

    def _facts(self, pv: ProductView) -> str:
        parts = [("from " if pv.price_max and pv.price_min and pv.price_max > pv.price_min else "")
                 + money(pv.price_min)]
        if self.want.max_price and self.p.budget_sensitivity >= 0.5:
            parts[0] += f", under my {money(self.want.max_price)} budget"
        if pv.rating is not None:
            parts.append(f"{pv.rating:g} stars from {pv.reviews or 0:,} ratings")
        if self._brand_bonus(pv.brand) >= 0.4:
            parts.append(f"made by {pv.brand}")
        stars = pv.review_stars[:self.reviews_read]
        if self.p.review_reading >= 0.6 and stars:
            good = sum(1 for s in stars if s >= 4)
            parts.append(f"{good} of the {len(stars)} reviews I read are positive")
        return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]

    def on_cart(self) -> tuple[str, Action]:
        page, p = self.page, self.p
        if not page.cart_items or not page.checkout_link:
            if page.continue_link and self.steps_left > 2:
                return self.click(self.say("empty_cart"), page.continue_link)
            step = self.search("search_again") if self.steps_left > 2 else None
            if step is not None:
                return step
            return self.terminate(self.say("out_of_patience"))
        total = page.cart_total
        item = short_title(page.cart_items[0])
        abandon = self.cfg.abandon_rate + 0.25 * (1 - p.decisiveness) * (0.5 + p.budget_sensitivity)
        if self.want.max_price and total and total > self.want.max_price:
            abandon += 0.4 * p.budget_sensitivity
        if self.rng.random() < abandon:
            pricey = p.budget_sensitivity >= 0.6 or bool(self.want.max_price and total and
                                                         total > 0.8 * self.want.max_price)
            return self.terminate(self.say("abandon_price" if pricey else "abandon", total=money(total)))
        return self.click(self.say("checkout", item=item, total=money(total)), page.checkout_link)

    def on_checkout(self) -> tuple[str, Action]:
        page, p = self.page, self.p
        if page.place_order is None:
            return self.on_other()
        items, total = page.items_total, page.order_total
        if items and total and total > items:  # something on top of the items, first shown here
            if side_rng(self.rng, "surcharge").random() < leave_after_surcharge(p, total / items - 1):
                return self.terminate(self.say("surcharge", extra=money(total - items), total=money(total)))
        hesitate = 0.03 * (1 - p.decisiveness)
        if self.want.max_price and page.order_total and page.order_total > self.want.max_price * 1.05:
            hesitate += 0.5 * p.budget_sensitivity
        if self.rng.random() < hesitate:
            return self.terminate(self.say("hesitate_checkout", total=money(page.order_total)))
        return self.click(self.say("place_order", total=money(page.order_total)), page.place_order)

    def on_order(self) -> tuple[str, Action]:
        return self.terminate(self.say("done"))

    def on_error(self) -> tuple[str, Action]:
        page = self.page
        if page.search_input and self.rng.random() < 0.5:
            q = self.next_query() or (("again", self.mem.searches[-1]) if self.mem.searches else None)
            if q is not None:
                return self.type(self.say("error_search", query=q[1]), page.search_input, q[1])
        if page.home_link:
            return self.click(self.say("error_page"), page.home_link)
        return self.terminate(self.say("out_of_patience"))

    def on_other(self) -> tuple[str, Action]:
        page = self.page
        if page.search_input and self.steps_left > 1:
            step = self.search("search" if not self.mem.searches else "search_again")
            if step is not None:
                return step
        if page.home_link and self.steps_left > 1:
            return self.click(self.say("leave_page"), page.home_link)
        return self.terminate(self.say("out_of_patience"))


# --------------------------------------------------------------------------------------------------------------------
# Small helpers


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None and v > 0]
    return statistics.median(got) if got else None


def _close(a: str, b: str) -> bool:
    """Two queries that differ only by case, spacing or a typo count as the same search."""
    a, b = " ".join(a.lower().split()), " ".join(b.lower().split())
    if a == b:
        return True
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]

