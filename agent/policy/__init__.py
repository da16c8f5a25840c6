"""What a policy reads and writes, and the policies. `make_policy(name, **options)` builds one by name.

Input and output: `persona` (who shops and what for), `prompt` (the messages a model reads), `schema` (the step a
policy answers: rationale and action), `grammar` (decoding constrained to that step), `engines` (local transformers
engines) and `base_models` (the base models a shopper is trained from). Policies:

- `scripted`: a persona-driven, seeded, human-like shopper (no model); the reference labeller.
- `openai`: any OpenAI-compatible Chat Completions server (`vllm serve`, or `shop-r1 serve-policy`).
- `local`: a transformers causal LM from a local directory, batched in-process.
"""

from __future__ import annotations

from typing import Any

from agent.checkpoints import default_policy_dir

from .base import Batcher, Policy, PolicyRequest, PolicyResponse
from .persona import Intent, Persona, PersonaIntent
from .schema import ParseError, ShopperStep, format_step, parse_step

POLICY_NAMES = ("scripted", "openai", "local")

__all__ = ["POLICY_NAMES", "Batcher", "Intent", "ParseError", "Persona", "PersonaIntent", "Policy", "PolicyRequest",
           "PolicyResponse", "ShopperStep", "format_step", "make_policy", "parse_step"]


def make_policy(name: str, **options: Any) -> Policy:
    """Build a policy by name. Options that are None are left at the policy's defaults.

    - scripted: the fields of `ScriptedConfig` (e.g. `react_to_waits=False`).
    - openai: `base_url` (one, or several comma-separated), `model`, `api_key`, `temperature`, `max_tokens`,
      `concurrency`, `structured`.
    - local: `model` (a directory; default: the shipped default shopper, `agent.checkpoints`), `device`,
      `temperature`, `max_new_tokens`, `max_batch`, `structured`.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if name == "scripted":
        from .scripted import ScriptedConfig, ScriptedPolicy

        fields = ScriptedConfig.__dataclass_fields__
        return ScriptedPolicy(ScriptedConfig(**{k: v for k, v in options.items() if k in fields}))
    if name == "openai":
        from .openai_policy import OpenAIPolicy, OpenAIPolicyConfig

        if "base_url" not in options or "model" not in options:
            raise ValueError("the openai policy needs --base-url URL[,URL...] and --model NAME")
        urls = tuple(u.strip() for u in str(options.pop("base_url")).split(",") if u.strip())
        fields = OpenAIPolicyConfig.__dataclass_fields__
        return OpenAIPolicy(OpenAIPolicyConfig(base_urls=urls, **{k: v for k, v in options.items() if k in fields}))
    if name == "local":
        from .local import LocalPolicy, LocalPolicyConfig

        if "model" not in options:
            options["model"] = str(default_policy_dir())
        fields = LocalPolicyConfig.__dataclass_fields__
        return LocalPolicy(LocalPolicyConfig(model_dir=options.pop("model"),
                                             **{k: v for k, v in options.items() if k in fields}))
    raise ValueError(f"Expect a policy in {', '.join(POLICY_NAMES)}, actually: {name!r}")
