"""The shopper agent: action schema, prompts, policies, sessions, traces, replay, reports and the CLI.

Importing `agent` registers the Gymnasium ids `shop_r1/Store-v0` and `shop_r1/EmbeddedStore-v0`.
"""

from .embedded import register_envs as _register_envs

_register_envs()
