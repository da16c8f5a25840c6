"""Gymnasium spaces for the shopping env: observations are `Observation`s, actions are the paper's three actions.

Pages are HTML of any length and alphabet, which `spaces.Text` (fixed charset, bounded length) cannot hold, and the
names an action may use change from page to page. So both spaces check what a value *is*, not its contents:

>>> from envs.observation import ElementRef, Observation
>>> obs = Observation(url="http://127.0.0.1:8000/", title="Shop", html="<main/>",
...                   elements=(ElementRef("search_input", "input"), ElementRef("cart", "clickable")))
>>> obs in ObservationSpace()
True
>>> {"type": "click", "name": "cart"} in ActionSpace(), {"type": "jump"} in ActionSpace()
(True, False)
>>> space = ActionSpace(seed=0)
>>> space.sample(mask=obs)["name"] in obs.names      # a mask (the current page) gives an action valid on it
True
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

from .actions import ACTION_TYPES, ActionError, action_to_dict, parse_action
from .observation import ElementRef, Observation

_NAME_CHARS = string.ascii_lowercase + string.digits + "_."
_SAMPLE_WORDS = ("boots", "red", "running shoes", "waterproof jacket", "gift")


class ObservationSpace(spaces.Space[Observation]):
    """Every `Observation` (url, title and simplified HTML as `str`, named elements); nothing else."""

    def __init__(self, seed: int | np.random.Generator | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return (isinstance(x, Observation) and isinstance(x.url, str) and isinstance(x.title, str)
                and isinstance(x.html, str) and isinstance(x.elements, tuple)
                and all(isinstance(e, ElementRef) for e in x.elements))

    def sample(self, mask: Any = None, probability: Any = None) -> Observation:
        """A small page with a search box and a few random links (for tests of code that consumes observations)."""
        if mask is not None or probability is not None:
            raise ValueError(f"Expect no mask or probability for ObservationSpace.sample, actually: {mask!r}, "
                             f"{probability!r}")
        n = int(self.np_random.integers(0, 4))
        links = [f"link_{int(self.np_random.integers(0, 1000))}_{i}" for i in range(n)]
        html = ('<main><input name="search_input" type="search"/>'
                + "".join(f'<a name="{name}">{name}</a>' for name in links) + "</main>")
        return Observation(url="about:blank", title="", html=html,
                           elements=(ElementRef("search_input", "input"),
                                     *(ElementRef(name, "clickable") for name in links)))

    def __repr__(self) -> str:
        return "ObservationSpace()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObservationSpace)

    def __hash__(self) -> int:
        return hash(ObservationSpace)


class ActionSpace(spaces.Space[dict]):
    """The paper's actions: `click`, `type_and_submit` and `terminate`, as a dict, a JSON string or an action model.

    Membership is syntax only (`parse_action` accepts it): whether the name exists is the page's business, and an
    action naming no element is a valid member that the env answers with `info["valid"] = False`.

    `sample()` draws an action with a random name (rarely one on the page); `sample(mask=obs)` draws one that is
    valid on the page `obs`: a click on one of its clickables, text into one of its inputs, or `terminate`.
    """

    def __init__(self, seed: int | np.random.Generator | None = None):
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        try:
            parse_action(x)
        except ActionError:
            return False
        return True

    def sample(self, mask: Observation | None = None, probability: Any = None) -> dict:
        if probability is not None:
            raise ValueError(f"Expect no probability for ActionSpace.sample, actually: {probability!r}")
        if mask is not None and not isinstance(mask, Observation):
            raise ValueError(f"Expect mask to be the current Observation or None, actually: {type(mask).__name__}")
        rng = self.np_random
        text = _SAMPLE_WORDS[int(rng.integers(0, len(_SAMPLE_WORDS)))]
        if mask is None:
            kind = ACTION_TYPES[int(rng.integers(0, len(ACTION_TYPES)))]
            name = "".join(_NAME_CHARS[int(i)] for i in rng.integers(0, len(_NAME_CHARS), int(rng.integers(1, 17))))
            name = "x" + name  # never blank
        else:
            clickables = [e.name for e in mask.elements if e.kind == "clickable"]
            inputs = [e.name for e in mask.elements if e.kind == "input"]
            kinds = [k for k, names in (("click", clickables), ("type_and_submit", inputs)) if names] + ["terminate"]
            kind = kinds[int(rng.integers(0, len(kinds)))]
            names = clickables if kind == "click" else inputs if kind == "type_and_submit" else [""]
            name = names[int(rng.integers(0, len(names)))]
        action = parse_action({"type": kind} if kind == "terminate" else
                              {"type": kind, "name": name, **({"text": text} if kind == "type_and_submit" else {})})
        return action_to_dict(action)

    def __repr__(self) -> str:
        return "ActionSpace(click | type_and_submit | terminate)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionSpace)

    def __hash__(self) -> int:
        return hash(ActionSpace)
