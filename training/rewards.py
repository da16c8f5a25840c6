"""Shop-R1's hierarchical action reward v(a) (Table 1 of the paper), its components, and the binary baseline.

Every reward here is a TRL reward callable, `f(prompts, completions, completion_ids=None, **columns)`, returning one
`float | None` per completion. The gold next action arrives as the dataset column `gold_action` (one per completion:
an action JSON string, a dict, an action model, or a whole step `{"rationale": ..., "action": {...}}`); a row whose
gold is `None` gets `None`, which TRL turns into NaN and leaves out of that function's sum. Completions may be plain
strings or chat messages (`[{"role": "assistant", "content": ...}]`).

The reward of one completion (Shop-R1, Table 1 and sec. 3; constants in `RewardConfig`):

1. **Format.** The output must be one JSON object of the required schema and nothing else (`check_format`): it passes
   `agent.policy.schema.parse_step`, and apart from surrounding whitespace the text is that object. If it does not, the
   *whole* reward is 0. Otherwise +0.5. `format_check="lenient"` accepts prose or code fences around the object.
2. **Type.** +0.3 when the predicted action type equals the gold type. A wrong type ends the scoring there:
   no attribute and no value credit (the hierarchy).
3. **Attribute** (type correct). `click`: +0.2 when a name is given. `type_and_submit`: +0.1 when a name is given,
   +0.1 when a text is given. `terminate`: nothing. "Given" means non-blank.
4. **Value** (type correct). `click`: DARS × R(name). `type_and_submit`: 0.1 × R(name) + DARS × R(text).
   R(x) = ROUGE-L(predicted x, gold x) (token-level F1, `training.rouge.rouge_l`), *gated*: R = ROUGE-L when
   ROUGE-L *exceeds* `rouge_threshold` (0.75), else 0. `rouge_gate="at_least"` credits at `>=` instead.

Decisions where the paper leaves room (documented here once; tests pin them):

- **Threshold `>` (`rouge_gate="exceeds"`, the paper's word).** The boundary is common, not a corner: names split
  into words on `_` and `.`, so a sibling option (`product_options.size.m` vs `product_options.size.l`, 3 of 4 words
  in common: 2·3/8 = 0.75) scores exactly 0.75. At `>=` it would earn 751 of 1,001 for the most common near-miss
  click. `rouge_gate="at_least"` is the earlier `>=` reading; it agrees with the evaluation's exact-match rule for
  typed text (ROUGE-L >= threshold, `training.metrics`), which the paper leaves to us. Under `"exceeds"` a typed text
  at exactly 0.75 counts as exact in the evaluation but earns no value credit.
- **Strict format (`format_check="strict"`).** The paper asks for a single JSON object and nothing else. Whitespace
  around the object is allowed (it carries nothing); prose, code fences or a second object are not.
- **The 0.1 × ROUGE-L(name) term of `type_and_submit` is gated too.** The paper states the threshold for ROUGE-L
  values in general, not per term; gating all ROUGE-L terms keeps one rule. (Its weight is 0.1, so the choice moves
  rewards by at most 0.1.)
- **Credit is the ROUGE-L value itself above the threshold**, not 1: a near miss earns a bit less than an exact one.
- **No DARS on the name term of `type_and_submit`.** Table 1 scales only the text term.
- **`use_format=False`** (the paper's "no format reward" ablation) drops the +0.5; an unparseable output still scores
  0, since there is no action to score.
- **`binary=True`**: the action reward is 1 on an exact match of the whole action (type, and name and text equal after
  `strip()`, case-sensitive), else 0; DARS and ROUGE-L do not enter. The format reward follows `use_format`, as in
  the hierarchical reward: kept (the default) for Table 4's "binary action reward" ablation, which swaps only the
  action reward (reward 0.5 + 1 for a well-formed exact action); `use_format=False` for Table 2's "RL (binary)"
  baseline (reward 1 only on an exact match, else 0; `binary_reward`). An output that fails the format check scores
  0 either way.

Maximum rewards with the paper's constants: terminate 0.5 + 0.3 = 0.8, click 0.5 + 0.3 + 0.2 + 1000 = 1001.0,
type_and_submit 0.5 + 0.3 + 0.1 + 0.1 + 0.1 + 1000 = 1001.1.

>>> gold = '{"type": "click", "name": "search_results.acme_boot.title"}'
>>> out = '{"rationale": "These look right.", "action": {"type": "click", "name": "search_results.acme_boot.title"}}'
>>> shop_r1_reward(None, [out], gold_action=[gold])
[1001.0]
>>> near = out.replace(".title", ".image")  # ROUGE-L 0.8 > 0.75: 0.5 + 0.3 + 0.2 + 1000 * 0.8
>>> [round(r, 6) for r in shop_r1_reward(None, [near, "not json", f"Sure: {out}"], gold_action=[gold] * 3)]
[801.0, 0.0, 0.0]
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Literal, get_args

from agent.policy.schema import ParseError, ShopperStep, parse_step
from envs.actions import ACTION_MODELS, Click, Terminate, TypeAndSubmit, parse_action
from training.rouge import rouge_l

__all__ = [
    "COMPONENTS",
    "FORMAT_CHECKS",
    "PAPER_DARS",
    "PAPER_ROUGE_THRESHOLD",
    "ROUGE_GATES",
    "SAMPLE_SHARES",
    "FormatCheck",
    "RewardBreakdown",
    "RewardComponent",
    "RewardConfig",
    "RougeGate",
    "ShopR1Reward",
    "action_type_reward",
    "attribute_reward",
    "binary_reward",
    "check_format",
    "completion_text",
    "exact_match",
    "format_reward",
    "parse_completion",
    "parse_gold",
    "sample_shares",
    "score_action",
    "score_completion",
    "shop_r1_reward",
    "value_reward",
]

Action = Click | TypeAndSubmit | Terminate
Similarity = Callable[[str, str], float]
COMPONENTS: tuple[str, ...] = ("format", "type", "attribute", "value")
"""The additive parts of the Shop-R1 reward, in Table 1's order; their sum is the reward."""

_PAPER = "Shop-R1 (arXiv 2507.17842)"

PAPER_ROUGE_THRESHOLD: float = 0.75
"""Shop-R1, sec. 3: a ROUGE-L value earns credit when it exceeds a threshold, "e.g. 0.75". The one place this number
is written: the reward, the GRPO config and the evaluation's exact-match rule (`training.metrics`) import it."""

PAPER_DARS: float = 1000.0
"""Shop-R1, sec. 3: the difficulty-aware reward scaling factor on the long-text value terms, default 1000."""

RougeGate = Literal["exceeds", "at_least"]
"""How a ROUGE-L value passes the threshold: `exceeds` is `>` (the paper's word), `at_least` is `>=`."""
ROUGE_GATES: tuple[str, ...] = get_args(RougeGate)

FormatCheck = Literal["strict", "lenient"]
"""`strict`: one JSON object and nothing else (the paper's); `lenient`: the first valid object anywhere in the text."""
FORMAT_CHECKS: tuple[str, ...] = get_args(FormatCheck)


@dataclass(frozen=True)
class RewardConfig:
    """The constants of Shop-R1's action reward. Defaults are the paper's.

    Every departure from the paper's reading is a named option: `rouge_gate="at_least"`, `format_check="lenient"`,
    and the Table 4 ablations `use_format`, `use_dars`, `binary`.

    >>> RewardConfig().dars_factor, RewardConfig(use_dars=False).dars_factor
    (1000.0, 1.0)
    >>> RewardConfig(rouge_threshold=1.5)
    Traceback (most recent call last):
    ...
    ValueError: Expect rouge_threshold in [0, 1], actually: 1.5
    >>> RewardConfig(rouge_gate=">")
    Traceback (most recent call last):
    ...
    ValueError: Expect rouge_gate one of 'exceeds', 'at_least', actually: '>'
    """

    format_reward: float = field(
        default=0.5,
        metadata={"help": f"Reward for an output that is one JSON object of the required schema. {_PAPER}, sec. 3: "
                          "+0.5; an output that fails the format check gets a total reward of 0."},
    )
    type_reward: float = field(
        default=0.3,
        metadata={"help": f"Reward for predicting the gold action type. {_PAPER}, Table 1: +0.3 for every type."},
    )
    click_attr_reward: float = field(
        default=0.2,
        metadata={"help": f"Attribute credit of a correctly typed click that gives a name. {_PAPER}, Table 1: +0.2."},
    )
    type_name_attr_reward: float = field(
        default=0.1,
        metadata={"help": f"Attribute credit of a correctly typed type_and_submit that gives a name. {_PAPER}, "
                          "Table 1: +0.1."},
    )
    type_text_attr_reward: float = field(
        default=0.1,
        metadata={"help": f"Attribute credit of a correctly typed type_and_submit that gives a text. {_PAPER}, "
                          "Table 1: +0.1."},
    )
    type_name_value_weight: float = field(
        default=0.1,
        metadata={"help": f"Weight of ROUGE-L(name) in a type_and_submit's value credit. {_PAPER}, Table 1: "
                          "0.1 × ROUGE-L(name); not scaled by DARS."},
    )
    dars: float = field(
        default=PAPER_DARS,
        metadata={"help": f"Difficulty-aware reward scaling (DARS): the factor on the long-text value terms "
                          f"(click name, typed text). {_PAPER}, sec. 3: default 1000, so that spamming the easy "
                          "terminate stops paying."},
    )
    rouge_threshold: float = field(
        default=PAPER_ROUGE_THRESHOLD,
        metadata={"help": f"A ROUGE-L value earns credit only when it passes this (see rouge_gate). {_PAPER}, "
                          "sec. 3: 'exceeds a threshold, e.g. 0.75'."},
    )
    rouge_gate: RougeGate = field(
        default="exceeds",
        metadata={"help": f"'exceeds': credit when ROUGE-L > rouge_threshold ({_PAPER}, sec. 3: a value earns credit "
                          "when it 'exceeds' the threshold). 'at_least': >=, which pays a sibling option "
                          "(product_options.size.m vs .l, ROUGE-L exactly 0.75) 751 of 1,001.",
                  "choices": list(ROUGE_GATES)},
    )
    format_check: FormatCheck = field(
        default="strict",
        metadata={"help": f"'strict': the output is one JSON object of the required schema and nothing else "
                          f"(whitespace around it aside) ({_PAPER}: 'output a single JSON object and nothing "
                          "else'). 'lenient': the first valid object anywhere passes, prose and code fences around "
                          "it included.",
                  "choices": list(FORMAT_CHECKS)},
    )
    use_format: bool = field(
        default=True,
        metadata={"help": f"Give the format reward, also on top of the binary action reward. False is the 'no format "
                          f"reward' ablation ({_PAPER}, Table 4) and, with binary, Table 2's 'RL (binary)' baseline "
                          "(1 on an exact match, else 0); unparseable outputs still score 0."},
    )
    use_dars: bool = field(
        default=True,
        metadata={"help": f"Scale the value terms by `dars`. False (factor 1) is the 'no DARS' ablation "
                          f"({_PAPER}, Table 4)."},
    )
    binary: bool = field(
        default=False,
        metadata={"help": f"Binary action reward instead of Table 1's: 1 on an exact match of the whole action, else "
                          f"0, plus the format reward when use_format ({_PAPER}, Table 4 'binary action reward'; "
                          "with use_format=False, Table 2 'RL (binary)')."},
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "choices" in f.metadata:
                if value not in f.metadata["choices"]:
                    choices = ", ".join(repr(c) for c in f.metadata["choices"])
                    raise ValueError(f"Expect {f.name} one of {choices}, actually: {value!r}")
                continue
            if f.type in (bool, "bool"):
                if not isinstance(value, bool):
                    raise ValueError(f"Expect {f.name} to be a bool, actually: {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"Expect {f.name} to be a finite number, actually: {value!r}")
            if value < 0:
                raise ValueError(f"Expect {f.name} >= 0, actually: {value!r}")
        if self.dars <= 0:
            raise ValueError(f"Expect dars > 0 (use use_dars=False for the no-DARS ablation), actually: {self.dars!r}")
        if not 0 <= self.rouge_threshold <= 1:
            raise ValueError(f"Expect rouge_threshold in [0, 1], actually: {self.rouge_threshold!r}")
        if self.rouge_gate == "exceeds" and self.rouge_threshold >= 1:
            raise ValueError(f"Expect rouge_threshold < 1 with rouge_gate='exceeds' (no ROUGE-L exceeds 1, not even "
                             f"an exact match's), actually: {self.rouge_threshold!r}; use rouge_gate='at_least'")

    @property
    def dars_factor(self) -> float:
        """The factor on the long-text value terms: `dars`, or 1 when DARS is off."""
        return float(self.dars) if self.use_dars else 1.0


DEFAULT_CONFIG = RewardConfig()


@dataclass(frozen=True, slots=True)
class RewardBreakdown:
    """One completion's reward, by component. `total` is the Shop-R1 reward; `binary` is 1.0 on an exact match of the
    whole action, else 0.0; `binary_total` (format + binary) is the binary action reward.

    >>> RewardBreakdown(format=0.5, type=0.3).total, RewardBreakdown(format=0.5, binary=1.0).binary_total
    (0.8, 1.5)
    """

    format: float = 0.0
    type: float = 0.0
    attribute: float = 0.0
    value: float = 0.0
    binary: float = 0.0

    @property
    def total(self) -> float:
        """format + type + attribute + value."""
        return self.format + self.type + self.attribute + self.value

    @property
    def binary_total(self) -> float:
        """format + binary: the binary action reward (`format` is 0 when the config has `use_format=False`)."""
        return self.format + self.binary

    def get(self, component: str) -> float:
        """A component by name: one of `COMPONENTS`, `"total"`, `"binary"` or `"binary_total"`."""
        return float(getattr(self, component))

    def reward(self, config: RewardConfig) -> float:
        """The reward `config` gives: `binary_total` with `config.binary`, else `total`."""
        return self.binary_total if config.binary else self.total


_ZERO = RewardBreakdown()


# --------------------------------------------------------------------------------------------------------------------
# Inputs


def completion_text(completion: Any) -> Any:
    """The text of a completion: a string as is; for chat messages, the last assistant message's content.

    Content given as parts (`[{"type": "text", "text": ...}]`) is joined. Anything else is returned unchanged, and
    `parse_step` will reject it (the format check fails, the reward is 0).

    >>> completion_text([{"role": "assistant", "content": "{}"}]), completion_text("x")
    ('{}', 'x')
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence) and completion and all(isinstance(m, Mapping) for m in completion):
        messages = [m for m in completion if m.get("role", "assistant") == "assistant"] or list(completion)
        content = messages[-1].get("content")
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
        return content
    return completion


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> ShopperStep | ParseError:
    return parse_step(text)


def _wrapping(text: str) -> str | None:
    """What besides whitespace surrounds the one JSON object of `text`, or None when there is nothing."""
    body = text.strip()
    if not body.startswith("{"):
        return "text before the JSON object"
    if not body.endswith("}"):
        return "text after the JSON object"
    try:
        json.loads(body)
    except ValueError:
        return "more than one JSON value"
    return None


@lru_cache(maxsize=4096)
def _parse_strict(text: str) -> ShopperStep | ParseError:
    step = _parse_text(text)
    if isinstance(step, ParseError):
        return step
    wrapping = _wrapping(text)
    if wrapping is None:
        return step
    return ParseError("invalid_json", f"Expect one JSON object and nothing else (format_check='strict'), actually: "
                                      f"{wrapping}", text[:200])


def check_format(text: Any, format_check: FormatCheck = "strict") -> ShopperStep | ParseError:
    """The format check of the reward on a completion's text: `parse_step`, and under `"strict"` (the paper's) also
    nothing but whitespace around the one JSON object. String results are memoised (4096 entries each).

    >>> step = '{"rationale": "Bye.", "action": {"type": "terminate"}}'
    >>> check_format("  " + step + "  ").action, check_format("```json " + step + " ```", "lenient").action
    (Terminate(type='terminate'), Terminate(type='terminate'))
    >>> check_format("```json " + step + " ```").message
    "Expect one JSON object and nothing else (format_check='strict'), actually: text before the JSON object"
    """
    if format_check not in FORMAT_CHECKS:
        raise ValueError(f"Expect format_check one of {', '.join(map(repr, FORMAT_CHECKS))}, actually: "
                         f"{format_check!r}")
    if not isinstance(text, str):
        return parse_step(text)
    return _parse_strict(text) if format_check == "strict" else _parse_text(text)


def parse_completion(completion: Any, format_check: FormatCheck = "strict") -> ShopperStep | ParseError:
    """`check_format` of the completion's text (string or chat messages), memoised, so the component rewards and the
    combined one parse each completion once between them.

    >>> parse_completion([{"role": "assistant", "content": '{"rationale": "Bye.", "action": {"type": "terminate"}}'}])
    ShopperStep(rationale='Bye.', action=Terminate(type='terminate'))
    """
    return check_format(completion_text(completion), format_check)


@lru_cache(maxsize=4096)
def _parse_gold_json(text: str) -> Action:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"Expect gold_action as action JSON, actually: not JSON ({exc}): {text[:80]!r}") from None
    return parse_gold(data)


def parse_gold(gold: Any) -> Action:
    """The gold action from a dataset value: an action model, a step, a dict or a JSON string of either.

    Keys whose value is `None` are dropped first: a `datasets` struct column fills the fields a row lacks with None
    (`{"type": "terminate", "name": None, "text": None}`). Raises `ValueError` (a data error, not a model error).

    >>> parse_gold({"type": "terminate", "name": None, "text": None})
    Terminate(type='terminate')
    >>> parse_gold('{"rationale": "r", "action": {"type": "click", "name": "nav_bar.homepage"}}').name
    'nav_bar.homepage'
    """
    if isinstance(gold, ACTION_MODELS):
        return gold  # type: ignore[return-value]
    if isinstance(gold, ShopperStep):
        return gold.action
    if isinstance(gold, str):
        return _parse_gold_json(gold)
    if isinstance(gold, Mapping):
        data = {k: v for k, v in gold.items() if v is not None}
        if "type" not in data and isinstance(data.get("action"), Mapping | str):
            return parse_gold(data["action"])
        return parse_action(data)
    raise ValueError(f"Expect gold_action as an action dict or JSON string, actually: {type(gold).__name__}")


# --------------------------------------------------------------------------------------------------------------------
# Scoring one action


def _gated(similarity: float, config: RewardConfig) -> float:
    """ROUGE-L when it passes the threshold (`>` under "exceeds", `>=` under "at_least"), else 0."""
    threshold = config.rouge_threshold
    passes = similarity > threshold if config.rouge_gate == "exceeds" else similarity >= threshold
    return similarity if passes else 0.0


def score_action(
    pred: Action, gold: Action, config: RewardConfig = DEFAULT_CONFIG, *, similarity: Similarity = rouge_l
) -> tuple[float, float, float]:
    """(type, attribute, value) credit of a parsed action against the gold one: Table 1 without the format reward.

    `similarity` is ROUGE-L F1 by default (swappable for tests and benchmarks).

    >>> gold = TypeAndSubmit(name="search_input", text="waterproof hiking boots")
    >>> score_action(TypeAndSubmit(name="search_input", text="waterproof hiking boots"), gold)
    (0.3, 0.2, 1000.1)
    >>> score_action(Click(name="search_input"), gold)
    (0.0, 0.0, 0.0)
    """
    if pred.type != gold.type:
        return 0.0, 0.0, 0.0
    if isinstance(pred, Terminate):
        return config.type_reward, 0.0, 0.0
    dars = config.dars_factor
    if isinstance(pred, Click):
        assert isinstance(gold, Click)
        attribute = config.click_attr_reward if pred.name.strip() else 0.0
        value = dars * _gated(similarity(pred.name, gold.name), config)
        return config.type_reward, attribute, value
    assert isinstance(pred, TypeAndSubmit) and isinstance(gold, TypeAndSubmit)
    attribute = (config.type_name_attr_reward if pred.name.strip() else 0.0) + (
        config.type_text_attr_reward if pred.text.strip() else 0.0
    )
    value = config.type_name_value_weight * _gated(similarity(pred.name, gold.name), config)
    value += dars * _gated(similarity(pred.text, gold.text), config)
    return config.type_reward, attribute, value


def exact_match(pred: Action, gold: Action) -> bool:
    """The binary baseline's criterion: same type, and same name and text after `strip()` (case-sensitive).

    >>> exact_match(Click(name=" a.b "), Click(name="a.b")), exact_match(Click(name="a.B"), Click(name="a.b"))
    (True, False)
    """
    if pred.type != gold.type:
        return False
    if isinstance(pred, Terminate):
        return True
    if pred.name.strip() != gold.name.strip():  # type: ignore[union-attr]
        return False
    return not isinstance(pred, TypeAndSubmit) or pred.text.strip() == gold.text.strip()  # type: ignore[union-attr]


def score_completion(
    completion: Any, gold: Any, config: RewardConfig = DEFAULT_CONFIG, *, similarity: Similarity = rouge_l
) -> RewardBreakdown:
    """The full breakdown of one completion (string or chat messages) against its gold action.

    >>> b = score_completion('{"rationale": "Done.", "action": {"type": "terminate"}}', {"type": "terminate"})
    >>> b.format, b.type, b.attribute, b.value, b.total, b.binary
    (0.5, 0.3, 0.0, 0.0, 0.8, 1.0)
    >>> score_completion('{"action": {"type": "terminate"}}', {"type": "terminate"}).total  # no rationale: format fails
    0.0
    """
    gold_action = parse_gold(gold)
    step = parse_completion(completion, config.format_check)
    if isinstance(step, ParseError):
        return _ZERO
    type_, attribute, value = score_action(step.action, gold_action, config, similarity=similarity)
    return RewardBreakdown(
        format=config.format_reward if config.use_format else 0.0,
        type=type_,
        attribute=attribute,
        value=value,
        binary=1.0 if exact_match(step.action, gold_action) else 0.0,
    )


# --------------------------------------------------------------------------------------------------------------------
# TRL reward callables


def _golds(completions: Sequence[Any], gold_action: Sequence[Any] | None, name: str) -> Sequence[Any]:
    if gold_action is None:
        raise ValueError(f"Expect the dataset column `gold_action` to reach {name}, actually: no such keyword")
    if isinstance(gold_action, str | bytes | Mapping) or len(gold_action) != len(completions):
        got = type(gold_action).__name__ if isinstance(gold_action, str | bytes | Mapping) else len(gold_action)
        raise ValueError(f"Expect one gold_action per completion ({len(completions)}), actually: {got}")
    return gold_action


def _breakdowns(
    completions: Sequence[Any],
    gold_action: Sequence[Any] | None,
    config: RewardConfig,
    name: str,
    similarity: Similarity = rouge_l,
) -> list[RewardBreakdown | None]:
    golds = _golds(completions, gold_action, name)
    out: list[RewardBreakdown | None] = []
    for i, (completion, gold) in enumerate(zip(completions, golds, strict=True)):
        if gold is None:
            out.append(None)
            continue
        try:
            out.append(score_completion(completion, gold, config, similarity=similarity))
        except ValueError as exc:
            raise ValueError(f"{name}: row {i}: {exc}") from None
    return out


def _pick(breakdowns: Iterable[RewardBreakdown | None], component: str) -> list[float | None]:
    return [None if b is None else b.get(component) for b in breakdowns]


def _rewards(breakdowns: Iterable[RewardBreakdown | None], config: RewardConfig) -> list[float | None]:
    return [None if b is None else b.reward(config) for b in breakdowns]


class RewardComponent:
    """One component of the Shop-R1 reward as its own TRL reward callable, with a config. Picklable.

    Passing all four components as `reward_funcs` (weights 1) makes TRL log each one and sum them into the Shop-R1
    reward; every component is 0 for an output that fails the format check.

    >>> value = RewardComponent("value", RewardConfig(use_dars=False))
    >>> value.__name__
    'shop_r1_value'
    """

    def __init__(self, component: str, config: RewardConfig | None = None) -> None:
        if component not in (*COMPONENTS, "binary"):
            raise ValueError(f"Expect component one of {', '.join((*COMPONENTS, 'binary'))}, actually: {component!r}")
        self.component = component
        self.config = config if config is not None else DEFAULT_CONFIG
        self.__name__ = f"shop_r1_{component}"

    def __call__(
        self,
        prompts: Sequence[Any] | None,
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        *,
        gold_action: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if self.component == "format" and gold_action is None:
            fmt = self.config.format_reward if self.config.use_format else 0.0
            check = self.config.format_check
            return [0.0 if isinstance(parse_completion(c, check), ParseError) else fmt for c in completions]
        return _pick(_breakdowns(completions, gold_action, self.config, self.__name__), self.component)

    def __repr__(self) -> str:
        return f"RewardComponent({self.component!r}, {self.config!r})"


SAMPLE_SHARES: tuple[str, ...] = ("format_ok", "pred_terminate", "gold_terminate")
"""What the sampled completions of a batch did, beside their reward (`sample_shares`): the evidence for Table 4's
pathologies, which the reward's components cannot show (with `use_format=False` the format component is 0 whether
or not the output is well-formed)."""


def sample_shares(completions: Sequence[Any], gold_action: Sequence[Any] | None,
                  format_check: FormatCheck = "strict") -> dict[str, float]:
    """Shares of a batch: `format_ok`, completions that pass the reward's format check (whatever `use_format`);
    `pred_terminate`, completions whose action is `terminate` (read leniently, as the evaluation reads actions: a
    terminate in a code fence still counts); `gold_terminate`, gold actions that are `terminate` (the honest rate that
    terminate-spam is measured against). Rows with a `None` gold are left out.

    >>> ok = '{"rationale": "Bye.", "action": {"type": "terminate"}}'
    >>> sample_shares([ok, "```" + ok + "```", "junk", ok], [{"type": "terminate"}, {"type": "click", "name": "a"},
    ...                                                      {"type": "terminate"}, None])
    {'format_ok': 0.3333333333333333, 'pred_terminate': 0.6666666666666666, 'gold_terminate': 0.6666666666666666}
    """
    pairs = [(c, g) for c, g in zip(completions, _golds(completions, gold_action, "sample_shares"), strict=True)
             if g is not None]
    if not pairs:
        return {}
    n = len(pairs)
    strict_ok = sum(not isinstance(parse_completion(c, format_check), ParseError) for c, _ in pairs)
    lenient = [parse_completion(c, "lenient") for c, _ in pairs]
    terminate = sum(isinstance(step, ShopperStep) and step.action.type == "terminate" for step in lenient)
    gold_terminate = sum(parse_gold(g).type == "terminate" for _, g in pairs)
    return {"format_ok": strict_ok / n, "pred_terminate": terminate / n, "gold_terminate": gold_terminate / n}


class ShopR1Reward:
    """The Shop-R1 action reward v(a) (or the binary action reward when `config.binary`) as a TRL reward callable.

    When TRL passes `log_metric` (GRPOTrainer does), the batch means of the components are logged as
    `shop_r1/<component>` (and `shop_r1/binary_exact`), and the batch's `sample_shares` as `shop_r1/format_ok`,
    `shop_r1/pred_terminate` and `shop_r1/gold_terminate`. `similarity` replaces ROUGE-L F1 (a module-level function
    keeps the instance picklable). Picklable.

    >>> reward = ShopR1Reward()
    >>> gold = {"type": "type_and_submit", "name": "search_input", "text": "waterproof hiking boots"}
    >>> out = [{"role": "assistant", "content": '{"rationale": "Search.", "action": {"type": "type_and_submit", '
    ...         '"name": "search_input", "text": "hiking boots"}}'}]
    >>> reward(None, [out], gold_action=[gold])  # ROUGE-L(text) = 0.8: 0.5 + 0.3 + 0.2 + 0.1 + 800
    [801.1]
    >>> {k: v[0] for k, v in reward.components(None, [out], gold_action=[gold]).items()}
    {'format': 0.5, 'type': 0.3, 'attribute': 0.2, 'value': 800.1, 'total': 801.1, 'binary': 0.0}
    """

    def __init__(self, config: RewardConfig | None = None, *, similarity: Similarity = rouge_l) -> None:
        self.config = config if config is not None else DEFAULT_CONFIG
        self.similarity = similarity
        self.__name__ = "shop_r1_binary" if self.config.binary else "shop_r1"

    def __call__(
        self,
        prompts: Sequence[Any] | None,
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        *,
        gold_action: Sequence[Any] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        breakdowns = _breakdowns(completions, gold_action, self.config, self.__name__, self.similarity)
        if log_metric is not None:
            scored = [b for b in breakdowns if b is not None]
            if scored:
                for component in (*COMPONENTS, "binary"):
                    name = "binary_exact" if component == "binary" else component
                    log_metric(f"shop_r1/{name}", sum(b.get(component) for b in scored) / len(scored))
            for name, share in sample_shares(completions, gold_action, self.config.format_check).items():
                log_metric(f"shop_r1/{name}", share)
        return _rewards(breakdowns, self.config)

    def components(
        self,
        prompts: Sequence[Any] | None,
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        *,
        gold_action: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, list[float | None]]:
        """Per-completion values of each component, `total` (the Shop-R1 reward) and `binary`, for logging."""
        breakdowns = _breakdowns(completions, gold_action, self.config, self.__name__, self.similarity)
        return {name: _pick(breakdowns, name) for name in (*COMPONENTS, "total", "binary")}

    def component_funcs(self) -> list[RewardComponent]:
        """The four components as separate reward callables sharing this config (their sum is this reward)."""
        return [RewardComponent(name, self.config) for name in COMPONENTS]

    def __repr__(self) -> str:
        return f"ShopR1Reward({self.config!r})"


def _module_component(component: str) -> RewardComponent:
    return RewardComponent(component, DEFAULT_CONFIG)


def format_reward(
    prompts: Sequence[Any] | None, completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
) -> list[float | None]:
    """+0.5 for an output that passes the format check, else 0 (gold not needed; if given, rows with gold None get
    None). Paper defaults; use `RewardComponent("format", config)` for others.

    >>> format_reward(None, ['{"rationale": "Bye.", "action": {"type": "terminate"}}', '{"type": "terminate"}'])
    [0.5, 0.0]
    """
    return _module_component("format")(prompts, completions, completion_ids, **kwargs)


def action_type_reward(
    prompts: Sequence[Any] | None, completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
) -> list[float | None]:
    """+0.3 when the parsed action's type equals the gold type; 0 when the format check fails.

    >>> action_type_reward(None, ['{"rationale": "Bye.", "action": {"type": "terminate"}}'],
    ...                    gold_action=['{"type": "click", "name": "nav_bar.homepage"}'])
    [0.0]
    """
    return _module_component("type")(prompts, completions, completion_ids, **kwargs)


def attribute_reward(
    prompts: Sequence[Any] | None, completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
) -> list[float | None]:
    """Attribute credit of a correctly typed action: click +0.2 with a name; type_and_submit +0.1 name, +0.1 text.

    >>> attribute_reward(None, ['{"rationale": "Go.", "action": {"type": "click", "name": "x.y"}}'],
    ...                  gold_action=[{"type": "click", "name": "nav_bar.homepage"}])
    [0.2]
    """
    return _module_component("attribute")(prompts, completions, completion_ids, **kwargs)


def value_reward(
    prompts: Sequence[Any] | None, completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
) -> list[float | None]:
    """Value credit of a correctly typed action: DARS × R(name) for click, 0.1 × R(name) + DARS × R(text) for
    type_and_submit, with R the ROUGE-L gated at the threshold.

    >>> value_reward(None, ['{"rationale": "Go.", "action": {"type": "click", "name": "nav_bar.home"}}'],
    ...              gold_action=[{"type": "click", "name": "nav_bar.homepage"}])  # ROUGE-L 2/3 < 0.75
    [0.0]
    """
    return _module_component("value")(prompts, completions, completion_ids, **kwargs)


def shop_r1_reward(
    prompts: Sequence[Any] | None, completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
) -> list[float | None]:
    """The Shop-R1 reward with the paper's constants (`ShopR1Reward()`), as a plain function."""
    return _SHOP_R1(prompts, completions, completion_ids, **kwargs)


def binary_reward(
    prompts: Sequence[Any] | None, completions: Sequence[Any], completion_ids: Any = None, **kwargs: Any
) -> list[float | None]:
    """Table 2's "RL (binary)" baseline: 1.0 on an exact match of the whole action (after `strip()`), else 0.0; no
    format reward (`RewardConfig(binary=True, use_format=False)`). Table 4's "binary action reward" ablation keeps the
    format reward: `ShopR1Reward(RewardConfig(binary=True))`.

    >>> binary_reward(None, ['{"rationale": "Go.", "action": {"type": "click", "name": "nav_bar.homepage "}}'],
    ...               gold_action=[{"type": "click", "name": "nav_bar.homepage"}])
    [1.0]
    """
    return _BINARY(prompts, completions, completion_ids, **kwargs)


_SHOP_R1 = ShopR1Reward(DEFAULT_CONFIG)
_BINARY = ShopR1Reward(RewardConfig(binary=True, use_format=False))
