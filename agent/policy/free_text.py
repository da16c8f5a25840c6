"""Free-text shopping requests: the same wish, written the many ways people write it.

`Intent.from_product(..., free_text=True)` uses `write_request` to phrase an intent the way a person types it into a
chat box: long or short, chatty or terse, lowercase or ALL CAPS, with typos, with the constraints (colour, size,
budget, brand, a quality such as "waterproof") before or after the product and in any order. Nothing here is one
sentence pattern: each request is composed from independently drawn parts (an opener or none, a greeting, a bit of
context, how each constraint is said, their order and joins, a closer, casing, typos), all drawn from one seeded
`random.Random`, so the same seed gives the same text.

The product's head noun is never misspelt (its other words and the option values rarely), so a reader can always
find it (`agent.analysis.query_checks` checks queries against it).

>>> import random
>>> parts = RequestParts(thing="waterproof hiking boots", options={"color": "navy"}, max_price=120, brand="Acme")
>>> write_request(parts, random.Random(1)) == write_request(parts, random.Random(1))
True
>>> texts = {write_request(parts, random.Random(s)) for s in range(50)}
>>> len(texts), all("boots" in t.lower() for t in texts)
(50, True)
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RequestParts", "write_request"]


@dataclass(frozen=True)
class RequestParts:
    """What the request says: the product phrase and its constraints (all optional but `thing`)."""

    thing: str
    """The product phrase ending in its head noun, lowercase ("waterproof hiking boots")."""
    options: Mapping[str, str] = field(default_factory=dict)
    max_price: float | None = None
    brand: str | None = None
    vague: bool = False
    """True when `thing` is already vague ("something from beauty"): no qualities are split off it."""


# Words that describe a quality rather than the kind of product: they may move into a clause ("that is waterproof").
_QUALITY = frozenset(
    "waterproof wireless portable organic vegan lightweight rechargeable adjustable unscented natural compact "
    "ergonomic cordless foldable washable insulated stainless leather cotton wool bamboo ceramic glass wooden "
    "quick-dry non-stick nonstick gluten-free sugar-free fragrance-free bpa-free noise-cancelling anti-slip".split()
)
_QUALITY_SUFFIXES = ("proof", "able", "ible", "-free", "less")

_GREETINGS = ("hi", "hi!", "hey", "hey there,", "hello,", "hello!", "ok so", "so", "quick question:", "hmm,",
              "good morning!", "hiya,", "yo")
_CONTEXT = (
    "my old one finally broke.", "it's a gift for my sister.", "we just moved into a new place.",
    "i've been putting this off for weeks", "a friend told me to try this shop.", "mine is falling apart",
    "it's for my dad's birthday next week.", "first time shopping here", "my kid keeps asking for one",
    "i'm restocking before the holidays.",
)
_OPENERS = (
    "i am looking for", "i'm looking for", "im looking for", "looking for", "i need", "need", "i want", "i want to buy",
    "find me", "can you find me", "get me", "i'd like", "i would like to get", "searching for", "shopping for",
    "in the market for", "trying to find", "please find me", "help me find", "do you have", "show me", "i'm after",
    "hunting for", "could you help me find", "i wanna buy", "where can i find", "i'd love", "need to buy", "",
)
_CLOSERS = ("thanks!", "thank you so much", "thx", "cheers", "asap please", "any help appreciated",
            "need it by friday", "thanks in advance.", "ty!", "please and thank you")
_COLOUR = ("in {v}", "{v} colored", "{v} color", "color: {v}", "that is {v}", "preferably {v}", "in the color {v}",
           "in {v} if possible", "{v} one")
_SIZE = ("in size {v}", "size {v}", "{v} size", "my size is {v}", "in a {v}", "sz {v}", "size: {v}")
_OTHER_OPTION = ("{k} {v}", "with {k} {v}", "({k}: {v})", "{k}: {v}", "in {v}", "the {v} {k}")
_NAMED_OPTION = ("{v}", "in a {v}", "the {v}", "({v})")  # the value names its key: "10 pack"
_PRICE = ("under ${p}", "under {p} dollars", "less than {p} bucks", "for less than ${p}",
          "price lower than {p}.00 dollars", "and price lower than {p}.00 dollars", "budget is ${p}",
          "my budget is around ${p}", "no more than ${p}",
          "max ${p}", "<${p}", "can't spend more than ${p}", "${p} max", "not over {p} dollars", "below ${p}",
          "cheaper than {p} dollars", "up to ${p}")
_BRAND = ("from {b}", "by {b}", "{b} brand", "made by {b}", "preferably {b}", "ideally from {b}", "i like {b}",
          "{b} if they have it")
_QUALITY_CLAUSE = ("that is {a}", "that's {a}", "which is {a}", "it should be {a}", "must be {a}",
                   "and it has to be {a}", "please make sure it's {a}", "{a} please", "needs to be {a}",
                   "and is {a}", "{a} would be great")
_JOINS = (", ", " and ", ", also ", " - ", " ", ", and ", ". ", "; ", " with ")


def write_request(parts: RequestParts, rng: random.Random) -> str:
    """One free-text request for `parts`, drawn from `rng` (see the module docstring)."""
    words = parts.thing.split()
    head = words[-1] if words else parts.thing
    qualities: list[str] = []
    if not parts.vague and len(words) > 1 and rng.random() < 0.5:
        movable = [w for w in words[:-1] if _is_quality(w)]
        if movable:
            moved = movable[: rng.randint(1, len(movable))]
            qualities = [w.replace("-", " ") if rng.random() < 0.6 else w for w in moved]
            words = [w for w in words if w not in moved]
    thing = " ".join(words)

    # Constraints, each said one of several ways; some go before the product as plain modifiers.
    before: list[str] = []
    after: list[str] = []
    for key, value in parts.options.items():
        k, v = key.lower(), str(value).lower()
        if k in ("color", "colour", "scent", "flavor", "flavour", "finish", "material", "style"):
            if rng.random() < 0.3 and not parts.vague:
                before.append(v)
            else:
                after.append(rng.choice(_COLOUR).format(v=v).replace("color", k if k != "colour" else "colour"))
        elif k == "size":
            after.append(rng.choice(_SIZE).format(v=v))
        elif k in v:
            after.append(rng.choice(_NAMED_OPTION).format(v=v))
        else:
            after.append(rng.choice(_OTHER_OPTION).format(k=k, v=v))
    after.extend(rng.choice(_QUALITY_CLAUSE).format(a=q) for q in qualities)
    if parts.brand:
        brand = parts.brand if rng.random() < 0.5 else parts.brand.lower()
        if rng.random() < 0.25:
            before.insert(0, brand)
        else:
            after.append(rng.choice(_BRAND).format(b=brand))
    if parts.max_price is not None:
        after.append(rng.choice(_PRICE).format(p=f"{parts.max_price:g}"))
    rng.shuffle(after)

    article = "" if parts.vague or rng.random() < 0.5 else rng.choice(("a ", "some ", "a new ", "an ", "one "))
    if article == "an " and thing[:1] not in "aeiou":
        article = "a "
    style = rng.choices(("plain", "terse", "chatty", "upfront"), weights=(4, 2, 3, 1))[0]
    if style == "terse":  # "navy waterproof rain jacket size m <$50": qualities in front, the rest behind
        front = [] if parts.vague else [q for q in qualities if rng.random() < 0.8]
        back = [_terse(c) for c in after if not any(c.endswith(q) for q in front)]
        text = " ".join([*front, *before, thing, *back])
    else:
        core = f"{article}{' '.join([*before, thing])}".strip()
        opener = rng.choice(_OPENERS)
        request = f"{opener} {core}".strip()
        if style == "upfront" and after:  # constraints first: "under $50, in navy: looking for a rain jacket"
            n_first = rng.randint(1, len(after))
            text = f"{', '.join(after[:n_first])}{rng.choice((': ', ' - ', ', ', '. '))}{request}"
            text = _join([text, *after[n_first:]], rng)
        else:
            text = _join([request, *after], rng)
        if style == "chatty":
            lead = [rng.choice(_GREETINGS)] if rng.random() < 0.7 else []
            if rng.random() < 0.6:
                lead.append(rng.choice(_CONTEXT))
            text = " ".join([*lead, text])
            if rng.random() < 0.7:
                text = f"{text.rstrip('.')}. {rng.choice(_CLOSERS)}"
    said = [parts.thing, *parts.options.values(), parts.brand or ""]
    protect = {head} if rng.random() < 0.1 else {w for s in said for w in str(s).lower().split()}
    text = _typos(text, protect=protect, rng=rng)
    text = _case(text, rng)
    end = rng.choices(("", ".", "!", "?", "!!", " :)"), weights=(5, 4, 1, 1, 0.5, 0.5))[0]
    return " ".join(text.split()).rstrip(" ,;-") + (end if not text.endswith((".", "!", "?")) else "")


def _is_quality(word: str) -> bool:
    w = word.lower()
    return w in _QUALITY or w.endswith(_QUALITY_SUFFIXES)


def _terse(constraint: str) -> str:
    """Drop the words a terse writer leaves out: "that is navy" -> "navy", "please make sure it's vegan" -> "vegan"."""
    return re.sub(r"^(?:and |that is |that's |which is |it should be |must be |please make sure it's |needs to be "
                  r"|and it has to be |and is |my size is |in the color |preferably |ideally |i like )", "",
                  constraint)


def _join(pieces: list[str], rng: random.Random) -> str:
    out = pieces[0]
    for piece in pieces[1:]:
        out += rng.choice(_JOINS) + piece
    return out


_TYPO_WORD = re.compile(r"[a-z]{4,}")


def _typos(text: str, protect: set[str], rng: random.Random) -> str:
    """Misspell up to two words, none in `protect`: swap, drop or double a letter.

    The product words, option values and brand are protected in nine requests out of ten, the head noun always."""
    if rng.random() >= 0.35:
        return text
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if _TYPO_WORD.fullmatch(w) and w not in protect]
    for i in rng.sample(spots, min(len(spots), rng.randint(1, 2))):
        w = words[i]
        j = rng.randrange(1, len(w) - 1)
        kind = rng.random()
        if kind < 0.4:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        elif kind < 0.7:
            w = w[:j] + w[j + 1:]
        else:
            w = w[:j] + w[j] + w[j:]
        words[i] = w
    return " ".join(words)


def _case(text: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return text.lower()
    if r < 0.9:
        return text[:1].upper() + text[1:]
    if r < 0.96:
        return text.upper()
    return text.title()
