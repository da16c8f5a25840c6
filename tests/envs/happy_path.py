"""A deterministic happy path through the store, for tests, benchmarks and smoke checks.

It reads only the element names an env shows (no browser or env import here):
home → search → sort by price → first result → one option per group → add to cart → checkout → place order.
Those names are the env's (`envs.simplify` derives them), so the path lives with the tests rather than in the store:
a site does not know how an env names its elements. `benchmarks/bench_env.py` imports it from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def first(names: Sequence[str], pattern: str) -> str | None:
    rx = re.compile(pattern)
    return next((n for n in names if rx.search(n)), None)


class HappyPath:
    """Call `next_action(names)` with the current page's names; returns an action dict, or None when done."""

    def __init__(self, query: str = "running shoes", sort: bool = True):
        self.query = query
        self.sort = sort
        self.stage = "search"
        self.groups_done: set[str] = set()

    def next_action(self, names: Sequence[str]) -> dict | None:
        if self.stage == "done":
            return None
        if (name := first(names, r"place_order")) is not None:
            self.stage = "done"
            return {"type": "click", "name": name}
        if self.stage == "cart" and (name := first(names, r"checkout")) is not None:
            return {"type": "click", "name": name}
        if self.stage == "product":
            for name in names:
                m = re.match(r"^product_options\.([^.]+)\.", name)
                if m and m.group(1) not in self.groups_done:
                    self.groups_done.add(m.group(1))
                    return {"type": "click", "name": name}
            if (name := first(names, r"add_to_cart$")) is not None:
                self.stage = "cart"
                return {"type": "click", "name": name}
        if self.stage == "sort" and (name := first(names, r"^sort\.price_low_to_high")) is not None:
            self.stage = "open"
            return {"type": "click", "name": name}
        if self.stage in ("sort", "open") and (name := first(names, r"^search_results\..*\.title$")) is not None:
            self.stage = "product"
            return {"type": "click", "name": name}
        if self.stage == "search" and (name := first(names, r"search.*_input$")) is not None:
            self.stage = "sort" if self.sort else "open"
            return {"type": "type_and_submit", "name": name, "text": self.query}
        raise LookupError(f"happy path stuck at stage {self.stage!r}; names: {list(names)[:30]}")
