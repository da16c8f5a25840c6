"""The rows of Shop-R1's tables (arXiv 2507.17842) and the models behind them, with the paper's numbers: pure data.

A row is a model evaluated with a context and a temperature (`RowSpec`); a model is trained once per seed from its
parent with config overrides (`ModelSpec`), so rows that share a model (the SFT model, the Shop-R1 model) train it
once. The runner is `training.experiments`; the tables are written by `training.experiment_tables`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .experiment_presets import ExperimentPreset

__all__ = [
    "METRIC_KEYS",
    "MODELS",
    "PAPER_ABLATION",
    "PAPER_CONTEXT",
    "PAPER_MAIN",
    "ROWS",
    "ModelSpec",
    "RowSpec",
    "row_keys",
    "rows_for",
    "temperature_key",
]

METRIC_KEYS = ("exact_accuracy", "type_accuracy", "type_macro_f1")
"""The metrics of every table: exact action accuracy, action type accuracy and action type macro-F1."""


# --------------------------------------------------------------------------------------------------------------------
# Models and rows


@dataclass(frozen=True)
class ModelSpec:
    """A model trained once per seed: `stage` from `parent` with config overrides."""

    stage: Literal["init", "sft", "rl", "online"]
    parent: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    "base": ModelSpec("init", description="the initial model, zero-shot (random init, or the pretrained base)"),
    "sft": ModelSpec("sft", "base", description="SFT cold start"),
    "rl_binary": ModelSpec("rl", "base", {"reward": "binary", "use_format": False, "self_certainty_alpha": 0.0},
                           "GRPO, binary reward (1 on an exact match, else 0: no format reward), from the initial "
                           "model"),
    "sft_rl_binary": ModelSpec("rl", "sft", {"reward": "binary", "use_format": False, "self_certainty_alpha": 0.0},
                               "SFT, then GRPO with the binary reward (no format reward)"),
    "shop_r1": ModelSpec("rl", "sft", {}, "SFT, then GRPO with v(a) + α·s(r) (Shop-R1)"),
    "no_sft": ModelSpec("rl", "base", {}, "Shop-R1 reward without the SFT cold start"),
    "no_format": ModelSpec("rl", "sft", {"use_format": False}, "Shop-R1 without the format reward"),
    "no_self_certainty": ModelSpec("rl", "sft", {"self_certainty_alpha": 0.0}, "Shop-R1 with α = 0"),
    "no_dars": ModelSpec("rl", "sft", {"use_dars": False}, "Shop-R1 without DARS"),
    "binary_action": ModelSpec("rl", "sft", {"reward": "binary"},
                               "Shop-R1 with a binary v(a), format reward and α·s(r) kept (the paper's reading of "
                               "Table 4: only the action reward changes)"),
    "binary_action_no_format": ModelSpec(
        "rl", "sft", {"reward": "binary", "use_format": False},
        "Shop-R1 with a binary v(a) and no format reward, α·s(r) kept: the other reading of Table 4's row, which the "
        "paper does not spell out (its binary baseline, Table 2, has no format reward); not the paper's number"),
    "context_latest": ModelSpec("rl", "sft", {"context": "latest"}, "Shop-R1 trained on the latest page only"),
    "shop_r1_online": ModelSpec("online", "shop_r1", {"online": True},
                                "Shop-R1, then online GRPO in the store (beyond the paper)"),
}
"""Every model of the experiment. Table 2's binary baselines (`rl_binary`, `sft_rl_binary`) are the paper's "reward 1
only on an exact match, else 0": no format reward, no s(r). Table 4's `binary_action` swaps only the action reward of
Shop-R1 for the binary one, keeping the format reward and α·s(r), so it changes one thing against `shop_r1`. The paper
does not say whether that row keeps the format reward, so `binary_action_no_format` runs the other reading (two
changes at once) beside it; the paper's number is compared with `binary_action` only."""


@dataclass(frozen=True)
class RowSpec:
    """A row of a table: a model evaluated with a context and a temperature (None: the preset's)."""

    key: str
    table: str
    label: str
    model: str
    context: Literal["all", "latest"] = "all"
    temperature: float | None = None
    realism: bool = False


_BASE_ROWS: tuple[RowSpec, ...] = (
    RowSpec("zero_shot", "main", "Zero-shot", "base", realism=True),
    RowSpec("rl_binary", "main", "RL (binary)", "rl_binary", realism=True),
    RowSpec("sft", "main", "SFT", "sft", realism=True),
    RowSpec("sft_rl_binary", "main", "SFT + RL (binary)", "sft_rl_binary", realism=True),
    RowSpec("shop_r1", "main", "Shop-R1 (ours)", "shop_r1", realism=True),
    RowSpec("no_sft", "ablation", "w/o SFT", "no_sft"),
    RowSpec("no_format", "ablation", "w/o format reward", "no_format"),
    RowSpec("no_self_certainty", "ablation", "w/o self-certainty", "no_self_certainty"),
    RowSpec("no_dars", "ablation", "w/o DARS", "no_dars"),
    RowSpec("binary_action", "ablation", "binary action reward", "binary_action"),
    RowSpec("binary_action_no_format", "ablation", "binary action reward, w/o format (other reading)",
            "binary_action_no_format"),
    RowSpec("context_latest", "context", "latest step only", "context_latest", context="latest"),
    RowSpec("shop_r1_online", "online", "Shop-R1 + online RL", "shop_r1_online", realism=True),
)


def temperature_key(t: float) -> str:
    """The row key of the temperature-sweep row at `t` (`temperature_0.7`)."""
    return f"temperature_{t:g}"


def rows_for(preset: ExperimentPreset) -> list[RowSpec]:
    """The preset's rows: the fixed ones plus one sweep row per temperature other than `eval_temperature` (that one
    is the Shop-R1 row itself)."""
    sweep = [RowSpec(temperature_key(t), "temperature", f"τ = {t:g}", "shop_r1", temperature=t)
             for t in preset.temperatures if not math.isclose(t, preset.eval_temperature)]
    return [*_BASE_ROWS, *sweep]


ROWS = _BASE_ROWS
"""The fixed rows (temperature rows depend on the preset: `rows_for`)."""


def row_keys(preset: ExperimentPreset) -> list[str]:
    """Every row key of a preset, in table order."""
    return [r.key for r in rows_for(preset)]


# --------------------------------------------------------------------------------------------------------------------
# Paper numbers (Qwen2.5-3B-Instruct, %), shown beside ours


PAPER_MAIN = {"zero_shot": (0.32, 15.33, 16.15), "rl_binary": (1.01, 6.17, 9.92), "sft": (16.76, 22.25, 24.52),
              "sft_rl_binary": (16.55, 23.74, 28.07), "shop_r1": (27.72, 36.40, 31.28)}
PAPER_ABLATION = {"no_sft": (4.63, 36.56, 21.92), "no_format": (2.87, 3.19, 5.04),
                  "no_self_certainty": (26.93, 37.25, 33.74), "no_dars": (27.83, 27.20, 11.70),
                  "binary_action": (27.41, 27.46, 12.11)}
PAPER_CONTEXT = {"shop_r1": 27.72, "context_latest": 14.74}
"""The paper's numbers (Qwen2.5-3B-Instruct, %): Table 2 and Table 4 as (exact, type accuracy, type F1), Table 5's
exact accuracy by context."""
