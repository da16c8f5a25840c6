"""Small pieces shared by `training.sft` and `training.grpo`: loading a data split, the tokenizer, and run set-up."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal, TypeVar

from agent.policy.prompt import PromptConfig, save_prompt_config
from training.data import load_split

logger = logging.getLogger(__name__)

__all__ = ["load_data_split", "load_processing_class", "require", "save_inference_prompt", "save_run_config"]


T = TypeVar("T")


def require(value: T | None, name: str, what: str) -> T:
    """`value`, or a `ValueError` saying the config lacks `name`."""
    if value is None or value == "":
        raise ValueError(f"Expect {name} in the config ({what}), actually: not set")
    return value


def load_data_split(data_dir: str | Path, kind: Literal["sft", "rl"], split: str) -> Any:
    """One split of `DATA_DIR/<kind>` (`kind` 'sft' or 'rl'): `training.data.load_split` (a `DataError`, which is a
    `ValueError`, when the directory was not written by `training.data.build_datasets`)."""
    return load_split(data_dir, kind, split)


def load_processing_class(model_dir: str | Path) -> Any:
    """The tokenizer of a local model directory via `agent.policy.engines.load_tokenizer` (keeps the trained ids; see
    there), right-padded for training. A Hub id falls back to `AutoTokenizer`."""
    from agent.policy.engines import load_tokenizer

    if Path(model_dir).is_dir():
        tokenizer = load_tokenizer(model_dir)
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # TRL pads itself; generation-time left padding is TRL's own too
    return tokenizer


def save_run_config(config: Any, output_dir: str | Path, name: str) -> Path:
    """Write the whole config as JSON (`to_dict()`) next to the outputs: what this run was."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(config.to_dict(), indent=2, default=str, sort_keys=True))
    return path


def save_inference_prompt(output_dir: str | Path, data_dir: str | Path | None, *, include_rationales: bool | None,
                          history_pages: str, fallback_budget: int | None = None) -> Path | None:
    """Record beside a trained model the prompt it was trained on (`agent.policy.prompt.save_prompt_config`): the data's
    page budget (`meta.json`), previous rationales shown or not, whole session or latest page, the persona block or not.
    `LocalPolicy` reads it, so `simulate --policy local` prompts the model the way training did. Without a data dir,
    `fallback_budget` (or nothing is written)."""
    budget, system, rationales, persona = fallback_budget, PromptConfig.system, bool(include_rationales), True
    if data_dir and (Path(data_dir) / "meta.json").is_file():
        meta = json.loads((Path(data_dir) / "meta.json").read_text(encoding="utf-8"))
        # written by `training.data.build_datasets`; a hand-made data dir may not say
        data_config = meta.get("config") or {}
        budget = data_config.get("max_context_tokens", budget)
        system = data_config.get("system", "full")  # data built before the switch used the full prompt
        persona = bool(data_config.get("persona", True))
        if include_rationales is None:  # as the data's RL prompts show them
            rationales = bool(data_config.get("rl_rationales", False))
    if budget is None:
        return None
    return save_prompt_config(PromptConfig(max_context_tokens=int(budget), include_rationales=rationales,
                                           history_pages=history_pages, system=system,  # type: ignore[arg-type]
                                           persona=persona),
                              output_dir)
