"""The paper's evaluation metrics on hand-made predictions, with the expected values computed by hand."""

from __future__ import annotations

import doctest
import json
from typing import Any

import pytest

import training.metrics
from agent.policy.schema import ShopperStep
from envs.actions import Click, Terminate
from training.metrics import MetricsConfig, evaluate_predictions, format_metrics_table, is_exact, prediction_action


def step(action: dict[str, Any]) -> str:
    return json.dumps({"rationale": "My next move.", "action": action})


def click(name: str) -> dict[str, str]:
    return {"type": "click", "name": name}


def search(text: str, name: str = "search_input") -> dict[str, str]:
    return {"type": "type_and_submit", "name": name, "text": text}


TERMINATE = {"type": "terminate"}
QUERY = "waterproof hiking boots"

# (gold, prediction): what each row counts as
CASES: list[tuple[dict[str, str], Any]] = [
    (click("a.b"), step(click("a.b"))),  # 0 exact
    (click("a.b"), step(click("a.c"))),  # 1 type right, name wrong
    (click("x.y"), step(TERMINATE)),  # 2 type wrong
    (click("x.y"), "I would click x.y"),  # 3 invalid
    (search(QUERY), step(search("hiking boots"))),  # 4 exact: ROUGE-L 0.8 >= 0.75
    (search(QUERY), step(search("boots"))),  # 5 type right, ROUGE-L 0.5
    (search("tent"), step(search("tent", "search_box"))),  # 6 type right, name wrong
    (search("tent"), step(click("search_input"))),  # 7 type wrong
    (TERMINATE, step(TERMINATE)),  # 8 exact
    (TERMINATE, step(click("a.b"))),  # 9 type wrong
]
GOLDS = [g for g, _ in CASES]
PREDS = [p for _, p in CASES]


def test_doctests() -> None:
    assert doctest.testmod(training.metrics).failed == 0


class TestHandComputed:
    def test_overall(self) -> None:
        m = evaluate_predictions(PREDS, GOLDS)
        assert m.n == 10 and m.n_invalid == 1
        assert m.exact_accuracy == pytest.approx(3 / 10)  # rows 0, 4, 8
        assert m.type_accuracy == pytest.approx(6 / 10)  # rows 0, 1, 4, 5, 6, 8
        # click: TP 2 (rows 0, 1), predicted 4 (0, 1, 7, 9), gold 4 -> P = R = F1 = 0.5
        # type_and_submit: TP 3, predicted 3, gold 4 -> P 1, R 0.75, F1 = 1.5 / 1.75 = 6/7
        # terminate: TP 1 (8), predicted 2 (2, 8), gold 2 -> P = R = F1 = 0.5
        assert m.type_macro_f1 == pytest.approx((0.5 + 6 / 7 + 0.5) / 3)

    def test_per_type(self) -> None:
        m = evaluate_predictions(PREDS, GOLDS)
        c, t, e = m.per_type["click"], m.per_type["type_and_submit"], m.per_type["terminate"]
        assert (c.support, c.predicted, c.exact_accuracy, c.type_accuracy) == (4, 4, 0.25, 0.5)
        assert (c.precision, c.recall, c.f1) == (0.5, 0.5, 0.5)
        assert (t.support, t.predicted, t.exact_accuracy, t.type_accuracy) == (4, 3, 0.25, 0.75)
        assert (t.precision, t.recall) == (1.0, 0.75) and t.f1 == pytest.approx(6 / 7)
        assert (e.support, e.predicted, e.exact_accuracy, e.type_accuracy) == (2, 2, 0.5, 0.5)

    def test_confusion(self) -> None:
        m = evaluate_predictions(PREDS, GOLDS)
        assert m.confusion == {
            "click": {"click": 2, "type_and_submit": 0, "terminate": 1, "invalid": 1},
            "type_and_submit": {"click": 1, "type_and_submit": 3, "terminate": 0, "invalid": 0},
            "terminate": {"click": 1, "type_and_submit": 0, "terminate": 1, "invalid": 0},
        }

    @pytest.mark.parametrize(("threshold", "exact"), [(0.85, 2 / 10), (0.8, 3 / 10), (0.5, 4 / 10), (0.0, 4 / 10)])
    def test_threshold_is_configurable(self, threshold: float, exact: float) -> None:
        # row 4 has ROUGE-L 0.8, row 5 has 0.5 (>= is inclusive); row 6's name is wrong whatever the threshold
        m = evaluate_predictions(PREDS, GOLDS, MetricsConfig(rouge_threshold=threshold))
        assert m.exact_accuracy == pytest.approx(exact)
        assert m.type_accuracy == pytest.approx(0.6)  # type metrics do not depend on it
        assert m.rouge_threshold == threshold


class TestConventions:
    def test_absent_class_has_f1_zero_and_is_averaged(self) -> None:
        # only clicks, all right: click F1 = 1, the two absent types F1 = 0 -> macro 1/3 (sklearn zero_division=0)
        m = evaluate_predictions([step(click("a.b"))] * 3, [click("a.b")] * 3)
        assert m.exact_accuracy == 1.0 and m.type_accuracy == 1.0
        assert m.type_macro_f1 == pytest.approx(1 / 3)
        assert m.per_type["terminate"].exact_accuracy is None
        assert m.per_type["terminate"].type_accuracy is None
        assert m.per_type["terminate"].f1 == 0.0

    def test_all_invalid(self) -> None:
        m = evaluate_predictions(["", None, "{}"], [click("a.b"), TERMINATE, search("x")])
        assert (m.exact_accuracy, m.type_accuracy, m.type_macro_f1, m.n_invalid) == (0.0, 0.0, 0.0, 3)
        assert all(t.predicted == 0 and t.precision == 0.0 for t in m.per_type.values())

    def test_terminate_spam(self) -> None:
        # the degenerate policy of the paper's no-DARS and binary ablations: 20% exact, type F1 = F1(terminate) / 3
        golds = [click("a.b")] * 5 + [search("x")] * 3 + [TERMINATE] * 2
        m = evaluate_predictions([step(TERMINATE)] * 10, golds)
        assert m.exact_accuracy == pytest.approx(0.2) and m.type_accuracy == pytest.approx(0.2)
        # terminate: P = 2/10, R = 1 -> F1 = 0.4 / 1.2 = 1/3; others 0
        assert m.type_macro_f1 == pytest.approx((1 / 3) / 3)

    def test_exact_rule(self) -> None:
        assert is_exact(Click(name=" a.b "), Click(name="a.b"))
        assert not is_exact(Click(name="A.b"), Click(name="a.b"))  # names are identifiers
        assert is_exact(Terminate(), Terminate())
        assert not is_exact(Terminate(), Click(name="a.b"))


class TestInputs:
    def test_prediction_forms(self) -> None:
        gold = click("a.b")
        preds: list[Any] = [
            step(gold),
            [{"role": "assistant", "content": step(gold)}],
            ShopperStep(rationale="r", action=gold),
            Click(name="a.b"),
            gold,
            {"rationale": "r", "action": gold},
        ]
        m = evaluate_predictions(preds, [gold] * len(preds))
        assert m.exact_accuracy == 1.0

    @pytest.mark.parametrize("pred", [None, json.dumps(click("a.b")), {"type": "buy"}, 42, "", "{"])
    def test_invalid_predictions(self, pred: Any) -> None:
        # a bare action string is not the required output format
        assert prediction_action(pred) is None

    def test_errors(self) -> None:
        with pytest.raises(ValueError, match=r"Expect one prediction per gold action \(2\), actually: 1"):
            evaluate_predictions([step(TERMINATE)], [TERMINATE, TERMINATE])
        with pytest.raises(ValueError, match="Expect at least one prediction"):
            evaluate_predictions([], [])
        with pytest.raises(ValueError, match="gold 0: Expect"):
            evaluate_predictions([step(TERMINATE)], [{"type": "buy"}])
        with pytest.raises(ValueError, match=r"Expect rouge_threshold in \[0, 1\], actually: 2"):
            MetricsConfig(rouge_threshold=2)


def test_table_layout() -> None:
    rows = {
        "SFT": evaluate_predictions(PREDS, GOLDS),
        "always terminate": evaluate_predictions([step(TERMINATE)] * 3, [click("a.b"), TERMINATE, TERMINATE]),
    }
    assert format_metrics_table(rows) == "\n".join([
        "| setting | exact acc. | action type acc. | action type F1 | n |",
        "|---|---|---|---|---|",
        "| SFT | 30.00 | 60.00 | 61.90 | 10 |",
        "| always terminate | 66.67 | 66.67 | 26.67 | 3 |",
        "",
        "| setting | click exact | click type | type_and_submit exact | type_and_submit type | terminate exact | "
        "terminate type |",
        "|---|---|---|---|---|---|---|",
        "| SFT | 25.00 | 50.00 | 25.00 | 75.00 | 50.00 | 50.00 |",
        "| always terminate | 0.00 | 0.00 | – | – | 100.00 | 100.00 |",
    ])
