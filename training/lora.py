"""LoRA through `peft` for SFT, offline GRPO and online GRPO: the fields both configs share, and the trainable model.

`lora_r = 0` (the default) is full fine-tuning, as before. With `lora_r > 0`:

- from a full model directory (the converted base, `agent.policy.base_models`), TRL wraps the model with the
  `LoraConfig` built here (`peft_config(...)`, passed as the trainers' `peft_config`);
- from an adapter directory (the SFT output), the same adapter is loaded trainable and trained on: GRPO continues the
  SFT adapter, so the saved artefact stays one adapter over the pristine base. TRL then computes the KL term against
  the base with the adapter switched off (its PEFT behaviour), not against the SFT model; at the paper's β = 0.001 the
  difference is a small pull towards the base.

The trainer's `self.model` is the `PeftModel`, so self-certainty s(r) is computed from the adapted policy's logits.
A saved adapter records its base's registry name (`agent.policy.base_models.BASE_NAME_FILE`), so it loads wherever the
base's wheel is installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.policy.base_models import base_name_of, write_base_name

logger = logging.getLogger(__name__)

__all__ = ["ADAPTER_CONFIG", "LoRAFields", "is_adapter", "peft_config", "trainable_model",
           "record_base"]

ADAPTER_CONFIG = "adapter_config.json"


@dataclass
class LoRAFields:
    """Mixed into `ShopR1SFTConfig` and `ShopR1GRPOConfig`."""

    lora_r: int = field(
        default=0,
        metadata={"help": "LoRA rank; 0: full fine-tuning. With a pretrained base on a CPU, 16 keeps the artefact a "
                          "few MB (the paper fine-tunes fully on GPUs)."},
    )
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: str = field(
        default="all-linear",
        metadata={"help": "Modules that get adapters: 'all-linear' (peft's shorthand: every linear layer but the "
                          "output head) or a comma-separated list of module names."},
    )

    def _check_lora(self) -> None:
        if self.lora_r < 0:
            raise ValueError(f"Expect lora_r >= 0 (0: full fine-tuning), actually: {self.lora_r}")
        if self.lora_r and self.lora_alpha <= 0:
            raise ValueError(f"Expect lora_alpha > 0, actually: {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"Expect 0 <= lora_dropout < 1, actually: {self.lora_dropout}")


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ADAPTER_CONFIG).is_file()


def peft_config(config: LoRAFields) -> Any:
    """The `LoraConfig` of `config`, or None for full fine-tuning."""
    if not config.lora_r:
        return None
    from peft import LoraConfig

    targets: Any = config.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM", bias="none")


def trainable_model(model_dir: str | Path, config: LoRAFields) -> tuple[Any, Any]:
    """(model, peft_config) for a trainer: a model dir string and the LoRA config (TRL loads and wraps), or an
    adapter loaded trainable over its base and None. An adapter dir with `lora_r = 0` is a `ValueError` (merge it
    first, or train it as LoRA)."""
    if not is_adapter(model_dir):
        return str(model_dir), peft_config(config)
    if not config.lora_r:
        raise ValueError(f"Expect lora_r > 0 to continue training the adapter in {model_dir}, actually: lora_r=0 "
                         "(full fine-tuning needs a full model directory)")
    from agent.policy.engines import load_model

    # The base in the dtype it was saved in, as TRL loads a model dir (bf16 for SmolLM2): in fp32 the activations
    # of a GRPO step on ~3k-token prompts double (a smollm2-cpu run was killed at 24 GB). The trainable adapter
    # weights in fp32, as peft makes a fresh adapter's (`autocast_adapter_dtype`).
    model = load_model(model_dir, device="cpu", dtype="auto", merge=False, trainable=True)
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    return model, None


def record_base(output_dir: str | Path, parent_dir: str | Path) -> None:
    """After saving an adapter: write the base's registry name beside it, so it loads without the training paths."""
    if not is_adapter(output_dir):
        return
    name = base_name_of(parent_dir)
    if name is not None:
        write_base_name(output_dir, name)
    else:
        logger.warning("the adapter in %s names its base only by path (%s)", output_dir, parent_dir)
