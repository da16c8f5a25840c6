"""Our RL dataset in verl's parquet format, for Shop-R1 GRPO on verl (see docs/verl.md).

verl's RL data (volcengine/verl, `docs/preparation/prepare_data.rst` and `examples/data_preprocess/gsm8k.py`) is one
parquet file per split, one row per prompt, with the columns::

    data_source   str    which reward applies ("shop_r1": `training.verl_reward.compute_score`)
    prompt        list   chat messages [{"role": ..., "content": ...}] (verl applies the chat template)
    ability       str    the task family ("shopping")
    reward_model  dict   {"style": "rule", "ground_truth": <gold action JSON>}
    extra_info    dict   {"split", "index", ...}: passed to the reward function as is

`convert_to_verl` writes `OUT_DIR/<split>.parquet` from `DATA_DIR/rl` (`training.data.build_datasets`): the prompt is
the whole-session context (`context="all"`, the paper's setting) or the current page only (`"latest"`, the Table 5
ablation); `ground_truth` is the row's `gold_action` unchanged, so `compute_score` scores exactly what
`training.rewards.ShopR1Reward` scores in our TRL trainer. `extra_info` carries `split`, `index` (the row's position
in its split), `session_id`, `step`, `url`, `gold_type`, `gold_rationale`, `site`, `persona`, `intent` and `context`.

The command is `shop-r1 data to-verl DATA_DIR --out DIR` (`training.cli.data`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from training.data import SPLITS, DataError, load_meta, load_split
from training.verl_reward import DATA_SOURCE

__all__ = ["ABILITY", "VERL_COLUMNS", "convert_to_verl", "verl_features"]

log = logging.getLogger(__name__)

ABILITY = "shopping"
VERL_COLUMNS: tuple[str, ...] = ("data_source", "prompt", "ability", "reward_model", "extra_info")
Context = Literal["all", "latest"]
_PROMPT_COLUMN = {"all": "prompt", "latest": "prompt_latest"}


def verl_features() -> Any:
    """The `datasets.Features` of a verl parquet file written here (fixed, so empty splits keep their schema)."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    return Features({
        "data_source": Value("string"),
        "prompt": List(message),
        "ability": Value("string"),
        "reward_model": {"style": Value("string"), "ground_truth": Value("string")},
        "extra_info": {
            "split": Value("string"), "index": Value("int64"), "session_id": Value("string"), "step": Value("int64"),
            "url": Value("string"), "gold_type": Value("string"), "gold_rationale": Value("string"),
            "site": Value("string"), "persona": Value("string"), "intent": Value("string"),
            "context": Value("string"),
        },
    })


def _row(row: dict[str, Any], split: str, index: int, context: Context) -> dict[str, Any]:
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": m["role"], "content": m["content"]} for m in row[_PROMPT_COLUMN[context]]],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": row["gold_action"]},
        "extra_info": {
            "split": split, "index": index, "session_id": row["session_id"], "step": int(row["step"]),
            "url": row["url"], "gold_type": row["gold_type"], "gold_rationale": row["gold_rationale"],
            "site": row["site"], "persona": row["persona"], "intent": row["intent"], "context": context,
        },
    }


def convert_to_verl(
    data_dir: str | Path,
    out_dir: str | Path,
    split_names: Sequence[str] = SPLITS,
    context: Context = "all",
) -> dict[str, Any]:
    """Write `OUT_DIR/<split>.parquet` in verl's format for each of `split_names`, and `OUT_DIR/verl_meta.json`.

    Returns the meta dict: the source, the context, and per split the file and its row count. Raises `DataError`
    for a directory without RL data, an unknown split or context.
    """
    from datasets import Dataset

    if context not in _PROMPT_COLUMN:
        raise DataError(f"Expect context 'all' or 'latest', actually: {context!r}")
    names = list(split_names)
    unknown = [s for s in names if s not in SPLITS]
    if unknown or not names:
        raise DataError(f"Expect splits among {', '.join(SPLITS)}, actually: {', '.join(unknown) or 'none'}")
    load_meta(data_dir)  # a data directory written by build_datasets, or a DataError saying so
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features = verl_features()
    files: dict[str, dict[str, Any]] = {}
    for split in names:
        rows = [_row(row, split, i, context) for i, row in enumerate(load_split(data_dir, "rl", split))]
        if rows:
            dataset = Dataset.from_list(rows, features=features)
        else:
            dataset = Dataset.from_dict({name: [] for name in features}, features=features)
        path = out / f"{split}.parquet"
        dataset.to_parquet(str(path))
        files[split] = {"file": path.name, "rows": len(rows)}
        log.info("wrote %s (%d rows)", path, len(rows))
    meta = {"source": str(Path(data_dir).resolve()), "context": context, "data_source": DATA_SOURCE,
            "ability": ABILITY, "columns": list(VERL_COLUMNS), "splits": files}
    (out / "verl_meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta
