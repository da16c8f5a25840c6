"""training.evaluate: next-action prediction on the RL split, and session realism."""

from __future__ import annotations

import doctest
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from datafix import cached_data_dir, cached_data_micro_model
from tracefix import browser_then_leave, buyer
from typer.testing import CliRunner

from agent.policy.base import Policy, PolicyRequest, PolicyResponse
from agent.policy.schema import ShopperStep, format_step
from agent.runtime.trace import iter_traces
from envs.actions import Terminate
from training.data import DataError, load_split
from training.evaluate import (
    compare_runs,
    evaluate_model,
    format_eval_markdown,
    format_realism_markdown,
    js_distance,
    length_histogram,
    session_realism,
)
from training.metrics import Metrics, evaluate_predictions


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    return cached_data_dir(tmp_path_factory, store_db, store_url)


@pytest.fixture(scope="session")
def micro_dir(tmp_path_factory: pytest.TempPathFactory, store_db: Path, store_url: str) -> Path:
    return cached_data_micro_model(tmp_path_factory, store_db, store_url)


# --------------------------------------------------------------------------------------------------------------------
# Jensen-Shannon distance, by hand


class TestJsDistance:
    def test_identical_and_disjoint(self) -> None:
        assert js_distance([0.2, 0.8], [0.2, 0.8]) == 0.0
        assert js_distance({"a": 3, "b": 1}, {"a": 6, "b": 2}) == 0.0  # counts are normalised
        assert js_distance([1, 0], [0, 1]) == 1.0
        assert js_distance({"a": 1}, {"b": 1}) == 1.0  # a missing key is 0

    def test_half_overlap(self) -> None:
        # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4).
        # KL(P||M) = log2(4/3) = 0.4150375; KL(Q||M) = 1/2 log2(2/3) + 1/2 log2(2) = 0.2075187.
        # JSD = (0.4150375 + 0.2075187) / 2 = 0.3112781; distance = sqrt(JSD) = 0.5579230.
        assert js_distance([1, 0], [0.5, 0.5]) == pytest.approx(0.5579230, abs=1e-7)
        # P = (1/2, 1/2, 0), Q = (0, 1/2, 1/2), M = (1/4, 1/2, 1/4): both KLs are 1/2, JSD = 1/2.
        assert js_distance([1, 1, 0], [0, 1, 1]) == pytest.approx(math.sqrt(0.5), abs=1e-12)

    def test_symmetric_and_bounded(self) -> None:
        p, q = {"click": 70, "type_and_submit": 20, "terminate": 10}, {"click": 40, "terminate": 55, "x": 5}
        assert js_distance(p, q) == js_distance(q, p)
        assert 0 < js_distance(p, q) < 1

    @pytest.mark.parametrize(("p", "q", "message"), [
        ([1, 0], [1, 0, 0], "same length"),
        ([-1, 2], [1, 1], "non-negative"),
        ([0, 0], [1, 1], "positive total"),
        ([float("nan"), 1], [1, 1], "finite"),
        ({"a": 1}, [1], "one of each"),
    ])
    def test_bad_input(self, p, q, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            js_distance(p, q)


def test_length_histogram_bins() -> None:
    hist = length_histogram([0, 1, 2, 3, 4, 6, 9, 12, 19, 25, 30, 99])
    assert hist == {"1": 2, "2": 1, "3-4": 2, "5-6": 1, "7-9": 1, "10-14": 1, "15-19": 1, "20-29": 1, "30+": 2}


def test_compare_runs_on_hand_built_sessions(tmp_path: Path) -> None:
    buyer(tmp_path / "ref", "s0")
    buyer(tmp_path / "ref", "s1")
    browser_then_leave(tmp_path / "sim", "s0")
    ref, sim = list(iter_traces(tmp_path / "ref")), list(iter_traces(tmp_path / "sim"))
    result = compare_runs(ref, sim)
    # buyer: search, open, buy now, place order; browser_then_leave: search, bad click, unparseable, search, leave.
    assert result["reference"]["action_types"] == {"click": 6, "type_and_submit": 2}
    assert result["simulated"]["action_types"] == {"click": 1, "type_and_submit": 2, "terminate": 1,
                                                   "unparseable": 1}
    assert result["js"]["action_types"] == pytest.approx(
        js_distance({"click": 6, "type_and_submit": 2}, {"click": 1, "type_and_submit": 2, "terminate": 1,
                                                         "unparseable": 1}))
    assert result["js"]["session_lengths"] == 1.0 and result["js"]["outcomes"] == 1.0  # 4 vs 5 steps; buy vs leave
    assert result["reference"]["furthest_stage"] == {"none": 0, "search": 0, "product": 0, "add_to_cart": 0,
                                                     "purchase": 2}
    assert result["simulated"]["furthest_stage"] == {"none": 0, "search": 1, "product": 0, "add_to_cart": 0,
                                                     "purchase": 0}
    assert result["js"]["funnel"] == 1.0  # every buyer got to purchase, the browser only to search results
    assert result["funnel_abs_diff"] == {"search": 0.0, "product": 1.0, "add_to_cart": 1.0, "purchase": 1.0,
                                         "mean": 0.75}
    assert result["rates"]["purchase_rate"] == {"reference": 1.0, "simulated": 0.0}
    assert result["rates"]["invalid_rate"] == {"reference": 0.0, "simulated": 0.4}
    same = compare_runs(ref, ref)
    assert set(same["js"].values()) == {0.0} and same["funnel_abs_diff"]["mean"] == 0.0
    assert "| action types | " in format_realism_markdown({**result, "sessions": 1})
    with pytest.raises(ValueError, match="both sides"):
        compare_runs(ref, [])


# --------------------------------------------------------------------------------------------------------------------
# Next-action prediction


def _recompute(predictions_path: Path) -> tuple[Metrics, list[dict]]:
    records = [json.loads(line) for line in predictions_path.read_text().splitlines()]
    return evaluate_predictions([r["completion"] for r in records], [r["gold_action"] for r in records]), records


def _rates_in_unit_interval(metrics: dict) -> None:
    for key in ("exact_accuracy", "type_accuracy", "type_macro_f1"):
        assert 0.0 <= metrics[key] <= 1.0
    for per_type in metrics["per_type"].values():
        for key in ("exact_accuracy", "type_accuracy", "precision", "recall", "f1"):
            assert per_type[key] is None or 0.0 <= per_type[key] <= 1.0


def test_the_scripted_reference_labels_the_split(data_dir: Path, tmp_path: Path) -> None:
    result = evaluate_model("scripted", data_dir, split="test", predictions_path=tmp_path / "p.jsonl")
    rows = load_split(data_dir, "rl", "test")
    assert result["n"] == len(rows) and result["name"] == "scripted"
    _rates_in_unit_interval(result["metrics"])
    recomputed, records = _recompute(tmp_path / "p.jsonl")
    assert recomputed.model_dump() == result["metrics"]
    assert [r["session_id"] for r in records] == rows["session_id"]
    assert sum(r["exact"] for r in records) == round(result["metrics"]["exact_accuracy"] * result["n"])
    # The same stochastic shopper drawn again: it agrees on the type of most steps, not on every detail.
    assert result["metrics"]["type_accuracy"] > 0.6 and result["metrics"]["n_invalid"] == 0
    again = evaluate_model("scripted", data_dir, split="test")
    assert again["metrics"] == result["metrics"]  # seeded
    assert "| scripted |" in result["table"] and "| scripted |" in format_eval_markdown([result])


class Leaver(Policy):
    """Always leaves: its scores are the share of terminate golds, nothing else."""

    name = "leaver"

    def __init__(self) -> None:
        self.requests: list[PolicyRequest] = []

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        self.requests.extend(requests)
        step = ShopperStep(rationale="Bye.", action=Terminate())
        return [PolicyResponse(step=step, raw=format_step(step)) for _ in requests]


def test_a_policy_answers_the_recorded_states(data_dir: Path) -> None:
    policy = Leaver()
    result = evaluate_model(policy, data_dir, split="validation", context="all")
    golds = load_split(data_dir, "rl", "validation")["gold_type"]
    share = golds.count("terminate") / len(golds)
    assert result["metrics"]["exact_accuracy"] == result["metrics"]["type_accuracy"] == pytest.approx(share)
    assert [len(r.history) for r in policy.requests][:2] == [0, 1]
    assert all(h.rationale is None for r in policy.requests for h in r.history)  # as in the RL prompts
    latest = Leaver()
    evaluate_model(latest, data_dir, split="validation", context="latest")
    assert all(not r.history for r in latest.requests)


def test_a_model_generates_for_the_rows(micro_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    result = evaluate_model(micro_dir, data_dir, split="test", limit=12, batch_size=6, max_new_tokens=24,
                            temperature=0.0, device="cpu", predictions_path=tmp_path / "p.jsonl")
    assert result["n"] == 12 and result["model"] == "model" and result["device"] == "cpu"
    _rates_in_unit_interval(result["metrics"])
    recomputed, records = _recompute(tmp_path / "p.jsonl")
    assert recomputed.model_dump() == result["metrics"]
    n_rows = len(load_split(data_dir, "rl", "test"))
    assert [r["index"] for r in records] == [math.floor(i * n_rows / 12) for i in range(12)]
    assert all(r["completion_tokens"] <= 24 for r in records)
    speed = result["speed"]
    assert speed["engine"]["requests"] == 12 and speed["engine"]["max_batch_size"] == 6 and speed["rows_per_s"] > 0


def test_prompts_over_the_model_context_are_invalid(micro_dir: Path, data_dir: Path) -> None:
    from agent.policy.engines import LocalEngine

    engine = LocalEngine.from_pretrained(micro_dir, device="cpu")
    engine.max_length = 600  # shorter than any prompt + completion
    result = evaluate_model(engine, data_dir, split="test", limit=3, max_new_tokens=8, context="latest")
    assert result["over_context"] == 3 and result["metrics"]["n_invalid"] == 3
    assert result["metrics"]["exact_accuracy"] == 0.0 and "latest page only" in result["table"]


def test_bad_targets_are_data_errors(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="policy name"):
        evaluate_model("nonsense", data_dir)
    with pytest.raises(DataError, match="config.json"):
        evaluate_model(tmp_path, data_dir)
    with pytest.raises(DataError, match="meta.json"):
        evaluate_model("scripted", tmp_path)
    with pytest.raises(ValueError, match="context"):
        evaluate_model("scripted", data_dir, context="some")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------------
# Session realism and the CLI


def test_session_realism_of_the_scripted_shopper(data_dir: Path, store_url: str, tmp_path: Path) -> None:
    result = session_realism("scripted", data_dir, store_url, 4, split="test", out_dir=tmp_path / "sim")
    assert result["sessions"] == 4 and result["simulated"]["sessions"] == 4
    assert len(list((tmp_path / "sim" / "sessions").glob("*.jsonl"))) == 4
    for value in result["js"].values():
        assert 0.0 <= value <= 1.0
    assert result["js"]["action_types"] < 0.5  # the same shopper: much the same action mix
    assert 0.0 <= result["funnel_abs_diff"]["mean"] <= 1.0
    assert result["simulated"]["invalid_rate"] == 0.0 and result["reference"]["sessions"] == 3
    headers = [t.header for t in iter_traces(tmp_path / "sim")]
    refs = {json.loads(p)["persona_id"] for p in load_split(data_dir, "rl", "test")["persona"]}
    assert {h.persona["persona_id"] for h in headers} <= refs


def test_cli_eval(data_dir: Path, tmp_path: Path) -> None:
    from agent.cli.root import app

    runner = CliRunner()
    out = tmp_path / "res" / "scripted.json"
    result = runner.invoke(app, ["eval", "--policy", "scripted", "--data", str(data_dir), "--out", str(out),
                                 "--split", "validation", "--limit", "10"])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["n"] == 10 and saved["config"]["split"] == "validation"
    recomputed, _ = _recompute(Path(saved["predictions_path"]))
    assert recomputed.model_dump() == saved["metrics"]
    assert "| scripted |" in out.with_suffix(".md").read_text()
    for args, message in (
        (["--data", str(data_dir)], "exactly one of"),
        (["--policy", "scripted", "--model", str(tmp_path), "--data", str(data_dir)], "exactly one of"),
        (["--policy", "scripted", "--data", str(tmp_path)], "not a data directory"),
        (["--model", str(tmp_path), "--data", str(data_dir)], "not a model directory"),
        (["--policy", "scripted", "--data", str(data_dir), "--context", "recent"], "--context"),
        (["--policy", "scripted", "--data", str(data_dir), "--split", "dev"], "--split"),
        (["--policy", "gpt", "--data", str(data_dir)], "Invalid value for '--policy'"),
    ):
        result = runner.invoke(app, ["eval", "--out", str(tmp_path / "x.json"), *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_doctests() -> None:
    import training.evaluate

    assert doctest.testmod(training.evaluate).failed == 0
