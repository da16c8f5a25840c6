"""The verl adapter: `compute_score` equals `ShopR1Reward`; our RL data round-trips through verl's parquet format."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from datafix import cached_data_dir
from typer.testing import CliRunner

import training.verl_reward
from agent.policy.schema import ShopperStep, format_step
from training.cli.data import to_verl_command
from training.data import SPLITS, DataError, load_split
from training.rewards import RewardConfig, ShopR1Reward, parse_gold
from training.verl_data import VERL_COLUMNS, convert_to_verl
from training.verl_reward import SCORE_KEYS, compute_score, reward_config


def out(action: dict[str, Any], rationale: str = "I think this is it.") -> str:
    return json.dumps({"rationale": rationale, "action": action})


def click(name: str) -> dict[str, str]:
    return {"type": "click", "name": name}


def search(text: str, name: str = "search_input") -> dict[str, str]:
    return {"type": "type_and_submit", "name": name, "text": text}


TERMINATE = {"type": "terminate"}
TITLE = "search_results.acme_boot.title"
QUERY = "waterproof hiking boots"

# Every row of Table 1 (as in tests/training/test_rewards.py), wrong types, and format failures.
TABLE_1: list[tuple[str, dict[str, Any]]] = [
    (out(TERMINATE), TERMINATE),
    (out(click(TITLE)), click(TITLE)),
    (out(click("search_results.acme_boot.image")), click(TITLE)),  # ROUGE-L 0.8 > 0.75
    (out(click("product_options.size.m")), click("product_options.size.l")),  # 0.75: credit only under at_least
    (out(click("nav_bar.home")), click("nav_bar.homepage")),  # 0.667 < 0.75
    (out(click("cart.proceed_to_checkout")), click(TITLE)),
    (out(search(QUERY)), search(QUERY)),
    (out(search("Waterproof, hiking-boots")), search(QUERY)),
    (out(search("hiking boots")), search(QUERY)),
    (out(search("boots")), search(QUERY)),
    (out(search("camp stove")), search(QUERY)),
    (out(search(QUERY, "search_box")), search(QUERY)),
    (out(search(QUERY, "site.search_input")), search(QUERY)),
    (out(search("")), search(QUERY)),
    (out(search("   ")), search(QUERY)),
    (out(click(TITLE)), TERMINATE),
    (out(TERMINATE), click(TITLE)),
    (out(search(QUERY)), click(TITLE)),
    (out(click("search_input")), search(QUERY)),
    (out(TERMINATE), search(QUERY)),
    (out(search(QUERY)), TERMINATE),
    ("Sure!\n```json\n" + out(click(TITLE)) + "\n```", click(TITLE)),  # strict: 0; lenient: 1001
]
FORMAT_FAILURES: list[str] = [
    "I will click the boots.",
    "",
    json.dumps({"action": click(TITLE)}),
    json.dumps({"rationale": "  ", "action": click(TITLE)}),
    json.dumps({"rationale": "Go.", "action": click(TITLE), "confidence": 0.9}),
    json.dumps({"rationale": "Go.", "action": {"type": "buy", "name": TITLE}}),
    json.dumps({"rationale": "Go.", "action": {"type": "click"}}),
    json.dumps(click(TITLE)),
    '{"rationale": "Go.", "action": {"type": "click", "name": "' + TITLE + '"}',
]
CASES = TABLE_1 + [(c, click(TITLE)) for c in FORMAT_FAILURES]
CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {},
    "no_dars": {"use_dars": False},
    "dars_10": {"dars": 10.0},
    "no_format": {"use_format": False},
    "threshold_0.5": {"rouge_threshold": 0.5},
    "binary": {"binary": True},
    "binary_baseline": {"binary": True, "use_format": False},
    "at_least": {"rouge_gate": "at_least"},
    "lenient": {"format_check": "lenient"},
}


def _expected(completion: str, gold: dict[str, Any], overrides: dict[str, Any]) -> dict[str, float]:
    reward = ShopR1Reward(RewardConfig(**overrides))
    (score,) = reward(None, [completion], gold_action=[gold])
    parts = {k: v[0] for k, v in reward.components(None, [completion], gold_action=[gold]).items()}
    return {"score": score, **{k: parts[k] for k in ("format", "type", "attribute", "value", "binary")}}


def test_doctests() -> None:
    assert doctest.testmod(training.verl_reward).failed == 0


class TestSameAsShopR1Reward:
    @pytest.mark.parametrize("name", list(CONFIGS))
    @pytest.mark.parametrize(("completion", "gold"), CASES)
    def test_gold_as_json_via_extra_info(self, completion: str, gold: dict[str, Any], name: str) -> None:
        overrides = CONFIGS[name]
        got = compute_score("shop_r1", completion, json.dumps(gold), {"split": "train", "index": 3,
                                                                     "reward_config": overrides})
        assert set(got) == set(SCORE_KEYS)
        expected = _expected(completion, gold, overrides)
        assert {k: got[k] for k in expected} == pytest.approx(expected)

    @pytest.mark.parametrize(("completion", "gold"), CASES)
    def test_defaults_and_reward_kwargs(self, completion: str, gold: dict[str, Any]) -> None:
        assert compute_score("shop_r1", completion, gold)["score"] == pytest.approx(_expected(completion, gold, {})
                                                                                    ["score"])
        got = compute_score("shop_r1", completion, json.dumps(gold), None, use_dars=False)
        assert got["score"] == pytest.approx(_expected(completion, gold, {"use_dars": False})["score"])

    @pytest.mark.parametrize("completion", FORMAT_FAILURES)
    def test_format_failure_scores_zero(self, completion: str) -> None:
        got = compute_score("shop_r1", completion, json.dumps(click(TITLE)))
        assert got == {k: 0.0 for k in SCORE_KEYS}

    def test_valid_format_flag(self) -> None:
        assert compute_score("shop_r1", out(TERMINATE), json.dumps(click(TITLE)))["valid_format"] == 1.0
        fenced = "```json\n" + out(TERMINATE) + "\n```"  # the paper's strict format fails; lenient passes
        assert compute_score("shop_r1", fenced, json.dumps(TERMINATE))["valid_format"] == 0.0
        assert compute_score("shop_r1", fenced, json.dumps(TERMINATE), None, format_check="lenient") == {
            "score": pytest.approx(0.8), "format": 0.5, "type": 0.3, "attribute": 0.0, "value": 0.0, "binary": 1.0,
            "valid_format": 1.0}
        assert compute_score("shop_r1", out(TERMINATE), json.dumps(click(TITLE)),
                             {"reward_config": {"use_format": False}})["valid_format"] == 1.0


class TestExtraInfo:
    def test_precedence_row_over_run_over_defaults(self) -> None:
        assert reward_config() == RewardConfig()
        assert reward_config(None, dars=10.0).dars == 10.0
        assert reward_config({"reward_config": {"dars": 5.0}}, dars=10.0, use_dars=False) == RewardConfig(
            dars=5.0, use_dars=False)

    def test_other_keys_are_ignored(self) -> None:
        info = {"split": "train", "index": 0, "session_id": "run:s00001", "num_turns": None, "step": 2}
        assert compute_score("shop_r1", out(TERMINATE), json.dumps(TERMINATE), info)["score"] == pytest.approx(0.8)

    def test_numpy_values_and_json_string(self) -> None:
        # values read back from parquet arrive as numpy scalars
        info = {"reward_config": {"dars": np.float64(10.0), "use_dars": np.bool_(True)}}
        assert compute_score("shop_r1", out(click(TITLE)), json.dumps(click(TITLE)), info)["score"] == \
            pytest.approx(0.5 + 0.3 + 0.2 + 10)
        info = {"reward_config": json.dumps({"binary": True, "use_format": False})}
        assert compute_score("shop_r1", out(click(TITLE)), json.dumps(click(TITLE)), info)["score"] == 1.0
        info = {"reward_config": json.dumps({"binary": True})}  # Table 4's binary action reward keeps the format's 0.5
        assert compute_score("shop_r1", out(click(TITLE)), json.dumps(click(TITLE)), info)["score"] == 1.5

    @pytest.mark.parametrize("bad", [{"reward_config": {"darz": 1}}, {"reward_config": [1, 2]},
                                     {"reward_config": {"rouge_threshold": 2.0}}])
    def test_bad_overrides_raise(self, bad: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="Expect"):
            compute_score("shop_r1", out(TERMINATE), json.dumps(TERMINATE), bad)
        with pytest.raises(ValueError, match="Expect"):
            compute_score("shop_r1", out(TERMINATE), json.dumps(TERMINATE), None, darz=1)

    def test_bad_gold_is_a_data_error(self) -> None:
        with pytest.raises(ValueError, match="gold_action"):
            compute_score("shop_r1", out(TERMINATE), "not json")

    def test_other_data_source_is_scored_the_same(self, caplog: pytest.LogCaptureFixture) -> None:
        assert compute_score("other", out(TERMINATE), json.dumps(TERMINATE))["score"] == pytest.approx(0.8)
        assert "data_source 'other'" in caplog.text


# --------------------------------------------------------------------------------------------------------------------
# Data


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    return cached_data_dir(tmp_path_factory, store_db, store_url)


@pytest.fixture(scope="session")
def verl_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verl")
    convert_to_verl(data_dir, out)
    return out


def test_parquet_has_verls_columns_and_round_trips(data_dir: Path, verl_dir: Path) -> None:
    meta = json.loads((verl_dir / "verl_meta.json").read_text())
    assert meta["context"] == "all" and meta["data_source"] == "shop_r1"
    for split in SPLITS:
        path = verl_dir / f"{split}.parquet"
        schema = pq.read_schema(path)
        assert tuple(schema.names) == VERL_COLUMNS
        assert str(schema.field("prompt").type) == "list<element: struct<role: string, content: string>>"
        assert schema.field("reward_model").type.names == ["style", "ground_truth"]
        frame = pd.read_parquet(path)
        source = load_split(data_dir, "rl", split)
        assert len(frame) == len(source) == meta["splits"][split]["rows"] > 0
        for i, (row, src) in enumerate(zip(frame.to_dict("records"), source, strict=True)):
            assert row["data_source"] == "shop_r1" and row["ability"] == "shopping"
            assert row["reward_model"] == {"style": "rule", "ground_truth": src["gold_action"]}
            assert [dict(m) for m in row["prompt"]] == src["prompt"]
            info = row["extra_info"]
            assert (info["split"], info["index"], info["session_id"], info["step"]) == (split, i, src["session_id"],
                                                                                         src["step"])
            assert info["gold_type"] == src["gold_type"] and info["context"] == "all"


def test_parquet_rows_score_like_the_rl_dataset(data_dir: Path, verl_dir: Path) -> None:
    # What verl's naive reward manager does with each row: compute_score(data_source, response, ground_truth,
    # extra_info). A response that states the gold action earns ShopR1Reward's maximum for that row.
    frame = pd.read_parquet(verl_dir / "validation.parquet")
    source = load_split(data_dir, "rl", "validation")
    reward = ShopR1Reward()
    for row, src in zip(frame.to_dict("records"), source, strict=True):
        response = format_step(ShopperStep(rationale="That is what I want.", action=parse_gold(src["gold_action"])))
        got = compute_score(row["data_source"], response, row["reward_model"]["ground_truth"], row["extra_info"])
        assert got["score"] == pytest.approx(reward(None, [response], gold_action=[src["gold_action"]])[0])
        assert got["binary"] == 1.0


def test_latest_context_and_split_selection(data_dir: Path, tmp_path: Path) -> None:
    meta = convert_to_verl(data_dir, tmp_path, split_names=("test",), context="latest")
    assert list(meta["splits"]) == ["test"] and not (tmp_path / "train.parquet").exists()
    frame = pd.read_parquet(tmp_path / "test.parquet")
    source = load_split(data_dir, "rl", "test")
    assert [[dict(m) for m in p] for p in frame["prompt"]] == source["prompt_latest"]
    assert {info["context"] for info in frame["extra_info"]} == {"latest"}


@pytest.mark.parametrize("kwargs", [{"context": "everything"}, {"split_names": ("dev",)}, {"split_names": ()}])
def test_bad_arguments(data_dir: Path, tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(DataError, match="Expect"):
        convert_to_verl(data_dir, tmp_path, **kwargs)


def test_not_a_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="meta.json"):
        convert_to_verl(tmp_path, tmp_path / "out")


def test_cli(data_dir: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("to-verl")(to_verl_command)
    app.command("noop")(lambda: None)  # a group of two, like `shop-r1 data`
    result = CliRunner().invoke(app, ["to-verl", str(data_dir), "--out", str(tmp_path / "v"), "--splits", "train"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v" / "train.parquet").is_file() and "custom_reward_function.path=" in result.output
    result = CliRunner().invoke(app, ["to-verl", str(tmp_path), "--out", str(tmp_path / "w")])
    assert result.exit_code == 2 and "meta.json" in result.output
