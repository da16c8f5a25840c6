"""What the scripted shopper does on any page: speak a rationale, click, type, leave, and search.

Every page handler (`scripted_pages`) builds its step from these. Rationales come from `scripted_text.say`, with an
aside about the persona's strongest habit now and then (`aside`). Queries are human-like variants of the intent
(`next_query`): the first names the product (brand first for brand lovers), later ones reword it, and a few carry a
typo (`ScriptedConfig.typo_rate`).
"""

from __future__ import annotations

from envs.actions import Click, Terminate, TypeAndSubmit

from .scripted_state import ShopperState, Step, brand_bonus
from .scripted_text import money, query_variants, say, typo
from .scripted_traits import side_rng, take_detour

__all__ = ["aside", "budget_clause", "click", "detour_to_search", "habits", "next_query", "search", "speak",
           "terminate", "type_in"]


def speak(s: ShopperState, kind: str, aside: str | None = None, **facts: object) -> str:
    """A rationale for situation `kind`, naming what the shopper wants unless `facts` says otherwise."""
    facts.setdefault("want", s.want.spoken)
    return say(kind, s.rng, aside=aside, aside_p=s.config.aside_rate, **facts)


def aside(s: ShopperState, *allowed: str) -> str | None:
    """The persona's strongest habit among those that fit the moment (`allowed`), if it is strong."""
    p = s.persona
    traits = {"budget": p.budget_sensitivity, "reviews": p.review_reading,
              "brand": p.brand_loyalty if p.preferred_brands else 0.0, "impatient": 1 - p.patience}
    traits = {k: v for k, v in traits.items() if k in allowed}
    best = max(traits, key=lambda k: traits[k], default=None)
    return best if best is not None and traits[best] >= 0.75 else None


def habits(s: ShopperState, brand: str | None) -> tuple[str, ...]:
    """Asides that fit choosing a product of `brand`: brand loyalty only when it is a favourite."""
    return ("budget", "reviews", "impatient") + (("brand",) if brand_bonus(s, brand) >= 0.4 else ())


def budget_clause(s: ShopperState) -> str:
    return f" under {money(s.want.max_price)}" if s.want.max_price else ""


def terminate(rationale: str) -> Step:
    return rationale, Terminate()


def click(rationale: str, name: str) -> Step:
    return rationale, Click(name=name)


def type_in(rationale: str, name: str, text: str) -> Step:
    return rationale, TypeAndSubmit(name=name, text=text)


def next_query(s: ShopperState) -> tuple[str, str] | None:
    """(kind, text) of the query to type now: the first one, or a new variant after earlier searches.

    The first query's wording leans on `brand_loyalty` (brand first); later ones are variants not typed yet.
    """
    variants = query_variants(s.want)
    if not variants:
        return None
    used = {" ".join(q.lower().split()) for q in s.mem.searches}
    if not s.mem.searches:
        # The first query names the product: no synonym, and one word only when the product phrase is one word.
        first = [v for v in variants if v[0] != "reworded" and (len(v[1].split()) > 1 or v[0] in ("full",
                                                                                                 "department"))]
        weights = []
        for kind, _ in first:
            w = {"full": 0.6, "plain": 0.2, "short": 0.25, "option": 0.08, "department": 1.0}.get(kind, 0.1)
            if kind == "brand":
                w = 0.15 + 0.6 * s.persona.brand_loyalty
            weights.append(w)
        kind, text = s.rng.choices(first, weights=weights)[0]
    else:
        fresh = [v for v in variants if v[1] not in used and not any(_close(v[1], u) for u in used)]
        if not fresh:
            return None
        kind, text = fresh[0] if s.rng.random() < 0.7 else s.rng.choice(fresh)
    if s.rng.random() < s.config.typo_rate:
        words = text.split()
        i = max(range(len(words)), key=lambda j: len(words[j]))
        words[i] = typo(words[i], s.rng)
        text = " ".join(words)
    if s.rng.random() < 0.1:
        text = text[:1].upper() + text[1:]
    return kind, text


def search(s: ShopperState, situation: str, **facts: str) -> Step | None:
    """Type a query into the search box, or None when there is no box or no new query.

    Without a box on the page, a link to search may be taken instead (an extra click, worth it to patient shoppers:
    `take_detour`).
    """
    if s.page.search_input is None:
        return detour_to_search(s)
    q = next_query(s)
    if q is None:
        return None
    kind, text = q
    if situation == "search" and kind == "brand" and s.want.brand:
        situation = "search_brand"
        facts["brand"] = s.want.brand
    return type_in(speak(s, situation, query=text, **facts), s.page.search_input, text)


def detour_to_search(s: ShopperState, optional: bool = False) -> Step | None:
    """Click the page's "Search" link to reach the box, if worth the extra click to this persona (less so for an
    `optional` search: `take_detour`); else None."""
    link = s.page.search_link
    if link is None or s.steps_left <= 2 or (s.mem.searches and next_query(s) is None):
        return None
    if side_rng(s.rng, "detour").random() >= take_detour(s.persona, optional):
        return None
    return click(speak(s, "find_search"), link)


def _close(a: str, b: str) -> bool:
    """Two queries that differ only by case, spacing or a typo count as the same search."""
    a, b = " ".join(a.lower().split()), " ".join(b.lower().split())
    if a == b:
        return True
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
