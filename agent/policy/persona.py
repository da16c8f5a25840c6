"""Who shops and what they want: `Persona`, `Intent`, and the pair the agent is conditioned on.

Personas are sampled deterministically from a handful of archetypes (bargain hunter, brand loyalist, researcher...)
with jittered traits; intents are written from plain product fields the way a shopper would say them.

>>> personas = sample_personas(3, seed=0)
>>> [p.persona_id for p in personas] == [p.persona_id for p in sample_personas(3, seed=0)]
True
>>> intent = Intent.from_product(title="Acme Trail Runner Waterproof Hiking Boots, Men's", brand="Acme",
...                              department="Shoes", price=99.5, seed=1)
>>> intent.target_asin is None and intent.department
'Shoes'
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .free_text import RequestParts, write_request

__all__ = [
    "ARCHETYPES",
    "Archetype",
    "Intent",
    "Persona",
    "PersonaFileError",
    "PersonaIntent",
    "load_persona_intents",
    "sample_personas",
    "save_persona_intents",
]

def _trait(description: str) -> Any:
    return Field(default=0.5, ge=0.0, le=1.0, description=description)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(_Frozen):
    """A simulated shopper. Traits are in [0, 1]; 0.5 is an average shopper.

    List-valued fields are tuples so that a frozen persona really is immutable (JSON arrays load fine).

    >>> p = Persona(persona_id="p1", name="Dana", description="A careful shopper.", budget_sensitivity=0.9)
    >>> p.patience, p.traits()["budget_sensitivity"]
    (0.5, 0.9)
    """

    persona_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=1000, description="One or two sentences, in the third person.")
    budget_sensitivity: float = _trait("How much price drives choices, and how much a surprise fee at checkout puts "
                                       "them off.")
    patience: float = _trait("How many pages they will look at before giving up, how far down a long page they "
                             "read, how long they wait for a slow page, and whether an extra click is worth it.")
    brand_loyalty: float = _trait("How strongly they stick to `preferred_brands`.")
    review_reading: float = _trait("How much they read ratings and reviews before buying.")
    decisiveness: float = _trait("How quickly they commit to a product.")
    exploration: float = _trait("How much they browse, refine and compare rather than go straight to a product (and "
                                "try a button that does not say what it does).")
    preferred_brands: tuple[str, ...] = ()

    def traits(self) -> dict[str, float]:
        """The trait values by name, in declaration order."""
        return {name: getattr(self, name) for name in TRAIT_NAMES}

    def habits(self) -> list[str]:
        """The traits as short second-person sentences, for the prompt; average traits are left out.

        >>> Persona(persona_id="p", name="Bo", budget_sensitivity=0.95, patience=0.1).habits()
        ['You watch prices closely and go for the cheaper option.', 'You get impatient quickly and give up easily.']
        """
        out = []
        for name in TRAIT_NAMES:
            value = getattr(self, name)
            low, high = _HABITS[name]
            if value >= 0.67:
                out.append(high)
            elif value <= 0.33:
                out.append(low)
        if self.preferred_brands:
            out.append(f"Brands you like: {', '.join(self.preferred_brands)}.")
        return out


TRAIT_NAMES: tuple[str, ...] = (
    "budget_sensitivity",
    "patience",
    "brand_loyalty",
    "review_reading",
    "decisiveness",
    "exploration",
)

_HABITS: dict[str, tuple[str, str]] = {  # trait -> (low, high)
    "budget_sensitivity": (
        "Price matters little to you; you pay for what you want.",
        "You watch prices closely and go for the cheaper option.",
    ),
    "patience": (
        "You get impatient quickly and give up easily.",
        "You are patient and happy to look through many pages.",
    ),
    "brand_loyalty": ("You do not care about brands.", "You stick to brands you know and trust."),
    "review_reading": ("You rarely look at ratings or reviews.", "You read ratings and reviews before you buy."),
    "decisiveness": ("You hesitate and second-guess your choices.", "You decide quickly once something fits."),
    "exploration": (
        "You go straight for what you came for.",
        "You like to browse, refine searches and compare options.",
    ),
}


class Intent(_Frozen):
    """What a shopper wants. Only `text`, `max_price` and `options` are shown to the policy.

    `target_asin` (the product that inspired a sampled intent), `department` and `keywords` are for sampling and
    evaluation, and are never put in the prompt.

    >>> Intent(text="I need a pair of waterproof hiking boots for under $120", max_price=120).max_price
    120.0
    """

    text: str = Field(min_length=1, max_length=1000)
    department: str | None = None
    keywords: tuple[str, ...] = ()
    max_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    target_asin: str | None = None
    options: dict[str, str] = Field(default_factory=dict, description="Preferred options, e.g. {'size': '10'}.")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Expect a non-blank intent text, actually: blank")
        return value.strip()

    @classmethod
    def from_product(
        cls,
        *,
        title: str,
        brand: str | None = None,
        department: str | None = None,
        price: float | None = None,
        options: Mapping[str, str] | None = None,
        asin: str | None = None,
        seed: int | random.Random = 0,
        free_text: bool = False,
    ) -> Intent:
        """Write the intent a shopper who would buy this product might have: shortened, reworded, sometimes vague.

        Deterministic for a given seed (an int, or a `random.Random` to draw from). With `free_text`, the text is
        written the way people type requests (`agent.policy.free_text.write_request`: chatty or terse, typos,
        constraints in any order) instead of one tidy sentence; the other fields are drawn exactly as without it.

        >>> a = Intent.from_product(title="Acme Men's Waterproof Hiking Boots (Size 10, Brown)", brand="Acme",
        ...                         price=89.99, options={"size": "10"}, asin="B01", seed=3)
        >>> a == Intent.from_product(title="Acme Men's Waterproof Hiking Boots (Size 10, Brown)", brand="Acme",
        ...                          price=89.99, options={"size": "10"}, asin="B01", seed=3)
        True
        >>> a.target_asin, "Acme Men's" in a.text
        ('B01', False)
        """
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        words = _title_words(title, brand) or (department or "").lower().split()
        keywords = tuple(dict.fromkeys(w.lower() for w in words if w.lower() not in _STOPWORDS and len(w) > 1))

        vague = rng.random() < 0.2 or not words
        if vague:
            thing = _vague_thing(words, department, rng)
        else:
            # Shoppers drop leading modifiers, never the head noun at the end.
            n = len(words) if len(words) <= 2 or rng.random() < 0.4 else rng.randint(2, min(4, len(words)))
            while n < len(words) and words[-n].lower() in _CONNECTORS:  # "pots and pans set", not "and pans set"
                n += 1
            kept = [w.lower() for w in words[-n:]]
            thing = " ".join(w for i, w in enumerate(kept) if i == 0 or w != kept[i - 1])

        max_price: float | None = None
        if price is not None and price > 0 and math.isfinite(price) and rng.random() < 0.6:
            max_price = float(_nice_ceiling(price * rng.uniform(1.0, 1.35)))

        chosen_options: dict[str, str] = {}
        for key, value in sorted((options or {}).items()):
            if rng.random() < 0.5:
                chosen_options[str(key)] = str(value)

        if free_text:
            text = write_request(
                RequestParts(thing=thing, options=chosen_options, max_price=max_price, vague=vague,
                             brand=brand if brand and not vague and words and rng.random() < 0.35 else None),
                random.Random(rng.getrandbits(64)),
            )
            return cls(text=text, department=department, keywords=keywords, max_price=max_price, target_asin=asin,
                       options=chosen_options)
        parts = [rng.choice(_OPENERS).format(thing=_with_article(thing))]
        if brand and not vague and words and rng.random() < 0.35:
            parts.append(rng.choice(_BRAND_PHRASES).format(brand=brand))
        if chosen_options and rng.random() < 0.7:
            phrases = [_option_phrase(k, v) for k, v in chosen_options.items()]
            parts.append("".join(p if i == 0 else (" " if p.startswith("(") else ", ") + p
                                 for i, p in enumerate(phrases)))
        if max_price is not None:
            parts.append(rng.choice(_BUDGET_PHRASES).format(price=_money(max_price)))
        text = " ".join(parts).strip()
        text = text[0].upper() + text[1:]
        if not text.endswith((".", "?", "!")):
            text += "."
        return cls(
            text=text,
            department=department,
            keywords=keywords,
            max_price=max_price,
            target_asin=asin,
            options=chosen_options,
        )


class PersonaIntent(_Frozen):
    """A persona with one intent: what a session is conditioned on. One line of a persona-intent JSONL file."""

    persona: Persona
    intent: Intent


# --------------------------------------------------------------------------------------------------------------------
# Sampling personas


@dataclass(frozen=True)
class Archetype:
    """A kind of shopper: trait centres (jittered per persona) and a description template."""

    key: str
    description: str
    traits: Mapping[str, float]
    brands: tuple[int, int] = (0, 0)  # how many preferred brands to draw (min, max)


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype(
        "bargain_hunter",
        "{name} hunts for deals, compares prices across results and rarely pays more than needed.",
        dict(budget_sensitivity=0.92, patience=0.7, brand_loyalty=0.15, review_reading=0.5, decisiveness=0.45,
             exploration=0.75),
    ),
    Archetype(
        "brand_loyalist",
        "{name} buys from a few trusted brands and looks for them first.",
        dict(budget_sensitivity=0.3, patience=0.45, brand_loyalty=0.92, review_reading=0.35, decisiveness=0.75,
             exploration=0.25),
        brands=(1, 3),
    ),
    Archetype(
        "researcher",
        "{name} researches before buying: reads the description, the ratings and the reviews, and compares options.",
        dict(budget_sensitivity=0.5, patience=0.9, brand_loyalty=0.4, review_reading=0.95, decisiveness=0.3,
             exploration=0.8),
    ),
    Archetype(
        "impulsive_buyer",
        "{name} shops on impulse and buys the first thing that looks good.",
        dict(budget_sensitivity=0.25, patience=0.15, brand_loyalty=0.3, review_reading=0.1, decisiveness=0.95,
             exploration=0.15),
    ),
    Archetype(
        "indecisive_browser",
        "{name} browses a lot, keeps refining searches, and often leaves without buying.",
        dict(budget_sensitivity=0.55, patience=0.75, brand_loyalty=0.3, review_reading=0.6, decisiveness=0.1,
             exploration=0.92),
    ),
    Archetype(
        "mission_shopper",
        "{name} knows exactly what they need, searches for it directly and buys it.",
        dict(budget_sensitivity=0.45, patience=0.3, brand_loyalty=0.5, review_reading=0.4, decisiveness=0.85,
             exploration=0.1),
    ),
    Archetype(
        "quality_seeker",
        "{name} wants the best product they can find and does not mind paying for it.",
        dict(budget_sensitivity=0.1, patience=0.65, brand_loyalty=0.6, review_reading=0.8, decisiveness=0.55,
             exploration=0.55),
        brands=(0, 2),
    ),
)

_NAMES = (
    "Alex", "Priya", "Jordan", "Mei", "Sam", "Fatima", "Luis", "Hannah", "Kofi", "Olga", "Diego", "Aisha", "Noah",
    "Yuki", "Grace", "Omar", "Lena", "Mateo", "Chloe", "Ravi", "Sofia", "Ethan", "Amara", "Jonas", "Leila", "Marcus",
    "Ines", "Tariq", "Nora", "Kenji", "Zoe", "Andre", "Maya", "Felix", "Rosa", "Daniel", "Ivy", "Hugo", "Asha", "Theo",
)  # fmt: skip

_DEFAULT_BRANDS = ("Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne")


def sample_personas(
    n: int,
    seed: int = 0,
    *,
    brands: Sequence[str] = _DEFAULT_BRANDS,
    jitter: float = 0.1,
    archetypes: Sequence[Archetype] = ARCHETYPES,
) -> list[Persona]:
    """`n` varied personas, the same for the same arguments.

    Archetypes are dealt in shuffled rounds, so any `n >= len(archetypes)` covers each of them; traits are the
    archetype's centres plus uniform noise of +-`jitter`, clipped to [0, 1]. `brands` are what brand-loving
    archetypes draw their `preferred_brands` from (pass the store's brands).

    >>> ps = sample_personas(7, seed=1)
    >>> len({p.persona_id for p in ps}), len({p.persona_id.split("-")[-1] for p in ps})
    (7, 7)
    """
    if n < 0:
        raise ValueError(f"Expect n >= 0, actually: {n}")
    if not archetypes:
        raise ValueError("Expect at least one archetype, actually: none")
    rng = random.Random(f"personas:{seed}")
    order: list[Archetype] = []
    while len(order) < n:
        block = list(archetypes)
        rng.shuffle(block)
        order.extend(block)
    names = list(_NAMES)
    rng.shuffle(names)
    brand_pool = list(dict.fromkeys(brands))
    personas = []
    for i, archetype in enumerate(order[:n]):
        name = names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}")
        traits = {
            key: round(min(1.0, max(0.0, archetype.traits.get(key, 0.5) + rng.uniform(-jitter, jitter))), 2)
            for key in TRAIT_NAMES
        }
        lo, hi = archetype.brands
        k = min(rng.randint(lo, hi), len(brand_pool)) if hi else 0
        preferred = tuple(rng.sample(brand_pool, k)) if k else ()
        personas.append(
            Persona(
                persona_id=f"s{seed}-{i:04d}-{archetype.key}",
                name=name,
                description=archetype.description.format(name=name),
                preferred_brands=preferred,
                **traits,
            )
        )
    return personas


# --------------------------------------------------------------------------------------------------------------------
# Persona-intent files


class PersonaFileError(ValueError):
    """A persona-intent JSONL file that cannot be read, with the line number and what was wrong."""


def load_persona_intents(path: str | Path) -> list[PersonaIntent]:
    """Read a JSONL file of `{"persona": {...}, "intent": {...}}` lines; blank lines are skipped.

    Raises `PersonaFileError` naming the file, the line and the problem ("path:3: intent.max_price: ...").
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaFileError(f"{path}: cannot read persona-intent file: {exc}") from None
    items: list[PersonaIntent] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise PersonaFileError(f"{where}: Expect a JSON object per line, actually: invalid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise PersonaFileError(f"{where}: Expect a JSON object, actually: {type(data).__name__}")
        try:
            item = PersonaIntent.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
            )
            raise PersonaFileError(f"{where}: Expect {{persona, intent}}, actually: {problems}") from None
        key = (item.persona.persona_id, item.intent.text)
        if key in seen:
            raise PersonaFileError(f"{where}: Expect unique (persona_id, intent), actually: repeats line {seen[key]}")
        seen[key] = lineno
        items.append(item)
    return items


def save_persona_intents(path: str | Path, items: Iterable[PersonaIntent]) -> None:
    """Write persona-intent pairs as JSONL, the format `load_persona_intents` reads."""
    with Path(path).open("w", encoding="utf-8") as f:
        for item in items:
            f.write(item.model_dump_json() + "\n")


# --------------------------------------------------------------------------------------------------------------------
# Intent text helpers

_STOPWORDS = frozenset(
    "a an and the for with of in on to by from men's women's mens womens men women pack set new 1 2 3 pcs".split()
)
_OPENERS = (
    "I need {thing}",
    "I'm looking for {thing}",
    "Looking for {thing}",
    "I want to buy {thing}",
    "Shopping for {thing}",
    "I'd like to get {thing}",
    "Need {thing}",
    "Trying to find {thing}",
)
_BRAND_PHRASES = ("from {brand}", "ideally by {brand}", "preferably {brand}")
_BUDGET_PHRASES = ("for under {price}", "under {price}", "for less than {price}", "with a budget of {price}",
                   "- nothing over {price}")
_VAGUE = ("something like {thing}", "some kind of {thing}", "a good {thing}", "a decent {thing}")


_UNIT = re.compile(r"[\d./x×-]+(?:oz|ml|l|g|kg|in|inch|cm|mm|ft|lb|lbs|pack|pcs|count)?")


def _title_words(title: str, brand: str | None) -> list[str]:
    """The title's core noun phrase: no brand, no parenthesised specs, nothing after a separator or "with"."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", title)
    text = re.split(r"\s[-|–—]\s|[,|]", text)[0]
    text = re.split(r"\s(?:with|for|featuring|including|that|by)\s", text, flags=re.IGNORECASE)[0]
    if brand:
        text = re.sub(rf"(?<!\w){re.escape(brand)}(?!\w)", " ", text, flags=re.IGNORECASE)
    words = [w.strip(".:;!\"'") for w in text.split()]
    return [w for w in words if w and not _UNIT.fullmatch(w.lower())]


def _vague_thing(words: list[str], department: str | None, rng: random.Random) -> str:
    if department and rng.random() < 0.5:
        dept = department.lower()
        return f"something from {dept}" if rng.random() < 0.5 else f"a gift from the {dept} section"
    if not words:
        return "something"
    thing = words[-1].lower()
    template = rng.choice(_VAGUE)
    return template.format(thing=_with_article(thing) if template.startswith("something like") else thing)


_CONNECTORS = frozenset({"and", "or", "&", "of", "with", "for", "in", "to", "the", "a", "an", "-"})


def _option_phrase(key: str, value: str) -> str:
    """How a shopper names an option: "in navy", "in size 10", "in a 3 pack", "(capacity: 2TB)".

    >>> [_option_phrase(k, v) for k, v in [("color", "Navy"), ("size", "10"), ("pack", "3 Pack"), ("capacity", "2TB")]]
    ['in navy', 'in size 10', 'in a 3 pack', '(capacity: 2TB)']
    """
    k = key.lower().strip()
    if k in ("color", "colour", "scent", "flavor", "flavour", "finish", "material", "style"):
        return f"in {value.lower()}"
    if k == "size":
        return f"in size {value}"
    if k in value.lower():
        return f"in {_with_article(value.lower())}"
    return f"({key}: {value})"


def _with_article(thing: str) -> str:
    if thing.startswith(("something", "some ", "a ", "an ", "a gift")):
        return thing
    last = thing.split()[-1] if thing.split() else thing
    if last.endswith("s") and not last.endswith("ss"):
        return thing  # plural: "hiking boots"
    return ("an " if thing[:1] in "aeiou" else "a ") + thing


def _nice_ceiling(value: float) -> int:
    step = 5 if value < 100 else 10 if value < 500 else 50
    return int(math.ceil(value / step) * step)


def _money(value: float) -> str:
    return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"
