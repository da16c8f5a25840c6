"""The shopper agent, in subpackages with small public surfaces (`__all__` in each `__init__.py`):

- `agent.policy`: what a policy reads and writes (schema, prompt, grammar, personas) and the policies themselves;
- `agent.runtime`: sessions on a site, their traces, replay, Ray rollouts, populations of shoppers;
- `agent.analysis`: summaries, reports, statistics, A/B tests, the UX-sensitivity experiment;
- `agent.serve`: the OpenAI-compatible policy server app;
- `agent.record`: recording a person shopping;
- `agent.cli`: the `shop-r1` command line;
- `agent.wiring`: the composition layer, the only module that imports the store (`sites`).

Importing `agent` registers the Gymnasium ids `shop_r1/Store-v0` (by `envs`) and `shop_r1/EmbeddedStore-v0`
(`agent.wiring.EmbeddedShopEnv`, imported only when an env is made).
"""

from envs.registration import EMBEDDED_STORE_ID, register_once

register_once(EMBEDDED_STORE_ID, "agent.wiring:EmbeddedShopEnv")
