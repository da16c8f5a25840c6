"""The paper's evaluation of next-action prediction (Shop-R1, Tables 2 and 3).

- **Exact action accuracy**: every field matches.
  `click`: the same name. `type_and_submit`: the same name, and a text "of similar meaning", which we define as
  ROUGE-L(text, gold text) >= `rouge_threshold` (default 0.75, the reward's threshold `PAPER_ROUGE_THRESHOLD`;
  `training.rouge.rouge_l`). The paper leaves "similar meaning" to us; `>=` here, while the reward's gate is `>` by
  default (`training.rewards`, `rouge_gate`): a typed text at exactly the threshold is exact here and earns no value
  credit there.
  `terminate`: the type alone. Names are compared after `strip()`, case-sensitively (they are identifiers).
- **Action type accuracy**: the predicted type equals the gold type.
- **Action type macro-F1** over the three types `click`, `type_and_submit`, `terminate`. Per type, precision =
  TP / predicted, recall = TP / gold, F1 = 2PR / (P + R); a ratio with a zero denominator is 0 (scikit-learn's
  `zero_division=0`), and all three types are always averaged (scikit-learn's `labels=[...]`), even one absent from
  both golds and predictions (its F1 is then 0).
- **Per type** (grouped by the *gold* type): exact accuracy and type accuracy (= that type's recall); None when the
  type has no gold example.

A prediction that is not a valid step (fails `agent.policy.schema.parse_step`) has type `"invalid"`: wrong on every
metric, a false negative for its gold type and a false positive for none. The check is the reward's *lenient* one
(`format_check="lenient"`): the paper's metrics judge the action, so prose or code fences around a valid JSON step do
not make it invalid here, although the reward's default (strict) format check gives such an output 0.

>>> golds = [{"type": "click", "name": "a.b"}, {"type": "terminate"}]
>>> preds = ['{"rationale": "Open it.", "action": {"type": "click", "name": "a.b"}}', "garbage"]
>>> m = evaluate_predictions(preds, golds)
>>> m.exact_accuracy, m.type_accuracy, m.n_invalid
(0.5, 0.5, 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.policy.schema import ShopperStep
from envs.actions import ACTION_MODELS, ACTION_TYPES, Click, Terminate, TypeAndSubmit
from training.rewards import PAPER_ROUGE_THRESHOLD, parse_completion, parse_gold
from training.rouge import rouge_l

__all__ = [
    "INVALID",
    "Metrics",
    "MetricsConfig",
    "TypeMetrics",
    "evaluate_predictions",
    "format_metrics_table",
    "is_exact",
    "prediction_action",
    "type_macro_f1",
]

INVALID = "invalid"
"""The type of a prediction that is not a valid step."""

Action = Click | TypeAndSubmit | Terminate


@dataclass(frozen=True)
class MetricsConfig:
    """How exact matches are judged."""

    rouge_threshold: float = field(
        default=PAPER_ROUGE_THRESHOLD,
        metadata={"help": "A type_and_submit's text is 'of similar meaning' (Shop-R1, Tables 2-3) when ROUGE-L >= "
                          "this. Ours, not the paper's number: it reuses the reward's threshold (Shop-R1, sec. 3)."},
    )

    def __post_init__(self) -> None:
        value = self.rouge_threshold
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"Expect rouge_threshold in [0, 1], actually: {value!r}")


class TypeMetrics(BaseModel):
    """Metrics of one action type. Accuracies are over the examples whose *gold* type is this one."""

    model_config = ConfigDict(frozen=True)

    support: int
    predicted: int
    exact_accuracy: float | None
    type_accuracy: float | None
    precision: float
    recall: float
    f1: float


class Metrics(BaseModel):
    """The paper's evaluation of a set of predictions. Rates are fractions in [0, 1]."""

    model_config = ConfigDict(frozen=True)

    n: int
    n_invalid: int
    exact_accuracy: float
    type_accuracy: float
    type_macro_f1: float
    per_type: dict[str, TypeMetrics]
    confusion: dict[str, dict[str, int]]
    """gold type -> predicted type (`invalid` included) -> count."""
    rouge_threshold: float


def prediction_action(pred: Any) -> Action | None:
    """The predicted action, or None when the prediction is not a valid step.

    A string (or chat messages) must pass `agent.policy.schema.parse_step` (the reward's lenient format check). Already
    structured predictions are accepted as they are: a `ShopperStep`, an action model, or a dict of either.

    >>> prediction_action('{"rationale": "x", "action": {"type": "terminate"}}'), prediction_action('{"type": "x"}')
    (Terminate(type='terminate'), None)
    """
    if pred is None:
        return None
    if isinstance(pred, ACTION_MODELS):
        return pred  # type: ignore[return-value]
    if isinstance(pred, ShopperStep):
        return pred.action
    if isinstance(pred, Mapping) and ("type" in pred or "action" in pred) and "role" not in pred:
        try:
            return parse_gold(pred)
        except ValueError:
            return None
    step = parse_completion(pred, "lenient")
    return step.action if isinstance(step, ShopperStep) else None


def is_exact(pred: Action, gold: Action, rouge_threshold: float = PAPER_ROUGE_THRESHOLD) -> bool:
    """The exact-match rule: click same name; type_and_submit same name and ROUGE-L(text) >= threshold;
    terminate the type alone.

    >>> gold = TypeAndSubmit(name="search_input", text="waterproof hiking boots")
    >>> is_exact(TypeAndSubmit(name="search_input", text="Waterproof hiking boots!"), gold)
    True
    >>> is_exact(TypeAndSubmit(name="search_input", text="hiking boots"), gold)  # ROUGE-L 0.8
    True
    >>> is_exact(TypeAndSubmit(name="search_input", text="boots"), gold)  # ROUGE-L 0.5
    False
    """
    if pred.type != gold.type:
        return False
    if isinstance(pred, Terminate):
        return True
    if pred.name.strip() != gold.name.strip():  # type: ignore[union-attr]
        return False
    if isinstance(pred, TypeAndSubmit):
        return rouge_l(pred.text, gold.text) >= rouge_threshold  # type: ignore[union-attr]
    return True


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _prf(confusion: Mapping[str, Mapping[str, int]], t: str) -> tuple[float, float, float]:
    """Precision, recall and F1 of type `t` from a gold -> predicted confusion (zero denominators give 0)."""
    tp = confusion[t][t]
    precision = _ratio(tp, sum(confusion[g][t] for g in ACTION_TYPES))
    recall = _ratio(tp, sum(confusion[t].values()))
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def type_macro_f1(gold_types: Sequence[str], predicted_types: Sequence[str]) -> float:
    """Action type macro-F1 of paired types, as `evaluate_predictions` computes it (a prediction may be `invalid`).

    For resampling (`agent.analysis.stats.paired_bootstrap`): no parsing, only the types.

    >>> round(type_macro_f1(["click", "click", "terminate"], ["click", "terminate", "terminate"]), 4)
    0.4444
    """
    if len(gold_types) != len(predicted_types):
        raise ValueError(f"Expect one predicted type per gold type ({len(gold_types)}), actually: "
                         f"{len(predicted_types)}")
    confusion = {g: dict.fromkeys((*ACTION_TYPES, INVALID), 0) for g in ACTION_TYPES}
    for gold, predicted in zip(gold_types, predicted_types, strict=True):
        confusion[gold][predicted] += 1
    return sum(_prf(confusion, t)[2] for t in ACTION_TYPES) / len(ACTION_TYPES)


def evaluate_predictions(
    preds: Sequence[Any], golds: Sequence[Any], config: MetricsConfig | None = None
) -> Metrics:
    """Score predictions against gold actions, one to one.

    `preds`: model outputs (strings or chat messages, checked with `parse_step`), steps, actions, or None.
    `golds`: action models, dicts or JSON strings (as `training.rewards.parse_gold` accepts).
    """
    config = config or MetricsConfig()
    if isinstance(preds, str | bytes) or isinstance(golds, str | bytes):
        raise ValueError("Expect sequences of predictions and gold actions, actually: a single string")
    if len(preds) != len(golds):
        raise ValueError(f"Expect one prediction per gold action ({len(golds)}), actually: {len(preds)}")
    if not golds:
        raise ValueError("Expect at least one prediction to evaluate, actually: none")

    confusion = {g: dict.fromkeys((*ACTION_TYPES, INVALID), 0) for g in ACTION_TYPES}
    exact = dict.fromkeys(ACTION_TYPES, 0)
    for i, (pred, gold) in enumerate(zip(preds, golds, strict=True)):
        try:
            gold_action = parse_gold(gold)
        except ValueError as exc:
            raise ValueError(f"gold {i}: {exc}") from None
        action = prediction_action(pred)
        confusion[gold_action.type][action.type if action is not None else INVALID] += 1
        if action is not None and is_exact(action, gold_action, config.rouge_threshold):
            exact[gold_action.type] += 1

    n = len(golds)
    per_type: dict[str, TypeMetrics] = {}
    for t in ACTION_TYPES:
        support = sum(confusion[t].values())
        predicted = sum(confusion[g][t] for g in ACTION_TYPES)
        tp = confusion[t][t]
        precision, recall, f1 = _prf(confusion, t)
        per_type[t] = TypeMetrics(
            support=support,
            predicted=predicted,
            exact_accuracy=exact[t] / support if support else None,
            type_accuracy=tp / support if support else None,
            precision=precision,
            recall=recall,
            f1=f1,
        )
    return Metrics(
        n=n,
        n_invalid=sum(confusion[g][INVALID] for g in ACTION_TYPES),
        exact_accuracy=sum(exact.values()) / n,
        type_accuracy=sum(confusion[t][t] for t in ACTION_TYPES) / n,
        type_macro_f1=sum(m.f1 for m in per_type.values()) / len(ACTION_TYPES),
        per_type=per_type,
        confusion=confusion,
        rouge_threshold=config.rouge_threshold,
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def format_metrics_table(rows: Mapping[str, Metrics]) -> str:
    """Two markdown tables in the paper's layout, values in %: overall (Table 2: exact, type accuracy, type F1)
    and per gold action type (Table 3: exact and type accuracy for click, type_and_submit, terminate).
    "–" marks a type with no gold example.

    >>> m = evaluate_predictions(['{"rationale": "Bye.", "action": {"type": "terminate"}}'], [{"type": "terminate"}])
    >>> print(format_metrics_table({"SFT": m}).splitlines()[2])
    | SFT | 100.00 | 100.00 | 33.33 | 1 |
    """
    overall = [
        "| setting | exact acc. | action type acc. | action type F1 | n |",
        "|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        overall.append(f"| {name} | {_pct(m.exact_accuracy)} | {_pct(m.type_accuracy)} | "
                       f"{_pct(m.type_macro_f1)} | {m.n} |")
    header = "| setting | " + " | ".join(f"{t} exact | {t} type" for t in ACTION_TYPES) + " |"
    per_type = [header, "|---|" + "---|---|" * len(ACTION_TYPES)]
    for name, m in rows.items():
        cells = " | ".join(
            f"{_pct(m.per_type[t].exact_accuracy)} | {_pct(m.per_type[t].type_accuracy)}" for t in ACTION_TYPES
        )
        per_type.append(f"| {name} | {cells} |")
    return "\n".join(overall) + "\n\n" + "\n".join(per_type)
