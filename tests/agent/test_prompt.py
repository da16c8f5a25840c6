"""`agent.policy.prompt`: system prompt, rendering, the budget rule, purity and the session chat."""

from __future__ import annotations

import copy
import inspect

import pytest

from agent.policy.persona import Intent, Persona, PersonaIntent
from agent.policy.prompt import (
    HistoryItem,
    PromptConfig,
    approx_tokens,
    build_messages,
    build_session_chat,
    compact_system_prompt,
    describe_actions,
    system_prompt,
)
from agent.policy.schema import ShopperStep, format_step, parse_step
from envs.actions import ACTION_MODELS, ActionError, Click, Terminate, TypeAndSubmit

PI = PersonaIntent(
    persona=Persona(persona_id="p7", name="Maya", description="Maya hunts for deals.", budget_sensitivity=0.9,
                    preferred_brands=("Acme",)),
    intent=Intent(text="I need waterproof hiking boots for under $120.", max_price=120, options={"size": "10"},
                  keywords=("secretkeyword",), target_asin="B0SECRET", department="Shoes"),
)


def page(tag: str, size: int = 1000) -> str:
    """A page of exactly `size` characters, recognisable by its tag, with no newlines or '>' to snap to."""
    body = f"<p name='{tag}'"
    return body + "x" * (size - len(body))


HISTORY = [
    HistoryItem("http://shop/", page("home"), TypeAndSubmit(name="search_input", text="hiking boots"),
                "I'll search for boots."),
    HistoryItem("http://shop/search?q=hiking+boots", page("results"), Click(name="results.acme_boot.title"),
                "The Acme pair fits my budget.", error="no element named 'results.acme_boot.title'"),
    HistoryItem("http://shop/search?q=hiking+boots", page("results2"), Click(name="results.acme_boot.product_title"),
                "Let me open the Acme pair."),
]
CURRENT_URL, CURRENT = "http://shop/p/acme-boot", page("product", 2000)
STEPS = [*HISTORY, HistoryItem(CURRENT_URL, CURRENT, Click(name="add_to_cart.buy_now"), "Good price, buying.")]


def chars(text: str) -> int:
    """A fake tokenizer: one token per character."""
    return len(text)


def all_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def build(config: PromptConfig | None = None, history: list[HistoryItem] = HISTORY, pi: PersonaIntent | None = PI):
    return build_messages(pi, history, CURRENT_URL, CURRENT, config or PromptConfig(), count_tokens=chars)


class TestSystemPrompt:
    def test_content(self) -> None:
        text = system_prompt("Trailhead Outfitters")
        assert "Trailhead Outfitters" in text
        for word in ("click", "type_and_submit", "terminate", "JSON", "`name`", "simplified HTML", "first-person",
                     '{"rationale": '):
            assert word in text, word
        assert "the store" in system_prompt()

    def test_actions_come_from_the_docstrings(self) -> None:
        text = describe_actions()
        assert len(text.splitlines()) == len(ACTION_MODELS)
        for model in ACTION_MODELS:
            summary = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0]
            assert " ".join(summary.split()) in text
        for example in ('{"type": "click", "name": ', '{"type": "type_and_submit", ', '{"type": "terminate"}'):
            assert example in text
        assert describe_actions() in system_prompt()

    def test_the_compact_prompt_keeps_the_rules_and_names_no_example_values(self) -> None:
        text = compact_system_prompt("Trailhead Outfitters")
        assert "Trailhead Outfitters" in text and len(text) < len(system_prompt()) / 2
        for word in ("click", "type_and_submit", "terminate", "JSON", "`name`", '{"rationale": '):
            assert word in text, word
        for example in ("waterproof hiking boots", "product_options.color.navy", "sort by price"):
            assert example not in text  # small models copy example values verbatim

    def test_an_unknown_system_prompt_is_refused(self) -> None:
        with pytest.raises(ValueError, match="Expect system 'full' or 'compact'"):
            PromptConfig(system="long")  # type: ignore[arg-type]


class TestRendering:
    def test_layout_multi(self) -> None:
        result = build()
        roles = [m["role"] for m in result.messages]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
        assert result.messages[0]["content"] == compact_system_prompt()  # the default since SmolLM2
        assert build(PromptConfig(system="full")).messages[0]["content"] == system_prompt()
        assert [m["content"] for m in result.messages if m["role"] == "assistant"] == [
            format_step(ShopperStep(rationale=h.rationale or "", action=h.action)) for h in HISTORY
        ]
        first, last = result.messages[1]["content"], result.messages[-1]["content"]
        assert first.startswith("# Who you are\nYou are Maya. Maya hunts for deals.")
        assert "# Current page (step 1)\nURL: http://shop/\n" + HISTORY[0].observation in first
        assert "# Current page (step 4)\nURL: http://shop/p/acme-boot\n" + CURRENT in last
        assert "Who you are" not in last
        assert result.dropped == [] and not result.truncated_current

    def test_persona_intent_block(self) -> None:
        first = build().messages[1]["content"]
        for shown in ("Maya hunts for deals.", "You watch prices closely", "Brands you like: Acme.",
                      "# What you want\nI need waterproof hiking boots for under $120.", "Budget: at most $120.",
                      "Preferences: size: 10."):
            assert shown in first, shown
        text = all_text(build().messages)
        for hidden in ("B0SECRET", "secretkeyword", "Shoes", "p7"):
            assert hidden not in text, hidden
        assert "Who you are" not in all_text(build(pi=None).messages)

    def test_errors_shown_after_the_failed_action(self) -> None:
        multi = build().messages
        assert multi[5]["content"].startswith("Your last action failed: no element named 'results.acme_boot.title'")
        single = build(PromptConfig(layout="single")).messages[1]["content"]
        assert "Action: {\"type\": \"click\", \"name\": \"results.acme_boot.title\"}\n" \
               "Result: the action failed: no element named" in single
        assert single.count("failed") == 1
        assert "failed" not in all_text(build(PromptConfig(include_errors=False)).messages)

    def test_error_of_the_last_action_is_on_the_current_page(self) -> None:
        history = [*HISTORY[:2]]
        for layout in ("multi", "single"):
            for pages in ("all", "latest"):
                messages = build(PromptConfig(layout=layout, history_pages=pages), history=history).messages
                assert all_text(messages).count("the action failed" if (layout, pages) == ("single", "all")
                                                else "Your last action failed") == 1

    def test_layout_single(self) -> None:
        result = build(PromptConfig(layout="single"))
        assert [m["role"] for m in result.messages] == ["system", "user"]
        text = result.messages[1]["content"]
        order = ["# Who you are", "# What you want", "# Your previous steps", "## Step 1", "Rationale: I'll search",
                 'Action: {"type": "type_and_submit", "name": "search_input", "text": "hiking boots"}', "## Step 2",
                 "## Step 3", "# Current page (step 4)", CURRENT, "What do you do next?"]
        positions = [text.index(part) for part in order]
        assert positions == sorted(positions)

    @pytest.mark.parametrize("layout", ["multi", "single"])
    def test_without_rationales(self, layout: str) -> None:
        result = build(PromptConfig(include_rationales=False, layout=layout))
        text = all_text(result.messages[1:])
        for item in HISTORY:
            assert item.rationale and item.rationale not in text
        assert "Rationale:" not in text
        if layout == "multi":
            assistant = [m["content"] for m in result.messages if m["role"] == "assistant"]
            expected = '{"action": {"type": "type_and_submit", "name": "search_input", "text": "hiking boots"}}'
            assert assistant[0] == expected

    def test_missing_rationale_renders_action_only(self) -> None:
        history = [HistoryItem("http://shop/", "<p/>", Terminate())]
        assert build(history=history).messages[2]["content"] == '{"action": {"type": "terminate"}}'

    @pytest.mark.parametrize("layout", ["multi", "single"])
    def test_latest_only(self, layout: str) -> None:
        result = build(PromptConfig(history_pages="latest", layout=layout))
        assert [m["role"] for m in result.messages] == ["system", "user"]
        text = result.messages[1]["content"]
        assert CURRENT in text and "# Who you are" in text and "(step 4)" in text
        for item in HISTORY:
            assert item.observation not in text and (item.rationale or "") not in text
        assert "results.acme_boot" not in text
        assert result.dropped == []

    def test_empty_history(self) -> None:
        result = build(history=[])
        assert [m["role"] for m in result.messages] == ["system", "user"]
        assert "# Current page (step 1)" in result.messages[1]["content"]
        assert result.messages[1]["content"].startswith("# Who you are")

    def test_history_item_parses_actions(self) -> None:
        assert HistoryItem("u", "h", {"type": "click", "name": "a"}).action == Click(name="a")
        assert HistoryItem("u", "h", '{"type": "terminate"}').action == Terminate()
        with pytest.raises(ActionError):
            HistoryItem("u", "h", {"type": "scroll"})

    def test_config_validation(self) -> None:
        with pytest.raises(ValueError, match="max_context_tokens > 0"):
            PromptConfig(max_context_tokens=0)
        with pytest.raises(ValueError, match="history_pages"):
            PromptConfig(history_pages="last")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="layout"):
            PromptConfig(layout="chat")  # type: ignore[arg-type]


class TestBudget:
    @pytest.mark.parametrize("layout", ["multi", "single"])
    def test_token_accounting_is_exact(self, layout: str) -> None:
        def words(text: str) -> int:
            return len(text.split())

        for config in (PromptConfig(layout=layout), PromptConfig(layout=layout, max_context_tokens=300)):
            result = build_messages(PI, HISTORY, CURRENT_URL, CURRENT, config, count_tokens=words)
            assert result.tokens == sum(words(m["content"]) for m in result.messages)
        result = build_messages(PI, HISTORY, CURRENT_URL, CURRENT, PromptConfig(layout=layout))
        assert result.tokens == sum(approx_tokens(m["content"]) for m in result.messages)

    @pytest.mark.parametrize("layout", ["multi", "single"])
    def test_oldest_pages_dropped_first_then_current_cut(self, layout: str) -> None:
        full = build(PromptConfig(layout=layout, max_context_tokens=10**6))
        assert full.dropped == [] and full.tokens == sum(len(m["content"]) for m in full.messages)
        seen = []
        for budget in range(full.tokens, 0, -250):
            result = build(PromptConfig(layout=layout, max_context_tokens=budget))
            text = all_text(result.messages)
            assert result.tokens == sum(len(m["content"]) for m in result.messages)
            assert result.tokens <= budget or result.over_budget
            assert result.dropped == list(range(len(result.dropped)))  # a prefix: oldest first
            if result.truncated_current:
                assert result.dropped == [0, 1, 2]  # the current page is cut only once every old page is gone
            for i, item in enumerate(HISTORY):
                assert (item.observation in text) == (i not in result.dropped)
                assert (f"[page html omitted: {item.url}]" in text) or i not in result.dropped
                assert item.rationale in text  # rationales and actions are always kept
            assert text.count('"type": "click"') + text.count('"type": "type_and_submit"') >= len(HISTORY)
            seen.append((tuple(result.dropped), result.truncated_current))
        assert ((), False) in seen and ((0,), False) in seen and ((0, 1), False) in seen
        assert ((0, 1, 2), False) in seen and ((0, 1, 2), True) in seen

    def test_drops_only_as_many_as_needed(self) -> None:
        full = build(PromptConfig(max_context_tokens=10**6))
        result = build(PromptConfig(max_context_tokens=full.tokens - 1))
        assert result.dropped == [0] and not result.truncated_current
        assert result.tokens == full.tokens - 1000 + len("[page html omitted: http://shop/]")

    def test_current_page_keeps_its_head(self) -> None:
        dropped_all = build(PromptConfig(max_context_tokens=10**6 - 1))  # warm-up, unused
        assert not dropped_all.dropped
        floor = build(PromptConfig(max_context_tokens=1)).tokens  # every page gone, current page emptied
        budget = floor + 700
        result = build(PromptConfig(max_context_tokens=budget))
        assert result.truncated_current and result.dropped == [0, 1, 2]
        last = result.messages[-1]["content"]
        head = last.split("URL: http://shop/p/acme-boot\n", 1)[1].split("\n[... page truncated", 1)[0]
        assert CURRENT.startswith(head) and len(head) > 600
        assert f"first {len(head)} of {len(CURRENT)} characters shown" in last
        assert result.current_shown == pytest.approx(len(head) / len(CURRENT))
        assert budget - 3 <= result.tokens <= budget  # the largest head that fits
        assert build(PromptConfig(max_context_tokens=10**6)).current_shown == 1.0

    def test_cut_prefers_a_tag_boundary(self) -> None:
        html = "".join(f"<li name='item{i}'>Item {i}</li>\n" for i in range(200))
        result = build_messages(None, [], "http://shop/", html, PromptConfig(max_context_tokens=2500), chars)
        assert result.truncated_current
        head = result.messages[-1]["content"].split("URL: http://shop/\n", 1)[1].split("\n[... page truncated")[0]
        assert head.endswith("</li>\n") or head.endswith(">")

    def test_over_budget_is_reported(self) -> None:
        result = build(PromptConfig(max_context_tokens=10))
        assert result.over_budget and result.truncated_current and result.dropped == [0, 1, 2]
        assert "first 0 of 2000 characters shown" in result.messages[-1]["content"]
        assert result.current_shown == 0.0  # the model would see none of the page

    def test_custom_placeholder(self) -> None:
        config = PromptConfig(max_context_tokens=4500, placeholder="<<gone {url} {x}>>")
        text = all_text(build(config).messages)
        assert "<<gone http://shop/ {x}>>" in text


class TestPurity:
    @pytest.mark.parametrize("config", [PromptConfig(), PromptConfig(layout="single", max_context_tokens=2000)])
    def test_same_inputs_same_output_and_no_mutation(self, config: PromptConfig) -> None:
        history = list(HISTORY)
        before = (copy.deepcopy(history), copy.deepcopy(PI), copy.deepcopy(config))
        a = build_messages(PI, history, CURRENT_URL, CURRENT, config, chars)
        b = build_messages(PI, history, CURRENT_URL, CURRENT, config, chars)
        assert a == b and a.messages is not b.messages
        assert (history, PI, config) == before
        a.messages[0]["content"] = "changed"  # results do not share state with later calls
        assert build_messages(PI, history, CURRENT_URL, CURRENT, config, chars) == b


class TestSessionChat:
    def test_alternation_and_targets(self) -> None:
        chat = build_session_chat(PI, STEPS, count_tokens=chars)
        roles = [m["role"] for m in chat.messages]
        assert roles == ["system"] + ["user", "assistant"] * len(STEPS)
        targets = [m["content"] for m in chat.messages if m["role"] == "assistant"]
        assert targets == [format_step(ShopperStep(rationale=s.rationale or "", action=s.action)) for s in STEPS]
        assert all(isinstance(parse_step(t), ShopperStep) for t in targets)
        assert chat.tokens == sum(len(m["content"]) for m in chat.messages)

    def test_prefixes_are_the_inference_prompts(self) -> None:
        chat = build_session_chat(PI, STEPS, count_tokens=chars)
        for t, step in enumerate(STEPS):
            prompt = build_messages(PI, STEPS[:t], step.url, step.observation, count_tokens=chars)
            assert prompt.messages == chat.messages[: 2 + 2 * t]

    def test_budget(self) -> None:
        full = build_session_chat(PI, STEPS, count_tokens=chars)
        cut = build_session_chat(PI, STEPS, PromptConfig(max_context_tokens=full.tokens - 1500), count_tokens=chars)
        assert cut.dropped == [0, 1] and not cut.truncated_current
        tiny = build_session_chat(PI, STEPS, PromptConfig(max_context_tokens=10), count_tokens=chars)
        assert tiny.dropped == [0, 1, 2] and tiny.truncated_current
        assert tiny.messages[-1]["content"] == full.messages[-1]["content"]  # the target is never cut

    def test_argument_errors(self) -> None:
        with pytest.raises(ValueError, match="at least one step"):
            build_session_chat(PI, [])
        with pytest.raises(ValueError, match="history_pages='all'"):
            build_session_chat(PI, STEPS, PromptConfig(history_pages="latest"))
        no_rationale = [*STEPS[:2], HistoryItem("u", "h", Terminate())]
        with pytest.raises(ValueError, match=r"none on steps \[2\]"):
            build_session_chat(PI, no_rationale)
        chat = build_session_chat(PI, no_rationale, PromptConfig(include_rationales=False))
        assert chat.messages[-1]["content"] == '{"action": {"type": "terminate"}}'

    def test_single_layout_config_is_ignored(self) -> None:
        a = build_session_chat(PI, STEPS, PromptConfig(layout="single"), count_tokens=chars)
        assert a == build_session_chat(PI, STEPS, count_tokens=chars)


@pytest.mark.parametrize("layout", ["multi", "single"])
def test_no_persona_is_the_papers_context_pages_and_actions_only(layout):
    """persona=False: no persona and no intent block anywhere (Shop-R1's context); the rest is unchanged."""
    shown = build(PromptConfig(layout=layout))
    hidden = build(PromptConfig(layout=layout, persona=False))
    for fragment in ("# Who you are", "Maya", "# What you want", PI.intent.text, "Budget: at most $120"):
        assert fragment in all_text(shown.messages), fragment
        assert fragment not in all_text(hidden.messages), fragment
    assert [m["role"] for m in hidden.messages] == [m["role"] for m in shown.messages]
    assert CURRENT in hidden.messages[-1]["content"] and "add_to_cart" not in all_text(hidden.messages)
    assert all(h.action.type in all_text(hidden.messages) for h in HISTORY)
    chat = build_session_chat(PI, STEPS, PromptConfig(persona=False), count_tokens=chars)
    assert "# What you want" not in all_text(chat.messages) and "Good price, buying." in chat.messages[-1]["content"]
    with pytest.raises(ValueError, match="Expect persona True or False, actually: 'no'"):
        PromptConfig(persona="no")  # type: ignore[arg-type]
