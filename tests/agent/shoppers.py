"""A deterministic test shopper: search, open the first result, press Buy Now, place the order.

It looks for an element whose name ends in `.buy_now` (variant a's button); variant b names that button
differently (`..buy_now_fast_checkout`), so there this shopper gives up with `terminate`. That makes the two arms
of an A/B test differ in a known way.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.policy.base import Policy, PolicyRequest, PolicyResponse
from agent.policy.schema import ShopperStep


def choose(names: list[str], kinds: dict[str, str], url: str, query: str) -> tuple[str, dict]:
    """The rationale and action this shopper takes on a page with these element names."""
    if "/checkout" in url and "place_order" in names:
        return "The details look right, so I place the order.", {"type": "click", "name": "place_order"}
    if "/product/" in url:
        buy = next((n for n in names if n.endswith(".buy_now")), None)
        if buy:
            return "This looks right; I'll buy it now.", {"type": "click", "name": buy}
        return "I can't find a Buy Now button, so I leave.", {"type": "terminate"}
    if "/search" in url:
        first = next((n for n in names if n.startswith("search_results.") and n.endswith(".title")), None)
        if first:
            return "The first result looks promising.", {"type": "click", "name": first}
        return "Nothing matches, so I leave.", {"type": "terminate"}
    box = next((n for n in names if kinds[n] == "input" and "search" in n), None)
    if box:
        return f"I search for {query}.", {"type": "type_and_submit", "name": box, "text": query}
    return "I don't know what to do here.", {"type": "terminate"}


class BuyFirstPolicy(Policy):
    """See the module docstring. The search query is the intent's first keyword, else 'shoes'."""

    name = "buy-first"

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        out = []
        for req in requests:
            obs = req.observation
            kinds = {e.name: e.kind for e in obs.elements}
            query = req.intent.keywords[0] if req.intent.keywords else "shoes"
            rationale, action = choose(obs.names, kinds, obs.url, query)
            out.append(PolicyResponse(step=ShopperStep(rationale=rationale, action=action), raw=""))
        return out
