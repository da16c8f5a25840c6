"""Store variants: the layouts a UX team would A/B test, and known-effect variants that a UX test must detect.

`a` and `b` are two complete, working layouts that differ subtly. The other variants are `a` with one change whose
direction for real shoppers is not in doubt (each `Variant.expected` says which way and why); an A/B tool that
cannot tell them from `a` would say "ship it" to a broken store.

- `a`, `b`: two complete layouts (`b`: refinements above a 20-card grid, "Buy now" above the options); a subtle
  change.
- `hidden-search`: the search box only on the home page; elsewhere a "Search" link to it. Fewer searches.
- `no-filters`: no refinements on results pages (sorting stays). Fewer purchases.
- `unlabeled-buttons`: "Add to Cart" and "Buy Now" are icon buttons with no text and no accessible name. Fewer
  purchases.
- `bad-ranking`: results ordered by price, highest first, while the page says "Relevance". Fewer purchases.
- `slow`: every page answers `delay_s` (1.5 s) later. More abandonment.
- `price-shock`: a 20% service fee appears only at checkout. Fewer purchases.

Shoppers never see a variant's name: it is not in any page, header, URL or cookie. They meet a variant only through
its pages, as a customer would. (The server keeps the name in its own analytics and orders.)

>>> get_variant_spec("slow").delay_s, get_variant_spec("slow", delay_s=0.01).delay_s
(1.5, 0.01)
>>> get_variant_spec("c")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: Expect a variant in a, b, hidden-search, ..., price-shock; actually: 'c'
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import Literal

from .models import SortKey

__all__ = ["VARIANTS", "VARIANT_NAMES", "Variant", "VariantName", "get_variant_spec"]


@dataclass(frozen=True)
class Variant:
    """One version of the store. Every field but `name`, `description` and `expected` changes what pages show."""

    name: str
    filters: Literal["sidebar", "topbar", "none"]  # where the refinements sit on the results page (none: no filters)
    results: Literal["list", "grid"]  # one wide row per result, or a dense card grid
    per_page: int  # results per page
    buy_now_label: str
    buy_now_position: Literal["after_add_to_cart", "above_options"]
    description: str
    expected: str = "no effect expected: a subtle layout change"
    search_box: Literal["every_page", "home_only"] = "every_page"
    labelled_buttons: bool = True  # False: "Add to Cart" / "Buy Now" are icons with no text and no accessible name
    relevance_order: SortKey = "relevance"  # what the results are really ordered by when the page says "Relevance"
    delay_s: float = 0.0  # every page answers this much later
    checkout_fee_rate: float = 0.0  # a fee, as a share of the items, that first appears at checkout
    expected_effects: tuple[tuple[str, int], ...] = ()
    """How a UX test should see it against `a`, most telling first: (metric, +1 up / -1 down) with metric one of
    conversion, steps, searches, seconds (per session)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delay_s) and 0 <= self.delay_s <= 60):
            raise ValueError(f"Expect 0 <= delay_s <= 60 seconds, actually: {self.delay_s}")
        if not (math.isfinite(self.checkout_fee_rate) and 0 <= self.checkout_fee_rate <= 1):
            raise ValueError(f"Expect 0 <= checkout_fee_rate <= 1, actually: {self.checkout_fee_rate}")
        if self.per_page < 1:
            raise ValueError(f"Expect per_page >= 1, actually: {self.per_page}")

    def checkout_fee(self, subtotal: float) -> float:
        """The fee added at checkout to `subtotal` (0 in every variant but price-shock).

        >>> get_variant_spec("price-shock").checkout_fee(50.0), get_variant_spec("a").checkout_fee(50.0)
        (10.0, 0.0)
        """
        return round(subtotal * self.checkout_fee_rate, 2)


_A = Variant(name="a", filters="sidebar", results="list", per_page=10, buy_now_label="Buy Now",
             buy_now_position="after_add_to_cart",
             description="Refinements in a left sidebar; 10 results per page as a list with feature bullets; "
                         "'Buy Now' under 'Add to Cart', buying the chosen quantity.")


VARIANTS: dict[str, Variant] = {
    "a": _A,
    "b": Variant(name="b", filters="topbar", results="grid", per_page=20, buy_now_label="Buy now — fast checkout",
                 buy_now_position="above_options",
                 description="Refinements in a bar above the results; 20 results per page as a compact card grid; "
                             "'Buy now — fast checkout' above the options, buying one."),
    "hidden-search": dataclasses.replace(
        _A, name="hidden-search",
        description="a, but the search box is only on the home page; other pages have a 'Search' link to it.",
        expected="worse: an extra click before every search after the first, so fewer searches and fewer recoveries "
        "from a bad query; impatient shoppers give up instead",
        search_box="home_only", expected_effects=(("searches", -1), ("conversion", -1))),
    "no-filters": dataclasses.replace(
        _A, name="no-filters",
        description="a, but results pages have no refinements (department, brand, price, rating); sorting stays.",
        expected="worse: shoppers with a budget or a brand in mind cannot narrow the results; the patient page "
        "through them by hand, the rest give up: fewer purchases",
        filters="none", expected_effects=(("conversion", -1),)),
    "unlabeled-buttons": dataclasses.replace(
        _A, name="unlabeled-buttons",
        description="a, but 'Add to Cart' and 'Buy Now' are icon buttons with no text and no accessible "
        "name (a common anti-pattern).",
        expected="worse: shoppers who cannot tell what an unnamed button does (screen readers, agents, the cautious) "
        "cannot buy; fewer purchases",
        labelled_buttons=False, expected_effects=(("conversion", -1),)),
    "bad-ranking": dataclasses.replace(
        _A, name="bad-ranking", description="a, but 'Relevance' really orders results by price, highest first.",
        expected="worse: the first results are the most expensive matches, so budget shoppers page, re-search and "
        "leave more; fewer purchases, more steps",
        relevance_order="price_desc", expected_effects=(("conversion", -1), ("steps", +1), ("searches", +1))),
    "slow": dataclasses.replace(
        _A, name="slow", description="a, but every page answers 1.5 s later.",
        expected="worse: waiting costs patience; impatient shoppers leave, so fewer purchases",
        delay_s=1.5, expected_effects=(("conversion", -1), ("seconds", +1))),
    "price-shock": dataclasses.replace(
        _A, name="price-shock",
        description="a, but a 20% service fee appears only at checkout (cart and product pages show no fee).",
        expected="worse: a surprise surcharge at the last step makes price-sensitive shoppers abandon; fewer "
        "purchases",
        checkout_fee_rate=0.2, expected_effects=(("conversion", -1),)),
}
VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)

VariantName = enum.Enum("VariantName", {name: name for name in VARIANT_NAMES}, type=str)  # type: ignore[misc]
VariantName.__doc__ = "A store variant's name, for typed command-line choices (`--variant hidden-search`)."


def get_variant_spec(name: str, *, delay_s: float | None = None) -> Variant:
    """The variant called `name`; `delay_s` overrides its page delay (tests use a small one for `slow`)."""
    name = getattr(name, "value", name)  # a VariantName member
    if name not in VARIANTS:
        raise ValueError(f"Expect a variant in {', '.join(VARIANT_NAMES)}; actually: {name!r}")
    spec = VARIANTS[name]
    return spec if delay_s is None else dataclasses.replace(spec, delay_s=delay_s)
