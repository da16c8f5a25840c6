"""What the scripted shopper knows at one step: the state every page handler (`scripted_pages`) reads.

`ShopperState` holds the persona, what it wants (read from the intent as the prompt shows it), its habits derived
from the persona's traits, the current page, and its memory of the session (`Memory`), re-derived from the history
each step so that any state can be labelled. `judge_card` and `judge_product` are how it values what it sees; memory
depends on them, so they live here.

>>> from agent.policy.persona import Intent, Persona
>>> from agent.policy.scripted import ScriptedConfig
>>> from envs.observation import Observation
>>> home = Observation(url="http://shop/", title="Home", html="<p>Hi</p>", elements=())
>>> s = start(Persona(persona_id="p", name="Kim", patience=1.0), Intent(text="A yoga mat under $40.", max_price=40),
...           [], home, random.Random(0), ScriptedConfig())
>>> s.page.kind, s.steps, s.budget, s.max_searches, s.min_rating, s.results_read
('home', 0, 25, 4, 3.65, 20)
"""

from __future__ import annotations

import hashlib
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from envs.actions import Click, Terminate, TypeAndSubmit
from envs.observation import Observation

from .page_reader import Card, PageView, ProductView, kinds_from_html, option_choice, option_group, read_page
from .persona import Intent, Persona
from .prompt import HistoryItem
from .scripted_text import Want, read_intent, relevance
from .scripted_traits import attention_span

if TYPE_CHECKING:
    from .scripted import ScriptedConfig

__all__ = ["MIN_RELEVANCE", "Action", "Judgement", "Memory", "Seen", "ShopperState", "Step", "brand_bonus",
           "judge_card", "judge_product", "kinds_of", "start", "title_key"]

Action = Click | TypeAndSubmit | Terminate
Step = tuple[str, Action]
"""A decision: the rationale and the action."""
MIN_RELEVANCE = 0.65  # the head noun in the title's core, and a third of the other words


@dataclass
class Seen:
    """A product page the shopper has looked at."""

    title: str
    fit: bool
    score: float
    price: float | None
    left: bool = False  # the last thing done on its page was leaving it (back, search, home)


@dataclass
class Memory:
    """What the shopper remembers of the session: what it searched, viewed, read and put in the cart."""

    searches: list[str] = field(default_factory=list)
    viewed: dict[str, Seen] = field(default_factory=dict)  # by `title_key`
    added: str | None = None  # the title of a product that made it into the cart
    pages_since_search: int = 0
    refines_since_search: int = 0
    errors_in_row: int = 0
    reviews_read: set[str] = field(default_factory=set)
    same_product_steps: int = 0  # consecutive steps on the current product's pages


@dataclass
class ShopperState:
    """One step of one shopper: who it is, what it wants, its habits, the page, and its memory.

    The habits are fixed per persona and intent (`start` derives them):

    - `budget`: the step budget, from `patience` (between the config's min and max patience steps, jittered per
      persona and intent, and at least 3 below `hard_max_steps`).
    - `views_wanted`: how many fitting products it wants to see before choosing; more when `decisiveness` is low and
      `exploration` high.
    - `max_searches`: searches before giving up, from `patience` and `exploration`.
    - `max_pages`: result pages per search, from `patience` × `exploration`.
    - `min_rating`: the lowest rating it accepts, from `review_reading` (3.0 to 4.3).
    - `favourites`: the brand the intent names, then the persona's `preferred_brands`.
    - `results_read`, `reviews_read`: how far down a page it reads, from `patience` (`attention_span`).
    """

    persona: Persona
    want: Want
    config: ScriptedConfig
    rng: random.Random
    history: list[HistoryItem]
    kinds: dict[str, str]
    page: PageView
    load_s: float | None
    budget: int
    views_wanted: int
    max_searches: int
    max_pages: int
    min_rating: float
    favourites: tuple[str, ...]
    results_read: int
    reviews_read: int
    mem: Memory = field(default_factory=Memory)

    @property
    def steps(self) -> int:
        """Steps taken so far."""
        return len(self.history)

    @property
    def steps_left(self) -> int:
        return self.budget - self.steps


def kinds_of(observation: Observation) -> dict[str, str]:
    """Element name → kind; read from the HTML when the observation carries no element list (e.g. a trace record)."""
    if observation.elements:
        return {e.name: e.kind for e in observation.elements}
    return kinds_from_html(observation.html)


def start(persona: Persona, intent: Intent, history: Sequence[HistoryItem], observation: Observation,
          rng: random.Random, config: ScriptedConfig) -> ShopperState:
    """The state of a shopper with this persona and intent, after `history`, on `observation`."""
    want = read_intent(intent.text, intent.max_price, intent.options)
    kinds = kinds_of(observation)
    u1 = _stable_unit(persona.persona_id, intent.text, "patience")
    u2 = _stable_unit(persona.persona_id, intent.text, "compare")
    span = config.max_patience_steps - config.min_patience_steps
    budget = round(config.min_patience_steps + persona.patience * span + (u1 - 0.5) * 4)
    results_read, reviews_read = attention_span(persona)
    state = ShopperState(
        persona=persona, want=want, config=config, rng=rng, history=list(history), kinds=kinds,
        page=read_page(observation.url, observation.html, kinds), load_s=observation.load_s,
        budget=max(config.min_patience_steps, min(config.hard_max_steps - 3, budget)),
        views_wanted=1 + int((1 - persona.decisiveness) * (0.4 + persona.exploration) * 1.8 + u2 * 0.8),
        max_searches=2 + round(1.5 * persona.patience + 0.5 * persona.exploration),
        max_pages=1 + round(2 * persona.patience * persona.exploration),
        min_rating=3.0 + 1.3 * persona.review_reading,
        favourites=tuple(b for b in ((want.brand,) if want.brand else ()) + persona.preferred_brands),
        results_read=results_read, reviews_read=reviews_read,
    )
    state.mem = remember(state)
    return state


def remember(s: ShopperState) -> Memory:
    """The memory of the session so far, re-derived from `s.history` and the current page."""
    mem = Memory()
    pages = [read_page(h.url, h.observation, kinds_from_html(h.observation)) for h in s.history]
    current_title = s.page.product.title if s.page.product else None
    for i, (h, page) in enumerate(zip(s.history, pages, strict=True)):
        nxt = pages[i + 1] if i + 1 < len(pages) else s.page
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
            judged = judge_product(s, pv)
            seen = mem.viewed.setdefault(title_key(pv.title), Seen(pv.title, judged.fit, judged.score, pv.price_min))
            stays = name is not None and not h.error and (
                name in {c.name for g in pv.options for c in g.choices}
                or name in (pv.add_to_cart, pv.buy_now, pv.reviews_link))
            seen.left = not stays
            if name is not None and name == pv.reviews_link:
                mem.reviews_read.add(title_key(pv.title))
            if name in (pv.add_to_cart, pv.buy_now) and not h.error and nxt.kind in ("cart", "checkout"):
                mem.added = pv.title
        if page.kind == "cart" and page.cart_items and mem.added is None:
            mem.added = page.cart_items[0]
    if current_title:
        for page in reversed(pages):
            if page.product is None or title_key(page.product.title) != title_key(current_title):
                break
            mem.same_product_steps += 1
    return mem


def _stable_unit(*parts: str) -> float:
    """A number in [0, 1) fixed by `parts`: per-persona jitter that does not change from step to step."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def title_key(title: str) -> str:
    """A product title as memory files it: lower case, spaces collapsed."""
    return " ".join(title.lower().split())


# --------------------------------------------------------------------------------------------------------------------
# Judgement: how the shopper values a product


@dataclass(frozen=True)
class Judgement:
    fit: bool
    score: float
    reason: str  # "fit", "not_relevant", "over_budget", "bad_reviews(_read)", "missing_option", "low_rating"
    detail: dict[str, str] = field(default_factory=dict)


def brand_bonus(s: ShopperState, brand: str | None) -> float:
    """How much `brand` draws this shopper: the intent's brand, and its favourites, weighted by `brand_loyalty`."""
    if not brand:
        return 0.0
    b = brand.lower()
    bonus = 0.0
    if s.want.brand and s.want.brand.lower() == b:
        bonus += 0.5 + 0.5 * s.persona.brand_loyalty
    if any(f.lower() == b for f in s.persona.preferred_brands):
        bonus += 1.0 * s.persona.brand_loyalty
    return bonus


def _score(s: ShopperState, title: str, brand: str | None, price: float | None, rating: float | None,
           reviews: int | None, ref_price: float | None) -> float:
    score = 2.0 * relevance(title, s.want)
    if price is not None and ref_price:
        score -= s.persona.budget_sensitivity * (price / ref_price - 1.0) * 0.8
    confidence = min(1.0, (reviews or 0) / 20)
    score += s.persona.review_reading * ((rating if rating is not None else 3.8) - 3.8) * 0.8 * confidence
    return score + brand_bonus(s, brand)


def judge_card(s: ShopperState, card: Card, ref_price: float | None) -> Judgement:
    """A result card: relevant, within budget and well enough rated? Scored against the page's median price."""
    rel = relevance(card.title, s.want)
    if s.want.terms and rel < MIN_RELEVANCE:
        return Judgement(False, 0.0, "not_relevant")
    if s.want.max_price and card.price_min is not None and card.price_min > s.want.max_price:
        return Judgement(False, 0.0, "over_budget")
    if card.rating is not None and (card.reviews or 0) >= 3 and card.rating < s.min_rating:
        return Judgement(False, 0.0, "low_rating")
    score = _score(s, card.title, card.brand, card.price_min, card.rating, card.reviews, ref_price)
    return Judgement(True, score, "fit")


def judge_product(s: ShopperState, pv: ProductView) -> Judgement:
    """A product page, options and reviews included. Deterministic: the same page always gets the same verdict
    (memory depends on it)."""
    rel = relevance(pv.title, s.want)
    if s.want.terms and rel < MIN_RELEVANCE:
        return Judgement(False, 0.0, "not_relevant")
    if s.want.max_price and pv.price_min is not None and pv.price_min > s.want.max_price:
        return Judgement(False, 0.0, "over_budget")
    for key, value in s.want.options.items():
        group = option_group(pv.options, key)
        if group is not None and option_choice(group, value) is None:
            return Judgement(False, 0.0, "missing_option", {"value": value})
    if s.persona.review_reading >= 0.4:
        stars = pv.review_stars[:s.reviews_read]
        low_rating = pv.rating is not None and (pv.reviews or 0) >= 3 and pv.rating < s.min_rating
        low_reviews = (len(stars) >= 3 and statistics.mean(stars) < s.min_rating - 0.4
                       and (pv.rating is None or pv.rating < 4.3))
        if low_rating or low_reviews:
            worst = min(range(len(stars)), key=lambda i: stars[i]) if stars else None
            review = pv.review_titles[worst] if worst is not None and pv.review_titles else "not great"
            return Judgement(False, 0.0, "bad_reviews" if low_rating else "bad_reviews_read", {"review": review})
    score = _score(s, pv.title, pv.brand, pv.price_min, pv.rating, pv.reviews, None)
    return Judgement(True, score, "fit")
