"""Typed training configs: TRL's `SFTConfig` and `GRPOConfig` with Shop-R1's fields and the paper's defaults.

Both configs subclass the trainer's own config, so every TRL/transformers option (batch sizes, bf16, vLLM, DeepSpeed,
FSDP, logging, checkpointing) is available unchanged; the fields added here say where the data and the model are and
how Shop-R1 rewards the policy. Defaults that come from the paper cite it (Shop-R1, arXiv 2507.17842).

YAML files (`configs/*.yaml`) hold one section per stage plus a shared one:

```yaml
common: {data_dir: runs/tiny/data, seed: 0}   # merged into both stages
sft: {model_dir: runs/tiny/base, output_dir: runs/tiny/sft, num_train_epochs: 4}
rl: {model_dir: runs/tiny/sft, output_dir: runs/tiny/rl, max_steps: 500}
```

`load_config(path, "sft" | "rl", overrides)` merges `common` and the stage's section, applies `--set key=value`
overrides (`key=value` applies to the stage being loaded; `sft.key=value` / `rl.key=value` only to that stage) and
builds the config. Values are parsed as YAML and then coerced to the field's type, so `learning_rate: 1e-7` (a
string to PyYAML) is a float and `--set bf16=true` a bool.

>>> config = ShopR1GRPOConfig(output_dir="/tmp/x", self_certainty_alpha=0.0, report_to="none")
>>> config.beta, config.temperature, config.learning_rate, config.max_steps
(0.001, 0.6, 1e-07, 500)
>>> ShopR1GRPOConfig(output_dir="/tmp/x", context="session", report_to="none")
Traceback (most recent call last):
...
ValueError: Expect context 'all' or 'latest', actually: 'session'
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from trl import GRPOConfig, SFTConfig

from agent.wiring import VARIANT_NAMES
from training.lora import LoRAFields
from training.rewards import RewardConfig

from .presets import preset_names, resolve_config

logger = logging.getLogger(__name__)

__all__ = [
    "REWARD_FIELDS",
    "ConfigError",
    "ShopR1GRPOConfig",
    "ShopR1SFTConfig",
    "apply_overrides",
    "config_class",
    "load_config",
    "parse_overrides",
]

PAPER = "Shop-R1 (arXiv 2507.17842)"
Stage = Literal["sft", "rl"]


class ConfigError(ValueError):
    """A config file or override that cannot become a config (unknown key, bad value, bad combination)."""


def _gpu_bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _resolve_precision(config: Any) -> None:
    """Before TRL's `__post_init__`: bf16=None means "bf16 where the GPU supports it" (TRL's default, True, fails on a
    CPU-only machine unless use_cpu), and TRL's `gradient_checkpointing` default moves to its transformers 5 name
    (`activation_checkpointing`) so no deprecation warning fires."""
    if config.bf16 is None and not config.fp16:
        config.bf16 = _gpu_bf16()
    if config.bf16 and not config.use_cpu and not _gpu_bf16():
        import torch

        if not torch.cuda.is_available():
            raise ValueError("Expect use_cpu=true with bf16=true on a machine without a GPU (bf16 autocast on CPU), "
                             "actually: use_cpu=false")
    if getattr(config, "activation_checkpointing", False) is None and config.gradient_checkpointing is not None:
        config.activation_checkpointing = config.gradient_checkpointing


REWARD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RewardConfig) if f.name != "binary")
"""The `RewardConfig` fields the GRPO config carries under the same names (`binary` is its `reward` field)."""


def _reward_fields() -> type:
    """A dataclass mixin with the fields of `REWARD_FIELDS`, taken from `RewardConfig` (types, defaults, help): the
    reward's constants and switches are declared once, in `training.rewards`."""
    hints = typing.get_type_hints(RewardConfig)
    specs = [(f.name, hints[f.name], field(default=f.default, metadata=dict(f.metadata)))
             for f in dataclasses.fields(RewardConfig) if f.name in REWARD_FIELDS]
    cls = dataclasses.make_dataclass("RewardFields", specs, namespace={
        "__doc__": "Mixed into `ShopR1GRPOConfig`: every `RewardConfig` field but `binary`, generated from it."})
    cls.__module__ = __name__
    return cls


RewardFields = _reward_fields()


def _check_context(context: str) -> None:
    if context not in ("all", "latest"):
        raise ValueError(f"Expect context 'all' or 'latest', actually: {context!r}")


@dataclass
class ShopR1SFTConfig(SFTConfig, LoRAFields):
    """SFT cold start (Shop-R1, sec. 3): whole sessions from `DATA_DIR/sft`, loss on the assistant turns only.

    The paper's SFT learning rate (2e-5) and epochs (4) are the defaults; the loss covers rationale + action (every
    assistant turn), never the pages (`assistant_only_loss=True`, which needs `{% generation %}` markers in the
    model's chat template).
    """

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Dataset directory written by `training.data`: reads `DATA_DIR/sft` (splits train/validation/"
                          "test, columns `messages`, `session_id`)."},
    )
    model_dir: str | None = field(
        default=None,
        metadata={"help": "The base model: a `save_pretrained` directory with its tokenizer (loaded with "
                          "`agent.policy.engines.load_tokenizer`, never AutoTokenizer) or a Hub id. Paper: "
                          "Qwen2.5-3B-Instruct (also 1.5B and 0.5B)."},
    )
    eval_split: str | None = field(
        default="validation",
        metadata={"help": "Split of `DATA_DIR/sft` used for evaluation when `eval_strategy` is not 'no'; None: none."},
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Use only the first N training sessions (smoke runs); None: all."},
    )
    learning_rate: float = field(default=2e-5, metadata={"help": f"AdamW learning rate. {PAPER}, SFT: 2e-5."})
    num_train_epochs: float = field(default=4.0, metadata={"help": f"Epochs over the SFT sessions. {PAPER}: 4."})
    assistant_only_loss: bool = field(
        default=True,
        metadata={"help": f"Loss on the assistant turns (rationale + action JSON) only, not on the pages. {PAPER}, "
                          "SFT: 'supervised on rationale + action'. Needs `{% generation %}` markers in the template."},
    )
    max_length: int | None = field(
        default=32768,
        metadata={"help": f"Longest tokenized session; longer ones are truncated (keep_start). {PAPER}: contexts up "
                          "to 32k tokens."},
    )
    report_to: str | list[str] | None = field(
        default="none",
        metadata={"help": "Trackers to report to (wandb, tensorboard, ...). Default: none; progress and loss always "
                          "go to stdout and OUTPUT_DIR/log.csv."},
    )

    def __post_init__(self) -> None:
        _resolve_precision(self)
        super().__post_init__()
        self._check_lora()
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"Expect max_train_samples >= 1 or None, actually: {self.max_train_samples}")


@dataclass
class ShopR1GRPOConfig(GRPOConfig, LoRAFields, RewardFields):  # type: ignore[misc, valid-type]
    """GRPO with Shop-R1's reward, max E[v(a) + α·s(r)] − β·KL(πθ ‖ πref) (Shop-R1, sec. 3).

    v(a) is `training.rewards.ShopR1Reward` (or the binary action reward), s(r) the self-certainty of the rationale's
    tokens (`training.self_certainty`), added with weight `self_certainty_alpha`. `beta` is TRL's KL coefficient.
    The reward's fields (`dars`, `rouge_threshold`, `rouge_gate`, `format_check`, `use_format`, `use_dars`, Table 1's
    constants) come from `RewardConfig` unchanged, with its defaults and help (`REWARD_FIELDS`).

    Offline (the paper): one prompt per logged step from `DATA_DIR/rl`, scored against the logged next action.
    Online (`online=True`, beyond the paper): the policy shops the live store and every visited state is scored
    against the scripted shopper's label for it (`training.online`).
    """

    # ------------------------------------------------------------------------------------------------ data and model
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Dataset directory written by `training.data`: reads `DATA_DIR/rl` (one row per step: "
                          "`prompt`, `prompt_latest`, `gold_action`, `persona`, `intent`, ...)."},
    )
    model_dir: str | None = field(
        default=None,
        metadata={"help": f"The policy to start from: the SFT output ({PAPER}: SFT cold start, then RL) or a base "
                          "model for the 'no SFT' ablation. A `save_pretrained` directory with its tokenizer."},
    )
    context: Literal["all", "latest"] = field(
        default="all",
        metadata={"help": f"'all': whole-session context (column `prompt`); 'latest': the current page only "
                          f"(`prompt_latest`). {PAPER}, Table 5: 27.72 vs 14.74 exact accuracy.",
                  "choices": ["all", "latest"]},
    )
    max_prompt_length: int | None = field(
        default=None,
        metadata={"help": "Drop training prompts longer than this many tokens after the chat template (TRL 1.x has no "
                          "prompt truncation; cut pages when building the data instead). Online prompts are built to "
                          "fit it. None: no limit. The paper's contexts reach 32k tokens."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training rows (smoke runs); None: all."}
    )

    # ------------------------------------------------------------------------------------------------ reward v(a)
    reward: str = field(
        default="shop_r1",
        metadata={"help": f"'shop_r1': the hierarchical reward of Table 1 ({PAPER}); 'binary': 1 on an exact match "
                          "of the whole action, else 0, plus the format reward unless use_format=false (Table 4's "
                          "'binary action reward' keeps it; Table 2's 'RL (binary)' baseline sets use_format=false).",
                  "choices": ["shop_r1", "binary"]},
    )
    self_certainty_alpha: float = field(
        default=0.005,
        metadata={"help": f"α, the weight of the rationale's self-certainty s(r) in the reward. {PAPER}, sec. 3: "
                          "0.005. 0 disables it (the 'no self-certainty' ablation, Table 4) and skips its forward "
                          "pass."},
    )
    self_certainty_batch_size: int | None = field(
        default=None,
        metadata={"help": "Sequences per no-grad forward pass when computing s(r); None: "
                          "per_device_train_batch_size."},
    )

    # ------------------------------------------------------------------------------------------------ online mode
    online: bool = field(
        default=False,
        metadata={"help": "Beyond the paper: roll the policy out in the live store and reward each visited state "
                          "against the scripted shopper's label for it (`training.online`)."},
    )
    online_backend: Literal["http", "browser"] = field(
        default="http",
        metadata={"help": "Env backend for online rollouts: 'http' (no browser, fast) or 'browser' (Playwright).",
                  "choices": ["http", "browser"]},
    )
    online_site: str | None = field(
        default=None,
        metadata={"help": "URL of the store to roll out in. None: start the embedded store in-process."},
    )
    online_catalog: str | None = field(
        default=None,
        metadata={"help": "Catalog DB of the embedded store and of sampled personas/intents; None: the cached default "
                          "catalog."},
    )
    online_variant: str = field(
        default="a", metadata={"help": "Variant of the embedded store: a or b (layouts), or a known-effect variant "
                                       "(sites/store/variants.py).", "choices": list(VARIANT_NAMES)}
    )
    online_episodes: int = field(
        default=512,
        metadata={"help": "Persona/intent rows to sample from the catalog when `data_dir` has no RL data (each row "
                          "is one episode start; rows are reused across epochs)."},
    )
    online_max_steps: int = field(
        default=10,
        metadata={"help": "T: the most env steps a rollout takes before the state whose next step is trained on."},
    )
    online_scripted_steps: float = field(
        default=0.0,
        metadata={"help": "Chance that a step of the rollout prefix follows the scripted shopper instead of the "
                          "policy (reach deeper states early in training); 0: the policy alone."},
    )
    outcome_bonus: float = field(
        default=0.0,
        metadata={"help": "Added to a sampled step whose action completes a purchase when carried out in the store "
                          "(online only; 0 disables the check)."},
    )

    # ------------------------------------------------------------------------------------------------ paper defaults
    learning_rate: float = field(default=1e-7, metadata={"help": f"AdamW learning rate. {PAPER}, RL: 1e-7."})
    beta: float = field(default=0.001, metadata={"help": f"KL coefficient β against the reference policy. {PAPER}: "
                                                         "0.001."})
    temperature: float = field(default=0.6, metadata={"help": f"Sampling temperature. {PAPER}: 0.6 (0.6-0.8 best)."})
    max_steps: int = field(default=500, metadata={"help": f"Optimizer steps. {PAPER}, RL: 500."})
    max_completion_length: int | None = field(
        default=256,
        metadata={"help": "Most tokens per sampled step; one step is a short JSON object (~40-120 tokens)."},
    )
    report_to: str | list[str] | None = field(
        default="none",
        metadata={"help": "Trackers to report to (wandb, tensorboard, ...). Default: none; rewards and loss always "
                          "go to stdout and OUTPUT_DIR/log.csv."},
    )

    def __post_init__(self) -> None:
        _resolve_precision(self)
        super().__post_init__()
        self._check_lora()
        _check_context(self.context)
        if self.reward not in ("shop_r1", "binary"):
            raise ValueError(f"Expect reward 'shop_r1' or 'binary', actually: {self.reward!r}")
        if not (isinstance(self.self_certainty_alpha, int | float) and math.isfinite(self.self_certainty_alpha)
                and self.self_certainty_alpha >= 0):
            raise ValueError(f"Expect self_certainty_alpha >= 0 (0 disables s(r)), actually: "
                             f"{self.self_certainty_alpha!r}")
        if self.reward_weights is not None:
            raise ValueError(
                f"Expect reward_weights unset (Shop-R1 weighs v(a) by 1 and s(r) by self_certainty_alpha), actually: "
                f"{self.reward_weights!r}; set self_certainty_alpha instead")
        if self.multi_objective_aggregation != "sum_then_normalize" and self.self_certainty_alpha > 0:
            raise ValueError(
                "Expect multi_objective_aggregation='sum_then_normalize' with self_certainty_alpha > 0 (the paper adds "
                f"α·s(r) to v(a) before the group normalisation), actually: {self.multi_objective_aggregation!r}")
        if self.reward == "binary" and not self.use_dars:
            raise ValueError("Expect use_dars left on with reward='binary' (the binary action reward has no DARS), "
                             f"actually: use_dars={self.use_dars}")
        if self.max_prompt_length is not None and self.max_prompt_length < 1:
            raise ValueError(f"Expect max_prompt_length >= 1 or None, actually: {self.max_prompt_length}")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"Expect max_train_samples >= 1 or None, actually: {self.max_train_samples}")
        if self.self_certainty_batch_size is not None and self.self_certainty_batch_size < 1:
            raise ValueError(f"Expect self_certainty_batch_size >= 1 or None, actually: "
                             f"{self.self_certainty_batch_size}")
        if self.online_backend not in ("http", "browser"):
            raise ValueError(f"Expect online_backend 'http' or 'browser', actually: {self.online_backend!r}")
        if self.online_variant not in VARIANT_NAMES:
            raise ValueError(f"Expect online_variant in {', '.join(VARIANT_NAMES)}, actually: "
                             f"{self.online_variant!r}")
        if self.online_max_steps < 0:
            raise ValueError(f"Expect online_max_steps (T) >= 0, actually: {self.online_max_steps}")
        if self.online_episodes < 1:
            raise ValueError(f"Expect online_episodes >= 1, actually: {self.online_episodes}")
        if not 0.0 <= self.online_scripted_steps <= 1.0:
            raise ValueError(f"Expect online_scripted_steps in [0, 1], actually: {self.online_scripted_steps}")
        if not math.isfinite(self.outcome_bonus) or self.outcome_bonus < 0:
            raise ValueError(f"Expect outcome_bonus >= 0, actually: {self.outcome_bonus!r}")
        if self.outcome_bonus > 0 and not self.online:
            raise ValueError(f"Expect online=True with outcome_bonus > 0 (offline steps have no outcome), actually: "
                             f"online=False, outcome_bonus={self.outcome_bonus}")
        if self.online and self.use_vllm:
            raise ValueError("Expect use_vllm=False with online=True (online rollouts sample with the training model "
                             "between env steps), actually: use_vllm=True")
        if self.online_site is not None and not self.online_site.startswith(("http://", "https://")):
            raise ValueError(f"Expect online_site as an http(s) URL or None, actually: {self.online_site!r}")
        self.reward_config()  # the reward's own checks

    def reward_config(self) -> RewardConfig:
        """The `RewardConfig` these fields describe."""
        return RewardConfig(**{name: getattr(self, name) for name in REWARD_FIELDS}, binary=self.reward == "binary")

    @property
    def prompt_column(self) -> str:
        """The dataset column of the prompts: `prompt` (whole session) or `prompt_latest`."""
        return "prompt" if self.context == "all" else "prompt_latest"


# --------------------------------------------------------------------------------------------------------------------
# YAML and overrides


def config_class(kind: str) -> type[ShopR1SFTConfig] | type[ShopR1GRPOConfig]:
    """The config class of a stage: 'sft' or 'rl' ('grpo' is accepted for 'rl')."""
    if kind == "sft":
        return ShopR1SFTConfig
    if kind in ("rl", "grpo"):
        return ShopR1GRPOConfig
    raise ConfigError(f"Expect kind 'sft' or 'rl', actually: {kind!r}")


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["a=1", "rl.b=x"]` → `{"a": 1, "rl.b": "x"}`; values are YAML scalars (or lists/maps in flow style).

    >>> parse_overrides(["learning_rate=1e-7", "bf16=true", "report_to=[wandb]", "online_site=null"])
    {'learning_rate': '1e-7', 'bf16': True, 'report_to': ['wandb'], 'online_site': None}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Expect an override as key=value, actually: {item!r}")
        out[key.strip()] = _parse_scalar(value)
    return out


def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a forward reference that cannot be resolved: fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _accepts(annotation: Any) -> set[type]:
    """The scalar types a field annotation accepts: {float, int, ...} (unknown annotations accept anything)."""
    if isinstance(annotation, str):
        names = {"float": float, "int": int, "bool": bool, "str": str}
        return {t for n, t in names.items() if n in annotation.replace(" ", "").split("|")}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        out: set[type] = set()
        for arg in typing.get_args(annotation):
            out |= _accepts(arg)
        return out
    if annotation in (float, int, bool, str):
        return {annotation}
    return set()


def _coerce(cls: type, key: str, value: Any, annotation: Any) -> Any:
    """YAML gives '1e-7' as a string: make a string the field's scalar type where that is clear."""
    accepts = _accepts(annotation)
    if value is None or not accepts:
        return value
    if isinstance(value, str) and str not in accepts:
        low = value.strip().lower()
        if bool in accepts and low in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return low in ("true", "yes", "on", "1")
        for kind in (int, float):
            if kind in accepts:
                try:
                    return kind(value)
                except ValueError:
                    continue
        raise ConfigError(f"Expect {key} of {cls.__name__} to be {' or '.join(sorted(t.__name__ for t in accepts))}, "
                          f"actually: {value!r}")
    return value


def _build(cls: type, values: Mapping[str, Any], source: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in values if k not in names]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, names, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"Expect fields of {cls.__name__} in {source}, actually unknown: {', '.join(hints)}")
    types_ = _field_types(cls)
    kwargs = {k: _coerce(cls, k, v, types_.get(k)) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def apply_overrides(values: Mapping[str, Any], overrides: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """`values` updated by `overrides`; a key `sft.x`/`rl.x` applies only to that stage, a bare key to any stage."""
    stage = "rl" if kind == "grpo" else kind
    out = dict(values)
    for key, value in overrides.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix in ("sft", "rl", "common"):
            if prefix in (stage, "common"):
                out[rest] = value
            continue
        out[key] = value
    return out


def load_config(path: str | Path, kind: str, overrides: Mapping[str, Any] | Sequence[str] | None = None) -> Any:
    """Build the `kind` ('sft' or 'rl') config from a YAML file: `common` + the stage's section + overrides.

    A file without stage sections is taken whole as the stage's fields. Relative paths in the file stay relative to
    the working directory (like every other CLI path). `path` may also name a packaged config (`tiny-cpu`,
    `paper-3b`: `training.presets`). Raises `ConfigError` (a `ValueError`) with the reason.
    """
    cls = config_class(kind)
    stage = "rl" if kind == "grpo" else kind
    path = resolve_config(path)
    if not path.is_file():
        raise ConfigError(f"Expect a YAML config file or a packaged config ({', '.join(preset_names())}), actually: "
                          f"{path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Expect valid YAML in {path}, actually: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"Expect a mapping at the top of {path}, actually: {type(data).__name__}")
    if any(k in data for k in ("common", "sft", "rl")):
        extra = [k for k in data if k not in ("common", "sft", "rl")]
        if extra:
            raise ConfigError(f"Expect only the sections common, sft, rl in {path}, actually also: {extra}")
        values = {**(data.get("common") or {}), **(data.get(stage) or {})}
        if stage not in data:
            raise ConfigError(f"Expect a `{stage}:` section in {path}, actually: sections {sorted(data)}")
    else:
        values = dict(data)
    if overrides:
        parsed = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
        values = apply_overrides(values, parsed, stage)
    config = _build(cls, values, str(path))
    logger.debug("loaded %s config from %s", stage, path)
    return config
