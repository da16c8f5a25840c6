"""The browser environment: pages → simplified HTML with named elements; the paper's JSON actions → a real browser.

>>> from envs import ShopEnv                                  # doctest: +SKIP
>>> env = ShopEnv("http://127.0.0.1:8000/", backend="browser")  # doctest: +SKIP
>>> obs, info = env.reset()                                    # doctest: +SKIP

Importing `envs` registers the Gymnasium id `shop_r1/Store-v0` (see `envs.registration`).
"""

from __future__ import annotations

from .actions import Action, ActionError, Click, Terminate, TypeAndSubmit, action_adapter, parse_action
from .env import AsyncShopEnv, EnvConfig, ShopEnv
from .observation import ElementRef, Observation
from .origin import OriginPolicy
from .registration import STORE_ID, register_envs
from .simplify import Element, SimplifiedPage, SimplifyConfig, simplify
from .spaces import ActionSpace, ObservationSpace
from .vector import AsyncVectorEnv

register_envs()

__all__ = [
    "STORE_ID", "Action", "ActionError", "ActionSpace", "AsyncShopEnv", "AsyncVectorEnv", "Click", "Element",
    "ElementRef", "EnvConfig", "Observation", "ObservationSpace", "OriginPolicy", "ShopEnv", "SimplifiedPage",
    "SimplifyConfig", "Terminate", "TypeAndSubmit", "action_adapter", "parse_action", "simplify",
]
