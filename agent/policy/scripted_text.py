"""Words of the scripted shopper: what it reads out of an intent, the queries it types, and how it explains itself.

Used by :mod:`agent.policy.scripted`. Only what the policy's prompt shows is read here: the intent's
`text`, `max_price` and `options` (never `keywords`, `department` or `target_asin`, which are for sampling and
evaluation).

>>> want = read_intent("I'm looking for waterproof hiking boots ideally by Acme in size 10 under $120.",
...                    max_price=120, options={"size": "10"})
>>> want.thing, want.brand, want.head
('waterproof hiking boots', 'Acme', 'boot')
>>> relevance("Acme Men's Waterproof Hiking Boots, Leather", want)
1.0
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .request_reader import read_request

__all__ = [
    "MAX_QUERY_WORDS",
    "Want",
    "money",
    "query_variants",
    "read_intent",
    "relevance",
    "say",
    "short_title",
    "stem",
    "terms",
    "typo",
]

_STOP = frozenset(
    "a an and the for with of in on to by from my me some any set new men women men's women's mens womens s "
    "something thing things stuff item items pair pairs kind sort like good decent nice great one".split()
)
_BRAND = re.compile(
    r"\s+(?:from|ideally by|ideally from|preferably(?:\s+by|\s+from)?|made by|by)\s+"
    r"((?:[A-Z0-9][\w'.-]*)(?:\s+(?:&|and|\+)?\s*[A-Z0-9][\w'.-]*)*)"
)
_DEPARTMENT = re.compile(
    r"^(?:something|anything|a gift|a present|stuff|items?)\s+(?:from|in)\s+(?:the\s+)?(.+?)"
    r"(?:\s+(?:section|department|aisle|category))?$",
    re.I,
)
_VAGUE = re.compile(r"^(?:something like|some kind of|some sort of|a good|a decent|a nice|any)\s+", re.I)
_TITLE_TAIL = re.compile(r"\s(?:for|with|featuring|including|compatible with)\s|\s[-–—|]\s|,", re.I)
_WORD = re.compile(r"[a-z0-9]+")
_GENERIC = frozenset("set combo kit pack case bundle stick bank drive oil water bar bars mist cream spray".split())
_WEAK_HEADS = frozenset("set combo kit pack bundle pair".split())
_SYNONYMS = {
    "sofa": "couch", "couch": "sofa", "headphones": "headset", "earbuds": "earphones", "sneakers": "shoes",
    "tumbler": "cup", "mug": "cup", "laptop": "notebook computer", "backpack": "bag", "jacket": "coat",
    "lamp": "light", "serum": "face serum", "shampoo": "hair shampoo", "tent": "camping tent", "rug": "carpet",
}  # fmt: skip


def stem(word: str) -> str:
    """A crude plural-stripper, enough to match "boots" with "boot" and "batteries" with "battery".

    >>> [stem(w) for w in ("boots", "batteries", "dresses", "glass", "bus")]
    ['boot', 'battery', 'dress', 'glass', 'bus']
    """
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Content words of `text`, lowercased and stemmed, in order, without stop words."""
    return [stem(w) for w in _WORD.findall(text.lower().replace("'s ", " ")) if w not in _STOP]


@dataclass(frozen=True)
class Want:
    """What the shopper is after, as read from the intent."""

    text: str
    thing: str
    """The product phrase ("waterproof hiking boots"); "" when only a department is named."""
    terms: tuple[str, ...]
    head: str | None
    """The head noun (the phrase's last content word), stemmed."""
    brand: str | None = None
    """A brand the intent names ("ideally by Acme")."""
    department: str | None = None
    """A department the intent names instead of a product ("something from beauty")."""
    vague: bool = False
    max_price: float | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    qualities: tuple[str, ...] = ()
    """Attributes the text asks for besides the product phrase ("navy blue", "vegan"), not options or the brand."""

    @property
    def spoken(self) -> str:
        """How the shopper refers to what they want in a rationale: "a yoga mat", "hiking boots", "something from X".

        >>> read_intent("I need a yoga mat.").spoken, read_intent("Need hiking boots.").spoken
        ('a yoga mat', 'hiking boots')
        """
        if not self.thing:
            return f"something from {self.department}" if self.department else "something"
        last = self.thing.split()[-1]
        if last.endswith("s") and not last.endswith(("ss", "us")):
            return self.thing
        return ("an " if self.thing[:1] in "aeiou" else "a ") + self.thing


def read_intent(text: str, max_price: float | None = None, options: Mapping[str, str] | None = None) -> Want:
    """Read the product phrase, its qualities, a named brand or department, and vagueness out of an intent's text.

    Works on text the shopper did not write (see `agent.policy.request_reader`): filler is dropped, the noun phrase
    after "looking for / need / find me" is the product, "that is ...", "with ...", "under N dollars" are constraints. A
    budget or size the text names is used when `max_price` or `options` lack one.

    >>> w = read_intent("i am looking for a headphones case that is apple compatible and is navy blue colored")
    >>> w.thing, w.head, w.qualities
    ('headphones case', 'case', ('apple compatible', 'navy blue'))
    >>> w = read_intent("find me some gluten free snack bars under 30 dollars, please make sure they're vegan")
    >>> w.thing, w.max_price, [q for _, q in query_variants(w)][:2]
    ('gluten free snack bars', 30.0, ['vegan gluten free snack bars', 'gluten free snack bars'])
    """
    options = dict(options or {})
    req = read_request(text)
    brand = None
    m = _BRAND.search(text.strip().rstrip(" .!?"))
    if m:
        brand = m.group(1).rstrip(".,;:")
    department = None
    m = _DEPARTMENT.match(req.body.strip(" ,.-–"))
    if m:
        department = m.group(1).strip().lower()
    vague = bool(_VAGUE.match(req.body)) or department is not None
    thing = "" if department else req.thing
    words = terms(thing)
    head = words[-1] if words else None
    if len(words) > 1 and head in _WEAK_HEADS:  # "cookware set" is about cookware
        head = words[-2]
    said = {str(v).lower() for v in options.values()} | ({brand.lower()} if brand else set())
    qualities = () if department else tuple(q for q in req.qualities if q not in said)
    if req.size and not any(k.lower() == "size" for k in options):
        options["size"] = req.size
    return Want(
        text=text, thing=thing, terms=tuple(dict.fromkeys(words)), head=head, brand=brand, department=department,
        vague=vague, max_price=max_price if max_price is not None else req.max_price, options=options,
        qualities=qualities,
    )


def relevance(title: str, want: Want) -> float:
    """How well a product title matches what the shopper wants, in [0, 1]: half for the head noun, half for the rest.

    The head noun counts fully only in the title's core, before "for", "with", a dash or a comma; a department-only
    intent has no words to match, and every product scores a neutral 0.6.

    >>> want = read_intent("I need a laptop.")
    >>> relevance("Acme 2-in-1 Laptop, 16GB", want), relevance("Acme Charger with Cable for Laptops", want)
    (1.0, 0.6)
    """
    if not want.terms:
        return 0.6
    got = set(terms(title))
    core = set(terms(_TITLE_TAIL.split(title)[0]))  # "Charger with Cable for Laptops" is a charger
    head = 1.0 if want.head in core else 0.2 if want.head in got else 0.0
    share = sum(t in got for t in want.terms) / len(want.terms)
    return round(0.5 * head + 0.5 * share, 3)


# --------------------------------------------------------------------------------------------------------------------
# Queries


def typo(word: str, rng: random.Random) -> str:
    """Swap two adjacent inner letters, the commonest typing slip."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


MAX_QUERY_WORDS = 8


def query_variants(want: Want) -> list[tuple[str, str]]:
    """Queries a shopper might type for `want`, as (kind, text), most specific first, without duplicates.

    "full" is the product phrase with up to two qualities in front (at most `MAX_QUERY_WORDS` words); "plain" the
    phrase alone; "short" its last two words, then its head noun alone (for a retry: people's first queries have 2+
    words when they can).

    >>> [q for _, q in query_variants(read_intent("I need waterproof hiking boots ideally by Acme."))]
    ['waterproof hiking boots', 'acme waterproof hiking boots', 'hiking boots', 'boots']
    """
    out: list[tuple[str, str]] = []
    words = [" ".join(_WORD.findall(w)) for w in want.thing.replace("'s ", " ").split()]
    words = [w for w in words if w and w not in ("and", "or")][-(MAX_QUERY_WORDS - 2):]
    if want.thing:
        front: list[str] = []
        for quality in want.qualities[:2]:
            quality_words = [" ".join(_WORD.findall(w)) for w in quality.split()]
            if len(front) + len(quality_words) + len(words) <= MAX_QUERY_WORDS:
                front.extend(w for w in quality_words if w)
        out.append(("full", " ".join([*front, *words])))
        if front:
            out.append(("plain", " ".join(words)))
        if want.brand:
            out.append(("brand", f"{want.brand.lower()} {' '.join(words)}"))
        for n in (2, 1):
            if len(words) > n and not (n == 1 and words[-1] in _GENERIC):
                out.append(("short", " ".join(words[-n:])))
        last = words[-1] if words else ""
        if last in _SYNONYMS:
            out.append(("reworded", " ".join([*words[-2:-1], _SYNONYMS[last]]).strip()))
        for value in want.options.values():
            if value and not value[0].isdigit():
                out.append(("option", f"{value.lower()} {' '.join(words[-2:])}"))
                break
    elif want.department:
        out.append(("department", want.department.replace("&", "and")))
        if want.brand:
            out.append(("brand", want.brand.lower()))
    seen: set[str] = set()
    unique: list[tuple[str, str]] = []
    for kind, query in out:
        query = " ".join(query.split())
        if query and query not in seen:
            seen.add(query)
            unique.append((kind, query))
    return unique


# --------------------------------------------------------------------------------------------------------------------
# Rationales

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "search": (
        "I'm here for {want}, so I'll start by searching for \"{query}\".",
        "Let me search for \"{query}\" and see what comes up.",
        "I'll type \"{query}\" into the search box; that should find {want}.",
        "Searching for \"{query}\" is the quickest way to find {want}.",
        "First I'll look up \"{query}\".",
    ),
    "search_brand": (
        "I trust {brand}, so I'll search for \"{query}\" first.",
        "I'd rather get this from {brand}; searching for \"{query}\".",
        "Let me see if {brand} has what I need: \"{query}\".",
    ),
    "search_again": (
        "These results aren't what I'm after; let me try \"{query}\" instead.",
        "Nothing here fits, so I'll reword my search to \"{query}\".",
        "That search didn't work well. Trying \"{query}\".",
        "Let me try a different search: \"{query}\".",
    ),
    "search_narrower": (
        "These results are broader than what I want. I'll search for \"{query}\" instead.",
        "Let me be more specific and search for \"{query}\".",
        "Too many of these aren't quite it; narrowing my search to \"{query}\".",
    ),
    "search_empty": (
        "No results for \"{old}\". I'll try something simpler: \"{query}\".",
        "Nothing came up for \"{old}\", so I'll search for \"{query}\" instead.",
        "Zero results; maybe \"{query}\" works better.",
    ),
    "browse_department": (
        "I don't have one product in mind, so I'll browse the {dept} department.",
        "I'll start by looking around the {dept} section.",
        "Let me see what the {dept} department has.",
    ),
    "open": (
        "The {title} looks promising: {reason}. Let me open it.",
        "I'll take a closer look at the {title}; {reason}.",
        "{Reason}, so I'm clicking on the {title}.",
        "Opening the {title}: {reason}.",
        "This one catches my eye, the {title}: {reason}.",
    ),
    "reopen": (
        "Having compared a few, the {title} at {price} is still the best, so I'm going back to it.",
        "I keep coming back to the {title}; {reason}. Opening it again.",
        "After looking around, I prefer the {title} ({price}). Let me reopen it.",
    ),
    "featured": (
        "The {title} on the front page looks like what I want ({price}); let me look at it.",
        "That featured {title} is right up my alley at {price}. Clicking it.",
    ),
    "refine_brand": (
        "I prefer {brand}, so I'll filter the results to that brand.",
        "Let me narrow this down to {brand}, a brand I trust.",
        "There's a {brand} filter; I'll use it since I like their products.",
    ),
    "refine_price": (
        "My budget is {budget}, so I'll filter by the \"{band}\" price range.",
        "Too many of these cost more than {budget}. Filtering to {band}.",
        "Let me limit the price to {band} to stay under {budget}.",
    ),
    "refine_max": (
        "I don't want to spend more than {budget}, so I'll set the maximum price to {value}.",
        "Let me cap the price at {value} so I only see things I can afford.",
        "I'll enter {value} as the max price to filter out the expensive stuff.",
    ),
    "refine_rating": (
        "I only want well-reviewed products, so I'll filter to {band}.",
        "Reviews matter to me; showing only {band}.",
        "Let me hide the poorly rated ones: {band}.",
    ),
    "refine_department": (
        "These results are mixed; I'll narrow them to the {dept} department.",
        "Let me stick to the {dept} department.",
    ),
    "sort_price": (
        "I want the best deal, so I'll sort by price, low to high.",
        "Let me sort these from cheapest to most expensive.",
        "Sorting by lowest price first; I'm watching my budget.",
    ),
    "sort_rating": (
        "I'll sort by customer reviews to see the best-rated ones first.",
        "Let me put the highest-rated products on top.",
        "Sorting by average review; ratings matter to me.",
    ),
    "next_page_browse": (
        "There are a few options here, but I want to see what's on the next page before I decide.",
        "Let me browse the next page too; I like to see everything first.",
    ),
    "next_page": (
        "Nothing on this page fits {why}; let me check the next page.",
        "None of these work for me {why}. Next page.",
        "I'll look at the next page of results, since nothing here fits {why}.",
    ),
    "over_budget": (
        "At {price} the {title} is over my {budget} budget. Going back to the results.",
        "{price} is more than I want to spend (my limit is {budget}), so I'll look elsewhere.",
        "Too expensive: {price} versus my budget of {budget}. Back to the list.",
    ),
    "not_relevant": (
        "The {title} isn't really {want}. Back to the results.",
        "This isn't what I'm looking for; I wanted {want}. Going back.",
        "Hmm, the {title} doesn't match {want}. Let me go back.",
    ),
    "bad_reviews": (
        "Only {rating} stars, and reviews like \"{review}\" put me off. I'll look at other options.",
        "The reviews aren't convincing ({rating} stars, \"{review}\"). Going back to the results.",
        "I read the reviews: too many complaints (\"{review}\"). Back to the list.",
    ),
    "bad_reviews_read": (
        "{rating} stars overall, but the reviews I read are mostly negative (\"{review}\"). I'll keep looking.",
        "I read the reviews and they worry me (\"{review}\"). Back to the results.",
    ),
    "missing_option": (
        "It doesn't come in {value}, which is what I need. Back to the results.",
        "No {value} option for the {title}, so it's not for me.",
    ),
    "wrong_brand": (
        "The {title} is from {brand}, but I'd rather have {preferred}. Let me look for that instead.",
        "I'm not sure about {brand}; I'd prefer {preferred}. Going back.",
    ),
    "compare": (
        "The {title} is decent at {price}, but I'd like to compare a couple more before deciding.",
        "This could work ({price}, {rating} stars), but let me see what else there is first.",
        "Not bad. Still, I want to compare it with the other results before I commit.",
    ),
    "read_reviews": (
        "Before deciding, I want to read what other buyers say about the {title}.",
        "Let me check the customer reviews of the {title} first.",
    ),
    "option_wanted": (
        "I want it in {value}, so I'll select {value} for the {group}.",
        "Picking {value} as the {group}, as I planned.",
        "Let me choose the {group} I need: {value}.",
    ),
    "option_any": (
        "I need to pick a {group}; {value} works for me.",
        "I have to choose a {group} first. I'll go with {value}.",
        "Selecting {value} for the {group}.",
    ),
    "option_fix": (
        "The store asks me to choose a {group}; I'll pick {value}.",
        "I forgot to choose a {group}. {value} it is.",
    ),
    "add_to_cart": (
        "The {title} fits what I need: {facts}. Adding it to my cart.",
        "This is the one: {facts}. I'll add it to the cart.",
        "{Facts}; good enough for me. Into the cart it goes.",
        "I'm happy with the {title} ({facts}). Adding to cart.",
    ),
    "buy_now": (
        "The {title} is exactly what I want ({facts}). I'll just buy it now.",
        "No need to think twice: {facts}. Buy now.",
        "{Facts}. I'm buying it right away.",
    ),
    "decide_after_compare": (
        "I've compared enough; the {title} ({facts}) is the best of what I've seen. Adding it to my cart.",
        "After comparing, I'm going with the {title}: {facts}.",
    ),
    "walk_away": (
        "The {title} is fine, but I can't make up my mind. I'll think about it and maybe come back later.",
        "I'm not convinced enough to spend {price} on the {title} today. Leaving for now.",
        "I keep going back and forth on this. I'll sleep on it instead of buying now.",
    ),
    "checkout": (
        "My cart has the {item} for {total}. Proceeding to checkout.",
        "Everything looks right in the cart ({total}). Time to check out.",
        "I'll proceed to checkout with the {item}.",
    ),
    "go_to_cart": (
        "I already put the {item} in my cart; let me go check out.",
        "My cart has what I want, so I'll head to the cart.",
    ),
    "abandon": (
        "On second thought, I'm not sure I need this right now. I'll leave it in the cart.",
        "Hmm, I'm having second thoughts. I'll hold off for now.",
        "Seeing it in the cart, I'm not so sure anymore. I'll leave it there for now.",
    ),
    "abandon_price": (
        "{total} is a bit more than I feel like spending today. I'll think about it and come back later.",
        "The cart total of {total} gives me pause; I'll wait for a better deal.",
    ),
    "place_order": (
        "The shipping details are already filled in and the total is {total}. Placing the order.",
        "Everything is in order: {total}, paid on delivery. I'll place the order.",
        "Looks good. Placing my order for {total}.",
    ),
    "surcharge": (
        "Checkout adds {extra} I wasn't told about, making it {total}. That's not what I agreed to; I'm leaving.",
        "A surprise fee of {extra} at the last step? I won't pay {total} for this. I'll stop here.",
    ),
    "slow_page": (
        "This site is so slow; that page took {wait} seconds. I don't have time for this.",
        "Waiting {wait} seconds for every page is too much. I'll shop somewhere faster.",
    ),
    "no_filters": (
        "So many results and no way to narrow them down to {want}{budget_clause}. I'll shop somewhere easier.",
        "There are no filters here, and I'm not going to dig through all of these. Leaving.",
    ),
    "find_search": (
        "There's no search box here, so I'll click Search to get to one.",
        "I need to search again; the box isn't on this page, so I follow the Search link.",
    ),
    "try_unnamed": (
        "I can't see an Add to Cart button for the {title}, only unlabeled buttons. I'll try the first one.",
        "Nothing here says how to buy the {title}; maybe this unlabeled button adds it to my cart.",
    ),
    "cannot_buy": (
        "I can't tell how to buy the {title} here: the buttons don't say what they do. I give up.",
        "There's no clear way to add the {title} to my cart, so I'll leave.",
    ),
    "hesitate_checkout": (
        "Now that I see the total of {total}, I'm getting cold feet. I'll stop here.",
        "I'm not ready to commit after all. Leaving.",
    ),
    "empty_cart": (
        "My cart is empty, so there's nothing to check out. I'll keep shopping.",
        "Nothing in the cart yet. Let me go back to looking for {want}.",
    ),
    "out_of_patience": (
        "I've spent long enough looking for {want} without finding the right one. I'm done.",
        "This is taking too long. I'll give up on {want} for today.",
        "I'm tired of searching; nothing has been quite right. Leaving the store.",
        "I've looked around enough without success, so I'll stop here.",
    ),
    "nothing_fits": (
        "Nothing here matches {want}{budget_clause}, so I'll leave.",
        "I couldn't find {want}{budget_clause} in this store. I'm done.",
        "None of the products fit what I need. I'll try somewhere else.",
    ),
    "done": (
        "My order is placed; I'm done shopping.",
        "I got what I came for, so I'm finished here.",
    ),
    "recover_search": (
        "That didn't work ({error}). I'll just search for \"{query}\" again.",
        "Something went wrong there. Let me search for \"{query}\" instead.",
        "That click failed; I'll use the search box: \"{query}\".",
    ),
    "recover_home": (
        "That didn't work ({error}). I'll go back to the home page and start over.",
        "Something went wrong. Let me return to the home page.",
    ),
    "error_page": (
        "This page doesn't seem to exist. I'll go back to the home page.",
        "I hit an error page. Let me start again from the home page.",
    ),
    "error_search": (
        "This page is an error. I'll search for \"{query}\" instead.",
        "Dead end here; searching for \"{query}\".",
    ),
    "back_to_results": (
        "Let me go back to the results and look at the other options.",
        "I'll return to the search results.",
    ),
    "leave_page": (
        "I'm not sure what this page is for. Going back to the home page.",
        "Nothing useful for me here; back to the home page.",
    ),
}

_PERSONA_ASIDES: dict[str, tuple[str, ...]] = {
    "budget": ("I'm keeping an eye on my budget.", "Price matters a lot to me.", "I don't like overpaying."),
    "reviews": ("I always check the reviews.", "The ratings matter to me."),
    "brand": ("I tend to stick with brands I know.",),
    "impatient": ("I don't have all day.", "I want to get this done quickly."),
}


def say(kind: str, rng: random.Random, aside: str | None = None, aside_p: float = 0.0, **facts: object) -> str:
    """A first-person rationale for situation `kind`, one of several templates chosen by `rng`.

    `{Name}` in a template is the fact `name` with its first letter capitalised. With probability `aside_p` a short
    persona aside (`budget`, `reviews`, `brand`, `impatient`) is added.
    """
    template = rng.choice(_TEMPLATES[kind])
    values = {k: str(v) for k, v in facts.items()}
    values.update({k[:1].upper() + k[1:]: _cap(v) for k, v in values.items()})
    try:
        text = template.format(**values)
    except KeyError:  # a template needs a fact this call lacks: use the first template that fits
        text = next((t.format(**values) for t in _TEMPLATES[kind] if _fits(t, values)), template)
    if aside and aside in _PERSONA_ASIDES and rng.random() < aside_p:
        text = f"{text} {rng.choice(_PERSONA_ASIDES[aside])}"
    return text


def _fits(template: str, values: Mapping[str, str]) -> bool:
    return all(k in values for k in re.findall(r"{(\w+)}", template))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def money(value: float | None) -> str:
    """`$1,234.50`; `$45` for whole amounts."""
    if value is None:
        return "an unknown price"
    return f"${value:,.0f}" if float(value).is_integer() else f"${value:,.2f}"


def short_title(title: str, limit: int = 48) -> str:
    """A product title as a shopper would say it: the part before a dash or comma, at most `limit` characters."""
    core = re.split(r"\s[-–—|]\s|,", title)[0].strip()
    if len(core) > limit:
        core = core[:limit].rsplit(" ", 1)[0]
    return re.sub(r"(?:\s+(?:for|with|and|of|the|in|to|by|&))+$", "", core, flags=re.I)
