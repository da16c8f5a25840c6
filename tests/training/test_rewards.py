"""Shop-R1's action reward: one test per row of Table 1, with the expected values computed by hand in the comments."""

from __future__ import annotations

import doctest
import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import training.rewards
from envs.actions import Click, Terminate, TypeAndSubmit
from training.rewards import (
    COMPONENTS,
    PAPER_DARS,
    PAPER_ROUGE_THRESHOLD,
    RewardComponent,
    RewardConfig,
    ShopR1Reward,
    action_type_reward,
    attribute_reward,
    binary_reward,
    format_reward,
    parse_gold,
    sample_shares,
    score_completion,
    shop_r1_reward,
    value_reward,
)


def out(action: dict[str, Any], rationale: str = "I think this is it.") -> str:
    """A completion that passes the format check."""
    return json.dumps({"rationale": rationale, "action": action})


def click(name: str) -> dict[str, str]:
    return {"type": "click", "name": name}


def search(text: str, name: str = "search_input") -> dict[str, str]:
    return {"type": "type_and_submit", "name": name, "text": text}


TERMINATE = {"type": "terminate"}
TITLE = "search_results.acme_boot.title"
QUERY = "waterproof hiking boots"


def reward(pred: dict[str, Any] | str, gold: dict[str, Any], config: RewardConfig | None = None) -> float:
    completion = pred if isinstance(pred, str) else out(pred)
    (value,) = ShopR1Reward(config)(None, [completion], gold_action=[gold])
    assert value is not None
    return value


def parts(pred: dict[str, Any] | str, gold: dict[str, Any], config: RewardConfig | None = None) -> tuple[float, ...]:
    completion = pred if isinstance(pred, str) else out(pred)
    b = score_completion(completion, gold, config or RewardConfig())
    return b.format, b.type, b.attribute, b.value


def test_doctests() -> None:
    assert doctest.testmod(training.rewards).failed == 0


class TestTable1:
    """Paper defaults: format 0.5, type 0.3, click attr 0.2, t&s attrs 0.1 + 0.1, name value 0.1, DARS 1000,
    threshold 0.75 (credit above it, >), strict format."""

    def test_terminate_correct(self) -> None:
        # 0.5 format + 0.3 type, nothing more
        assert parts(TERMINATE, TERMINATE) == (0.5, 0.3, 0.0, 0.0)
        assert reward(TERMINATE, TERMINATE) == pytest.approx(0.8)

    def test_click_exact_name(self) -> None:
        # 0.5 + 0.3 + 0.2 + 1000 * 1.0
        assert parts(click(TITLE), click(TITLE)) == (0.5, 0.3, 0.2, 1000.0)
        assert reward(click(TITLE), click(TITLE)) == pytest.approx(1001.0)

    def test_click_partial_name_above_threshold(self) -> None:
        # [search results acme boot image] vs [... title]: LCS 4, ROUGE-L 8/10 = 0.8 >= 0.75 -> 1000 * 0.8
        assert reward(click("search_results.acme_boot.image"), click(TITLE)) == pytest.approx(0.5 + 0.3 + 0.2 + 800)

    def test_click_partial_name_below_threshold(self) -> None:
        # [nav bar home] vs [nav bar homepage]: ROUGE-L 4/6 = 0.667 < 0.75 -> no value credit
        assert parts(click("nav_bar.home"), click("nav_bar.homepage")) == (0.5, 0.3, 0.2, 0.0)
        assert reward(click("nav_bar.home"), click("nav_bar.homepage")) == pytest.approx(1.0)

    def test_click_wrong_name(self) -> None:
        # type right, a name given, no token in common: 0.5 + 0.3 + 0.2
        assert reward(click("cart.proceed_to_checkout"), click(TITLE)) == pytest.approx(1.0)

    def test_type_and_submit_exact(self) -> None:
        # 0.5 + 0.3 + (0.1 name + 0.1 text) + (0.1 * 1.0 name + 1000 * 1.0 text) = 1001.1
        assert parts(search(QUERY), search(QUERY)) == pytest.approx((0.5, 0.3, 0.2, 1000.1))
        assert reward(search(QUERY), search(QUERY)) == pytest.approx(1001.1)

    def test_type_and_submit_exact_up_to_case_and_punctuation(self) -> None:
        # ROUGE-L tokens are lowercased words: "Waterproof, hiking-boots" == "waterproof hiking boots"
        assert reward(search("Waterproof, hiking-boots"), search(QUERY)) == pytest.approx(1001.1)

    def test_type_and_submit_partial_text_above_threshold(self) -> None:
        # text [hiking boots] vs [waterproof hiking boots]: 2*2/5 = 0.8 -> 800; name exact -> 0.1
        assert reward(search("hiking boots"), search(QUERY)) == pytest.approx(0.5 + 0.3 + 0.2 + 0.1 + 800)

    def test_type_and_submit_partial_text_below_threshold(self) -> None:
        # text [boots] vs [waterproof hiking boots]: 2/4 = 0.5 < 0.75 -> 0; name exact -> 0.1
        assert parts(search("boots"), search(QUERY)) == pytest.approx((0.5, 0.3, 0.2, 0.1))
        assert reward(search("boots"), search(QUERY)) == pytest.approx(1.1)

    def test_type_and_submit_wrong_text(self) -> None:
        assert reward(search("camp stove"), search(QUERY)) == pytest.approx(1.1)

    def test_type_and_submit_wrong_name(self) -> None:
        # name [search box] vs [search input]: 0.5 < 0.75 -> the 0.1 name term is gated to 0; text exact -> 1000
        assert parts(search(QUERY, "search_box"), search(QUERY)) == pytest.approx((0.5, 0.3, 0.2, 1000.0))

    def test_type_and_submit_partial_name_above_threshold(self) -> None:
        # name [site search input] vs [search input]: 2*2/5 = 0.8 -> 0.1 * 0.8 = 0.08
        assert reward(search(QUERY, "site.search_input"), search(QUERY)) == pytest.approx(0.5 + 0.3 + 0.2 + 0.08 + 1000)

    def test_type_and_submit_empty_text(self) -> None:
        # no text given: only the name attribute (0.1); ROUGE-L("", gold) = 0 -> no text credit; name 0.1 * 1.0
        assert parts(search(""), search(QUERY)) == pytest.approx((0.5, 0.3, 0.1, 0.1))
        assert parts(search("   "), search(QUERY)) == pytest.approx((0.5, 0.3, 0.1, 0.1))

    @pytest.mark.parametrize(
        ("pred", "gold"),
        [
            (click(TITLE), TERMINATE),
            (TERMINATE, click(TITLE)),
            (search(QUERY), click(TITLE)),
            (click("search_input"), search(QUERY)),  # the name would match, but the type is wrong
            (TERMINATE, search(QUERY)),
            (search(QUERY), TERMINATE),
        ],
    )
    def test_wrong_type_gets_format_only(self, pred: dict[str, Any], gold: dict[str, Any]) -> None:
        # hierarchical: a wrong type earns no attribute or value credit, only the format reward
        assert parts(pred, gold) == (0.5, 0.0, 0.0, 0.0)
        assert reward(pred, gold) == pytest.approx(0.5)

    @pytest.mark.parametrize(
        "completion",
        [
            "I will click the boots.",  # no JSON
            "",  # empty
            json.dumps({"action": click(TITLE)}),  # no rationale
            json.dumps({"rationale": "  ", "action": click(TITLE)}),  # blank rationale
            json.dumps({"rationale": "Go.", "action": click(TITLE), "confidence": 0.9}),  # extra field
            json.dumps({"rationale": "Go.", "action": {"type": "buy", "name": TITLE}}),  # unknown type
            json.dumps({"rationale": "Go.", "action": {"type": "click"}}),  # missing name
            json.dumps(click(TITLE)),  # a bare action is not a step
            '{"rationale": "Go.", "action": {"type": "click", "name": "' + TITLE + '"}',  # truncated
        ],
    )
    def test_format_failure_zeroes_everything(self, completion: str) -> None:
        # the gold matches what the output meant, but an output that fails the format check scores 0 in total
        assert reward(completion, click(TITLE)) == 0.0
        assert parts(completion, click(TITLE)) == (0.0, 0.0, 0.0, 0.0)
        assert binary_reward(None, [completion], gold_action=[click(TITLE)]) == [0.0]


class TestFormatCheck:
    """`format_check`: "strict" (the paper's: one JSON object and nothing else) or "lenient" (the earlier reading)."""

    LENIENT = RewardConfig(format_check="lenient")
    WRAPPED = [
        "Sure!\n```json\n" + out(click(TITLE)) + "\n```",  # prose and a code fence
        "```json\n" + out(click(TITLE)) + "\n```",  # a code fence alone
        "I will open the boot. " + out(click(TITLE)),  # prose before
        out(click(TITLE)) + " That should do it.",  # prose after
        out(click(TITLE)) + "\n" + out(TERMINATE),  # a second object after the first
    ]

    @pytest.mark.parametrize("completion", WRAPPED)
    def test_wrapped_json_earns_format_only_when_lenient(self, completion: str) -> None:
        # strict: the whole reward is 0; lenient: the first valid object is scored, 0.5 + 0.3 + 0.2 + 1000
        assert reward(completion, click(TITLE)) == 0.0
        assert parts(completion, click(TITLE)) == (0.0, 0.0, 0.0, 0.0)
        assert reward(completion, click(TITLE), self.LENIENT) == pytest.approx(1001.0)
        assert parts(completion, click(TITLE), self.LENIENT)[0] == 0.5
        assert RewardComponent("format")(None, [completion]) == [0.0]  # no gold needed for the format component
        assert RewardComponent("format", self.LENIENT)(None, [completion]) == [0.5]

    @pytest.mark.parametrize("completion", [out(click(TITLE)), "\n  " + out(click(TITLE)) + "\n",
                                            json.dumps({"action": click(TITLE), "rationale": "It is this one."},
                                                       indent=2)])
    def test_bare_json_passes_strict(self, completion: str) -> None:
        # whitespace around (or inside) the one object carries nothing: 0.5 + 0.3 + 0.2 + 1000
        assert reward(completion, click(TITLE)) == pytest.approx(1001.0)
        assert format_reward(None, [completion]) == [0.5]

    def test_strict_failure_says_why(self) -> None:
        from training.rewards import check_format

        error = check_format("Here: " + out(TERMINATE))
        assert error.message == ("Expect one JSON object and nothing else (format_check='strict'), actually: text "
                                 "before the JSON object")
        assert check_format(out(TERMINATE) + " {}").message.endswith("actually: more than one JSON value")
        with pytest.raises(ValueError, match="Expect format_check one of 'strict', 'lenient', actually: 'loose'"):
            check_format(out(TERMINATE), "loose")  # type: ignore[arg-type]

    def test_binary_reward_uses_the_same_check(self) -> None:
        fenced = self.WRAPPED[1]
        assert binary_reward(None, [fenced], gold_action=[click(TITLE)]) == [0.0]
        config = RewardConfig(binary=True, use_format=False, format_check="lenient")
        assert reward(fenced, click(TITLE), config) == 1.0


class TestThreshold:
    """`rouge_gate`: "exceeds" (the paper's: ROUGE-L > threshold) or "at_least" (>=, the earlier reading)."""

    BOUNDARY_PRED, BOUNDARY_GOLD = "waterproof hiking boots men", "waterproof hiking boots women"  # ROUGE-L = 6/8
    AT_LEAST = RewardConfig(rouge_gate="at_least")

    def test_exactly_at_threshold_earns_credit_only_at_least(self) -> None:
        # exceeds: 0.75 > 0.75 is false -> no text credit: 0.5 + 0.3 + 0.2 + 0.1 (name, exact) = 1.1
        assert reward(search(self.BOUNDARY_PRED), search(self.BOUNDARY_GOLD)) == pytest.approx(1.1)
        # at_least: 0.75 >= 0.75 -> 1000 * 0.75 = 750, plus 1.1
        assert reward(search(self.BOUNDARY_PRED), search(self.BOUNDARY_GOLD), self.AT_LEAST) == pytest.approx(751.1)

    @pytest.mark.parametrize(("pred", "gold"), [
        ("product_options.size.m", "product_options.size.l"),
        ("refinements.price.under_50", "refinements.price.under_25"),
    ])
    def test_sibling_option_near_miss(self, pred: str, gold: str) -> None:
        # [product options size m] vs [product options size l]: LCS 3 of 4 and 4 -> 6/8 = 0.75, the threshold itself
        # exceeds: type + attribute only, 0.5 + 0.3 + 0.2 = 1.0; at_least: plus 1000 * 0.75 = 751.0 of 1,001
        assert reward(click(pred), click(gold)) == pytest.approx(1.0)
        assert reward(click(pred), click(gold), self.AT_LEAST) == pytest.approx(751.0)

    def test_above_threshold_earns_credit_under_both(self) -> None:
        # [search results acme boot image] vs [... title]: ROUGE-L 0.8 > 0.75 -> 0.5 + 0.3 + 0.2 + 800
        for config in (RewardConfig(), self.AT_LEAST):
            assert reward(click("search_results.acme_boot.image"), click(TITLE), config) == pytest.approx(801.0)

    def test_just_above_threshold_setting_earns_none(self) -> None:
        config = RewardConfig(rouge_threshold=0.76)
        assert reward(search(self.BOUNDARY_PRED), search(self.BOUNDARY_GOLD), config) == pytest.approx(1.1)

    def test_click_boundary(self) -> None:
        # [product options color navy] vs [product options color black]: LCS 3 of 4 and 4 -> 6/8 = 0.75
        pred, gold = click("product_options.color.navy"), click("product_options.color_black")
        assert reward(pred, gold) == pytest.approx(0.5 + 0.3 + 0.2)
        assert reward(pred, gold, self.AT_LEAST) == pytest.approx(0.5 + 0.3 + 0.2 + 750)

    def test_type_and_submit_name_term_uses_the_same_gate(self) -> None:
        # name [search input box field] vs [search input box bar]: 6/8 = 0.75; text exact -> 1000
        pred, gold = search(QUERY, "search_input.box_field"), search(QUERY, "search_input.box_bar")
        assert reward(pred, gold) == pytest.approx(0.5 + 0.3 + 0.2 + 1000)
        assert reward(pred, gold, self.AT_LEAST) == pytest.approx(0.5 + 0.3 + 0.2 + 1000 + 0.1 * 0.75)

    def test_zero_threshold_credits_any_overlap(self) -> None:
        config = RewardConfig(rouge_threshold=0.0)
        assert reward(click("nav_bar.home"), click("search_results.acme_boot.title"), config) == pytest.approx(1.0)
        # [nav bar home] vs [nav bar homepage] = 2/3
        assert reward(click("nav_bar.home"), click("nav_bar.homepage"), config) == pytest.approx(1.0 + 1000 * 2 / 3)


class TestAblations:
    def test_no_dars(self) -> None:
        config = RewardConfig(use_dars=False)
        # the value terms use factor 1 instead of 1000
        assert reward(click(TITLE), click(TITLE), config) == pytest.approx(0.5 + 0.3 + 0.2 + 1.0)
        assert reward(click("search_results.acme_boot.image"), click(TITLE), config) == pytest.approx(1.8)
        assert reward(search(QUERY), search(QUERY), config) == pytest.approx(0.5 + 0.3 + 0.2 + 0.1 + 1.0)
        assert reward(search("hiking boots"), search(QUERY), config) == pytest.approx(1.1 + 0.8)
        assert reward(TERMINATE, TERMINATE, config) == pytest.approx(0.8)

    def test_custom_dars(self) -> None:
        assert reward(click(TITLE), click(TITLE), RewardConfig(dars=10)) == pytest.approx(11.0)

    def test_no_format_reward(self) -> None:
        config = RewardConfig(use_format=False)
        assert reward(TERMINATE, TERMINATE, config) == pytest.approx(0.3)
        assert reward(click(TITLE), TERMINATE, config) == 0.0
        assert reward("not json", TERMINATE, config) == 0.0

    @pytest.mark.parametrize(
        ("pred", "gold", "expected"),
        [
            (TERMINATE, TERMINATE, 1.0),
            (click(TITLE), click(TITLE), 1.0),
            (click(f"  {TITLE} "), click(TITLE), 1.0),  # stripped
            (click(TITLE.upper()), click(TITLE), 0.0),  # case-sensitive
            (click("search_results.acme_boot.image"), click(TITLE), 0.0),  # ROUGE-L 0.8 is not exact
            (search(QUERY), search(QUERY), 1.0),
            (search(QUERY + " "), search(QUERY), 1.0),
            (search("hiking boots"), search(QUERY), 0.0),
            (search(QUERY, "search_box"), search(QUERY), 0.0),  # the name must match too
            (click(TITLE), TERMINATE, 0.0),
        ],
    )
    def test_binary_baseline(self, pred: dict[str, Any], gold: dict[str, Any], expected: float) -> None:
        # Table 2's "RL (binary)": 1 on an exact match, else 0, no format reward
        assert binary_reward(None, [out(pred)], gold_action=[gold]) == [expected]
        assert reward(pred, gold, RewardConfig(binary=True, use_format=False)) == expected
        # Table 4's "binary action reward": the same action reward, the format reward kept (+0.5)
        assert reward(pred, gold, RewardConfig(binary=True)) == expected + 0.5

    def test_binary_action_row_keeps_format(self) -> None:
        config = RewardConfig(binary=True)  # use_format defaults to True
        assert reward(TERMINATE, TERMINATE, config) == 1.5
        assert reward(click(TITLE), TERMINATE, config) == 0.5  # well-formed, wrong action: the format reward alone
        assert reward("not json", TERMINATE, config) == 0.0
        assert ShopR1Reward(config).components(None, [out(TERMINATE)], gold_action=[TERMINATE])["format"] == [0.5]

    def test_binary_ignores_dars_and_threshold(self) -> None:
        config = RewardConfig(binary=True, use_format=False, use_dars=False, rouge_gate="at_least",
                              rouge_threshold=0.0)
        assert reward(TERMINATE, TERMINATE, config) == 1.0
        assert reward(click("search_results.acme_boot.image"), click(TITLE), config) == 0.0


class TestComponents:
    GOLDS = [click(TITLE), search(QUERY), TERMINATE, click(TITLE), search(QUERY)]
    COMPLETIONS = [
        out(click("search_results.acme_boot.image")),
        [{"role": "assistant", "content": out(search("hiking boots"))}],
        "garbage",
        out(TERMINATE),
        out(search(QUERY, "site.search_input")),
    ]

    def test_component_functions(self) -> None:
        kwargs = {"gold_action": self.GOLDS}
        assert format_reward(None, self.COMPLETIONS, **kwargs) == [0.5, 0.5, 0.0, 0.5, 0.5]
        assert action_type_reward(None, self.COMPLETIONS, **kwargs) == [0.3, 0.3, 0.0, 0.0, 0.3]
        assert attribute_reward(None, self.COMPLETIONS, **kwargs) == pytest.approx([0.2, 0.2, 0.0, 0.0, 0.2])
        assert value_reward(None, self.COMPLETIONS, **kwargs) == pytest.approx([800.0, 800.1, 0.0, 0.0, 1000.08])

    def test_sum_of_components_is_the_reward(self) -> None:
        total = shop_r1_reward(None, self.COMPLETIONS, gold_action=self.GOLDS)
        summed = [sum(v) for v in zip(*(f(None, self.COMPLETIONS, gold_action=self.GOLDS)
                                        for f in ShopR1Reward().component_funcs()), strict=True)]
        assert summed == pytest.approx(total)
        assert total == pytest.approx([801.0, 801.1, 0.0, 0.5, 1001.08])

    def test_components_method(self) -> None:
        comps = ShopR1Reward().components(None, self.COMPLETIONS, gold_action=self.GOLDS)
        assert set(comps) == {*COMPONENTS, "total", "binary"}
        assert comps["total"] == pytest.approx([801.0, 801.1, 0.0, 0.5, 1001.08])
        assert comps["binary"] == [0.0, 0.0, 0.0, 0.0, 0.0]

    def test_format_reward_without_gold(self) -> None:
        assert format_reward(None, self.COMPLETIONS) == [0.5, 0.5, 0.0, 0.5, 0.5]
        assert RewardComponent("format", RewardConfig(use_format=False))(None, self.COMPLETIONS) == [0.0] * 5

    def test_log_metric(self) -> None:
        logged: dict[str, float] = {}
        ShopR1Reward()(None, self.COMPLETIONS, gold_action=self.GOLDS, log_metric=logged.__setitem__,
                       trainer_state=object(), log_extra=lambda *a: None)
        assert set(logged) == {"shop_r1/format", "shop_r1/type", "shop_r1/attribute", "shop_r1/value",
                               "shop_r1/binary_exact", "shop_r1/format_ok", "shop_r1/pred_terminate",
                               "shop_r1/gold_terminate"}
        assert logged["shop_r1/format"] == pytest.approx(0.4)
        assert logged["shop_r1/type"] == pytest.approx(0.18)
        # 4 of 5 well-formed; one sampled terminate (on a click gold); one terminate gold (answered with garbage)
        assert logged["shop_r1/format_ok"] == pytest.approx(0.8)
        assert logged["shop_r1/pred_terminate"] == pytest.approx(0.2)
        assert logged["shop_r1/gold_terminate"] == pytest.approx(0.2)

    def test_without_the_format_reward_the_shares_still_see_the_format(self) -> None:
        """The no-format row's evidence: its format component is 0 by construction, `format_ok` is not."""
        logged: dict[str, float] = {}
        ShopR1Reward(RewardConfig(use_format=False))(None, self.COMPLETIONS, gold_action=self.GOLDS,
                                                     log_metric=logged.__setitem__)
        assert logged["shop_r1/format"] == 0.0 and logged["shop_r1/format_ok"] == pytest.approx(0.8)
        fenced = ["```json\n" + out(TERMINATE) + "\n```"] * 2
        shares = sample_shares(fenced, [TERMINATE, click(TITLE)])
        assert shares == {"format_ok": 0.0, "pred_terminate": 1.0, "gold_terminate": 0.5}
        assert sample_shares(fenced, [TERMINATE, click(TITLE)], "lenient")["format_ok"] == 1.0
        with pytest.raises(ValueError, match="Expect one gold_action per completion"):
            sample_shares(fenced, [TERMINATE])


class TestInputs:
    def test_gold_forms(self) -> None:
        completion = out(click(TITLE))
        golds: list[Any] = [
            click(TITLE),
            json.dumps(click(TITLE)),
            Click(name=TITLE),
            {"rationale": "x", "action": click(TITLE)},
            json.dumps({"rationale": "x", "action": click(TITLE)}),
            {"type": "click", "name": TITLE, "text": None},  # a datasets struct column fills missing fields with None
        ]
        assert shop_r1_reward(None, [completion] * len(golds), gold_action=golds) == [1001.0] * len(golds)

    def test_struct_column_terminate(self) -> None:
        gold = {"type": "terminate", "name": None, "text": None}
        assert parse_gold(gold) == Terminate()
        assert shop_r1_reward(None, [out(TERMINATE)], gold_action=[gold]) == pytest.approx([0.8])

    def test_chat_completions(self) -> None:
        chat = [{"role": "assistant", "content": out(search(QUERY))}]
        parts_content = [{"role": "assistant", "content": [{"type": "text", "text": out(search(QUERY))}]}]
        gold = TypeAndSubmit(name="search_input", text=QUERY)
        assert shop_r1_reward(None, [chat, parts_content], gold_action=[gold, gold]) == pytest.approx([1001.1] * 2)

    def test_none_gold_gives_none(self) -> None:
        result = shop_r1_reward(None, [out(TERMINATE), out(TERMINATE)], gold_action=[None, TERMINATE])
        assert result[0] is None and result[1] == pytest.approx(0.8)
        assert format_reward(None, [out(TERMINATE)], gold_action=[None]) == [None]

    def test_completion_ids_and_extra_columns_are_ignored(self) -> None:
        result = shop_r1_reward(["prompt"], [out(TERMINATE)], [[1, 2, 3]], gold_action=[TERMINATE], session_id=["s"])
        assert result == pytest.approx([0.8])

    def test_missing_gold_column(self) -> None:
        with pytest.raises(ValueError, match="Expect the dataset column `gold_action`"):
            shop_r1_reward(None, [out(TERMINATE)])

    def test_length_mismatch(self) -> None:
        with pytest.raises(ValueError, match=r"Expect one gold_action per completion \(2\), actually: 1"):
            shop_r1_reward(None, [out(TERMINATE)] * 2, gold_action=[TERMINATE])
        with pytest.raises(ValueError, match="actually: str"):
            shop_r1_reward(None, [out(TERMINATE)], gold_action=json.dumps(TERMINATE))

    @pytest.mark.parametrize("gold", [{"type": "buy"}, "not json", 42, {"type": "click"}])
    def test_bad_gold_raises_with_row(self, gold: Any) -> None:
        with pytest.raises(ValueError, match=r"shop_r1: row 1: Expect"):
            shop_r1_reward(None, [out(TERMINATE)] * 2, gold_action=[TERMINATE, gold])


class TestConfig:
    def test_defaults_are_the_papers(self) -> None:
        c = RewardConfig()
        assert (c.format_reward, c.type_reward, c.click_attr_reward) == (0.5, 0.3, 0.2)
        assert (c.type_name_attr_reward, c.type_text_attr_reward, c.type_name_value_weight) == (0.1, 0.1, 0.1)
        assert (c.dars, c.rouge_threshold, c.use_format, c.use_dars, c.binary) == (1000.0, 0.75, True, True, False)
        assert (c.rouge_gate, c.format_check) == ("exceeds", "strict")
        assert (PAPER_DARS, PAPER_ROUGE_THRESHOLD) == (1000.0, 0.75)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"rouge_threshold": 1.5}, "Expect rouge_threshold in [0, 1], actually: 1.5"),
            ({"rouge_threshold": -0.1}, "Expect rouge_threshold >= 0, actually: -0.1"),
            ({"dars": 0}, "Expect dars > 0 (use use_dars=False for the no-DARS ablation), actually: 0"),
            ({"type_reward": -0.3}, "Expect type_reward >= 0, actually: -0.3"),
            ({"format_reward": float("nan")}, "Expect format_reward to be a finite number, actually: nan"),
            ({"dars": "1000"}, "Expect dars to be a finite number, actually: '1000'"),
            ({"use_dars": 0}, "Expect use_dars to be a bool, actually: 0"),
            ({"click_attr_reward": True}, "Expect click_attr_reward to be a finite number, actually: True"),
            ({"rouge_gate": ">="}, "Expect rouge_gate one of 'exceeds', 'at_least', actually: '>='"),
            ({"format_check": "json"}, "Expect format_check one of 'strict', 'lenient', actually: 'json'"),
            ({"rouge_threshold": 1.0}, "Expect rouge_threshold < 1 with rouge_gate='exceeds' (no ROUGE-L exceeds 1, "
                                       "not even an exact match's), actually: 1.0; use rouge_gate='at_least'"),
        ],
    )
    def test_validation(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError) as info:
            RewardConfig(**kwargs)
        assert str(info.value) == message

    def test_full_threshold_needs_at_least(self) -> None:
        config = RewardConfig(rouge_threshold=1.0, rouge_gate="at_least")
        assert reward(click(TITLE), click(TITLE), config) == pytest.approx(1001.0)
        assert reward(click("search_results.acme_boot.image"), click(TITLE), config) == pytest.approx(1.0)

    def test_every_field_has_help_citing_the_paper(self) -> None:
        from dataclasses import fields

        for f in fields(RewardConfig):
            assert "Shop-R1" in f.metadata["help"], f.name

    def test_picklable_with_names(self) -> None:
        for func in (ShopR1Reward(), ShopR1Reward(RewardConfig(binary=True)), RewardComponent("value")):
            clone = pickle.loads(pickle.dumps(func))
            assert clone.__name__ == func.__name__
            assert clone.config == func.config
        assert ShopR1Reward().__name__ == "shop_r1"
        assert ShopR1Reward(RewardConfig(binary=True)).__name__ == "shop_r1_binary"
        assert [f.__name__ for f in ShopR1Reward().component_funcs()] == [
            "shop_r1_format", "shop_r1_type", "shop_r1_attribute", "shop_r1_value"]

    def test_bad_component(self) -> None:
        with pytest.raises(ValueError, match="Expect component one of format, type, attribute, value, binary"):
            RewardComponent("rationale")


WORDS = ["waterproof", "hiking", "boots", "men", "tent", "acme", "navy", "search", "input", "title"]
word_lists = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6)


@st.composite
def actions(draw: st.DrawFn) -> dict[str, str]:
    kind = draw(st.sampled_from(["click", "type_and_submit", "terminate"]))
    if kind == "terminate":
        return TERMINATE
    name = "_".join(draw(word_lists))
    if kind == "click":
        return click(name)
    return search(" ".join(draw(st.lists(st.sampled_from(WORDS), max_size=6))), name)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(actions(), actions())
    def test_components_sum_bounds_and_hierarchy(self, pred: dict[str, str], gold: dict[str, str]) -> None:
        b = score_completion(out(pred), gold)
        assert b.total == pytest.approx(b.format + b.type + b.attribute + b.value)
        assert 0.5 <= b.total <= 1001.1 + 1e-9
        if pred["type"] != gold["type"]:
            assert b.total == 0.5
        if b.binary:  # an exact action earns the maximum (an empty text earns no +0.1 "text given" credit)
            best = {"terminate": 0.8, "click": 1001.0, "type_and_submit": 1001.1 if gold.get("text") else 1001.0}
            assert b.total == pytest.approx(best[gold["type"]])
        assert score_completion(out(pred)[:-1], gold).total == 0.0  # truncated: format fails

    @settings(max_examples=300, deadline=None)
    @given(actions(), actions())
    def test_metric_exact_implies_value_credit_at_least(self, pred: dict[str, str], gold: dict[str, str]) -> None:
        """Under `rouge_gate="at_least"` the reward agrees with the metric's `>=`: an exact action earns its credit."""
        from training.metrics import is_exact

        p, g = parse_gold(pred), parse_gold(gold)
        if is_exact(p, g) and g.type != "terminate":
            b = score_completion(out(pred), gold, RewardConfig(rouge_gate="at_least"))
            assert b.value >= 1000 * 0.75

    @settings(max_examples=300, deadline=None)
    @given(actions(), actions())
    def test_value_credit_needs_rouge_above_threshold(self, pred: dict[str, str], gold: dict[str, str]) -> None:
        """Under the paper's `>`, a value term is paid only when its ROUGE-L is strictly above 0.75."""
        from training.rouge import rouge_l

        if pred["type"] != gold["type"] or gold["type"] == "terminate":
            return
        b = score_completion(out(pred), gold)
        key = "name" if gold["type"] == "click" else "text"
        similarity = rouge_l(pred[key], gold[key])
        assert (b.value >= 1000 * 0.75) == (similarity > 0.75)

    def test_custom_similarity(self) -> None:
        reward = ShopR1Reward(similarity=lambda a, b: 1.0)
        assert reward(None, [out(click("x"))], gold_action=[click(TITLE)]) == pytest.approx([1001.0])
