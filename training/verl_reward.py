"""The Shop-R1 action reward as a verl custom reward function.

verl's contract (volcengine/verl, `docs/preparation/reward_function.rst`, "Customized"): a file named by
`custom_reward_function.path` defines a function named by `custom_reward_function.name` (default `compute_score`)
whose parameters are `data_source`, `solution_str`, `ground_truth` and `extra_info`. verl's rule-based reward
manager (`verl/workers/reward_manager/naive.py`, `NaiveRewardManager.__call__`) decodes each response with
`skip_special_tokens=True`, reads `ground_truth` from the row's `reward_model["ground_truth"]`, `data_source` from
its `data_source` column and `extra_info` from its `extra_info` column, and calls::

    score = compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)

A float is the reward; a dict must hold the reward under `"score"`, and every key of it is collected per row into
`reward_extra_info` (logged, dumped with the generations), so every call returns the same keys. The reward lands on the
response's last valid token. `custom_reward_function.reward_kwargs` are passed as extra keyword arguments
(`verl/trainer/ppo/reward.py`, `get_custom_reward_fn`).

`compute_score` here returns the score of `training.rewards.ShopR1Reward` for the same completion and gold (it calls
the same `score_completion`), with its parts:

    {"score": total (or format + binary when `binary`), "format": ..., "type": ..., "attribute": ..., "value": ...,
     "binary": 1.0 on an exact match else 0.0, "valid_format": 1.0 when the output passed the format check
     (`format_check`)}

The `RewardConfig` is the paper's defaults, overridden by `reward_kwargs` (run-wide, e.g.
`+custom_reward_function.reward_kwargs.use_dars=false`), then by `extra_info["reward_config"]` (per row, a dict of
`RewardConfig` fields). Other keys of `extra_info` (`split`, `index`, verl's own `num_turns`, ...) are ignored.

verl loads the file by path (`spec_from_file_location`), not as part of this package, so shop-r1 must be installed
in verl's environment (`pip install -e /path/to/shop-r1`) for the imports below. See docs/verl.md.

>>> gold = '{"type": "click", "name": "search_results.acme_boot.title"}'
>>> out = '{"rationale": "These look right.", "action": {"type": "click", "name": "search_results.acme_boot.title"}}'
>>> compute_score("shop_r1", out, gold)["score"]
1001.0
>>> compute_score("shop_r1", out, gold, {"reward_config": {"use_dars": False}})["score"]
2.0
>>> compute_score("shop_r1", "not json", gold)["score"], compute_score("shop_r1", f"Sure! {out}", gold)["score"]
(0.0, 0.0)
>>> compute_score("shop_r1", out, gold, binary=True)["score"], compute_score("shop_r1", out, gold, binary=True,
...                                                                           use_format=False)["score"]
(1.5, 1.0)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import fields
from functools import lru_cache
from typing import Any

from agent.policy.schema import ParseError
from training.rewards import DEFAULT_CONFIG, RewardConfig, parse_completion, score_completion

__all__ = ["DATA_SOURCE", "SCORE_KEYS", "compute_score", "reward_config"]

log = logging.getLogger(__name__)

DATA_SOURCE = "shop_r1"
"""The `data_source` of the rows `training.verl_data.convert_to_verl` writes."""
SCORE_KEYS: tuple[str, ...] = ("score", "format", "type", "attribute", "value", "binary", "valid_format")
"""The keys of every dict `compute_score` returns (verl collects each key into a per-row list)."""

_FIELDS = {f.name for f in fields(RewardConfig)}
_warned_sources: set[str] = set()


def _overrides(source: Any, where: str) -> dict[str, Any]:
    if source is None:
        return {}
    if isinstance(source, str):  # a JSON string, e.g. from a parquet column written elsewhere
        try:
            source = json.loads(source)
        except ValueError:
            raise ValueError(f"Expect {where} as a dict of RewardConfig fields, actually: {source[:80]!r}") from None
    if not isinstance(source, Mapping):
        raise ValueError(f"Expect {where} as a dict of RewardConfig fields, actually: {type(source).__name__}")
    unknown = sorted(set(source) - _FIELDS)
    if unknown:
        raise ValueError(f"Expect {where} keys among RewardConfig fields ({', '.join(sorted(_FIELDS))}), actually: "
                         f"{', '.join(map(str, unknown))}")
    return {k: _plain(v) for k, v in source.items() if v is not None}


def _plain(value: Any) -> Any:
    """numpy scalars (parquet round trips) as Python ones, so RewardConfig's type checks accept them."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, bool | int | float | str) else value


@lru_cache(maxsize=256)
def _config(items: tuple[tuple[str, Any], ...]) -> RewardConfig:
    return RewardConfig(**dict(items)) if items else DEFAULT_CONFIG


def reward_config(extra_info: Mapping[str, Any] | None = None, **reward_kwargs: Any) -> RewardConfig:
    """The `RewardConfig` of one call: paper defaults < `reward_kwargs` < `extra_info["reward_config"]`.

    >>> reward_config({"reward_config": {"dars": 10}}, rouge_threshold=0.5)
    RewardConfig(format_reward=0.5, type_reward=0.3, click_attr_reward=0.2, type_name_attr_reward=0.1, \
type_text_attr_reward=0.1, type_name_value_weight=0.1, dars=10, rouge_threshold=0.5, rouge_gate='exceeds', \
format_check='strict', use_format=True, use_dars=True, binary=False)
    """
    merged = _overrides(reward_kwargs, "custom_reward_function.reward_kwargs")
    if extra_info is not None:
        if not isinstance(extra_info, Mapping):
            raise ValueError(f"Expect extra_info as a dict, actually: {type(extra_info).__name__}")
        merged.update(_overrides(extra_info.get("reward_config"), 'extra_info["reward_config"]'))
    return _config(tuple(sorted(merged.items())))


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """Score one decoded response against its gold action: the Shop-R1 reward v(a), with its components.

    Args:
        data_source: the row's `data_source` (`"shop_r1"`); another value is scored the same way, with a warning.
        solution_str: the decoded response (one JSON step `{"rationale": ..., "action": {...}}`).
        ground_truth: the gold action: its JSON string (`reward_model["ground_truth"]`), or a dict.
        extra_info: the row's `extra_info`; `extra_info["reward_config"]` overrides `RewardConfig` fields.
        **reward_kwargs: `custom_reward_function.reward_kwargs`, `RewardConfig` fields for the whole run.

    Returns a dict with the keys `SCORE_KEYS`. Raises `ValueError` for a gold action that does not parse or an
    unknown config field (data errors, not model errors: a model's bad output scores 0).
    """
    if data_source != DATA_SOURCE and data_source not in _warned_sources:
        _warned_sources.add(data_source)
        log.warning("compute_score: data_source %r is not %r; scoring it as a Shop-R1 row", data_source, DATA_SOURCE)
    config = reward_config(extra_info, **reward_kwargs)
    breakdown = score_completion(solution_str, ground_truth, config)
    valid = 0.0 if isinstance(parse_completion(solution_str, config.format_check), ParseError) else 1.0  # memoised
    return {
        "score": breakdown.reward(config),
        "format": breakdown.format,
        "type": breakdown.type,
        "attribute": breakdown.attribute,
        "value": breakdown.value,
        "binary": breakdown.binary,
        "valid_format": valid,
    }
