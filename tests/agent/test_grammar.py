"""Grammar-constrained decoding (`agent.policy.grammar`): the automaton, and a random tiny model held inside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_model import cached_tiny_model

from agent.policy.engines import GenerationRequest, LocalEngine
from agent.policy.grammar import ActionGrammar, grammar_for_elements
from agent.policy.schema import ShopperStep, format_step, parse_step
from envs.observation import ElementRef

CLICKABLE = ("nav_bar.homepage", "search_results.acme_boots.title", "search_results.acme_boots_2.title", "a.b",
             "a.b_2")
INPUTS = ("search.products_input",)
GRAMMAR = ActionGrammar(clickable=CLICKABLE, inputs=INPUTS)

# Rationales and texts as a model writes them: any printable unicode, quotes and backslashes, newlines and tabs.
free_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from('"\\\n\t/'), max_size=60)


def steps() -> st.SearchStrategy[ShopperStep]:
    rationale = free_text.filter(lambda s: s.strip()).map(str.rstrip)  # a rationale never ends on a space
    action = st.one_of(
        st.builds(lambda n: {"type": "click", "name": n}, st.sampled_from(CLICKABLE)),
        st.builds(lambda n, t: {"type": "type_and_submit", "name": n, "text": t}, st.sampled_from(INPUTS), free_text),
        st.just({"type": "terminate"}),
    )
    return st.builds(lambda r, a: ShopperStep(rationale=r, action=a), rationale, action)


@given(steps())
@settings(max_examples=300, deadline=None)
def test_every_canonical_step_is_accepted_and_every_prefix_stays_inside(step: ShopperStep) -> None:
    text = format_step(step)
    assert GRAMMAR.accepts(text)
    state = GRAMMAR.start()
    for ch in text:
        state = GRAMMAR.feed(state, ch)
        assert state is not None


@pytest.mark.parametrize("text", [
    '{"rationale": "x", "action": {"type": "click", "name": "nav_bar.home"}}',            # not on the page
    '{"rationale": "x", "action": {"type": "click", "name": "search.products_input"}}',   # an input, not clickable
    '{"rationale": "x", "action": {"type": "type_and_submit", "name": "a.b", "text": "t"}}',  # not an input
    '{"rationale": "  ", "action": {"type": "terminate"}}',                               # blank rationale
    '{"rationale": "x", "action": {"type": "terminate"}}}',                                # trailing junk
    '{"rationale": "x", "action": {"type": "terminate"}',                                 # unclosed
    '{"rationale": "a\nb", "action": {"type": "terminate"}}',                              # raw control character
    '{"rationale": "\\x", "action": {"type": "terminate"}}',                               # bad escape
    '{"rationale":"x","action":{"type":"terminate"}}',                                     # not the canonical form
    '{"action": {"type": "terminate"}, "rationale": "x"}',
])
def test_outputs_outside_the_grammar_are_rejected(text: str) -> None:
    assert not GRAMMAR.accepts(text)


def test_a_quote_after_a_space_opens_a_quotation_instead_of_closing_the_rationale() -> None:
    # the cut seen in the SmolLM2 demo: `I'll look up "` closed the rationale there and the rest became the action
    state = GRAMMAR.feed(GRAMMAR.start(), '{"rationale": "I\'ll look up ')
    assert GRAMMAR.feed(state, '"') is None
    assert GRAMMAR.accepts('{"rationale": "I\'ll look up \\"tents\\".", "action": {"type": "terminate"}}')
    assert GRAMMAR.accepts('{"rationale": "Looks \\"fine\\"", "action": {"type": "terminate"}}')
    # typed text keeps its own rule: a trailing space may close it
    assert GRAMMAR.accepts('{"rationale": "r", "action": {"type": "type_and_submit", '
                           '"name": "search.products_input", "text": "tent "}}')


def test_options_that_prefix_each_other_are_both_reachable() -> None:
    for name in ("a.b", "a.b_2"):
        assert GRAMMAR.accepts(json.dumps({"rationale": "r", "action": {"type": "click", "name": name}},
                                          separators=(", ", ": ")))


def test_a_page_without_inputs_or_clickables_drops_those_action_types() -> None:
    only_click = grammar_for_elements([ElementRef("nav.home", "clickable")])
    assert only_click.accepts('{"rationale": "r", "action": {"type": "click", "name": "nav.home"}}')
    assert not only_click.accepts('{"rationale": "r", "action": {"type": "type_and_submit", "name": "q", "text": ""}}')
    nothing = grammar_for_elements([])
    assert nothing.accepts('{"rationale": "r", "action": {"type": "terminate"}}')
    assert not nothing.accepts('{"rationale": "r", "action": {"type": "click", "name": "nav.home"}}')


def test_unknown_names_allow_any_non_blank_name() -> None:
    free = ActionGrammar()
    assert free.accepts('{"rationale": "r", "action": {"type": "click", "name": "any.thing \\"quoted\\""}}')
    assert not free.accepts('{"rationale": "r", "action": {"type": "click", "name": " "}}')


def test_free_strings_are_bounded() -> None:
    g = ActionGrammar(clickable=CLICKABLE, inputs=INPUTS, max_rationale_chars=5, max_text_chars=3)
    assert g.accepts('{"rationale": "12345", "action": {"type": "terminate"}}')
    assert not g.accepts('{"rationale": "123456", "action": {"type": "terminate"}}')
    assert not g.accepts('{"rationale": "r", "action": {"type": "type_and_submit", '
                         '"name": "search.products_input", "text": "abcd"}}')


# --------------------------------------------------------------------------------------------------------------------
# A random model, held inside the grammar


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> LocalEngine:
    return LocalEngine.from_pretrained(cached_tiny_model(tmp_path_factory), "cpu")


def _prompt(engine: LocalEngine) -> tuple[int, ...]:
    messages = [{"role": "system", "content": "You are a shopper."},
                {"role": "user", "content": "<a name='nav_bar.homepage'>Home</a><input name='search.products_input'/>"}]
    return tuple(engine.encode(engine.chat_prompt(messages)))


@pytest.mark.parametrize("max_new_tokens", [200, GRAMMAR.min_tokens])
def test_a_random_model_always_writes_a_valid_step_with_a_name_from_the_page(engine: LocalEngine,
                                                                             max_new_tokens: int) -> None:
    ids = _prompt(engine)
    requests = [GenerationRequest(ids, max_new_tokens=max_new_tokens, temperature=1.0, seed=s, grammar=GRAMMAR)
                for s in range(12)]
    completions = engine.generate(requests)
    types = set()
    for c in completions:
        assert c.finish_reason == "stop" and c.completion_tokens <= max_new_tokens, c
        step = parse_step(c.text)
        assert isinstance(step, ShopperStep), c.text
        assert GRAMMAR.accepts(c.text)
        types.add(step.action.type)
        if step.action.type == "click":
            assert step.action.name in CLICKABLE
        elif step.action.type == "type_and_submit":
            assert step.action.name in INPUTS
    assert len(types) >= 2
    # the same random model unconstrained: mostly not a step at all (so the grammar is what made them valid)
    raw = engine.generate([GenerationRequest(ids, max_new_tokens=max_new_tokens, temperature=1.0, seed=s)
                           for s in range(12)])
    assert sum(isinstance(parse_step(c.text), ShopperStep) for c in raw) <= 2


def test_constrained_and_unconstrained_rows_share_one_batch(engine: LocalEngine) -> None:
    ids = _prompt(engine)
    out = engine.generate([GenerationRequest(ids, max_new_tokens=80, temperature=1.0, seed=1, grammar=GRAMMAR),
                           GenerationRequest(ids, max_new_tokens=80, temperature=1.0, seed=1)])
    assert GRAMMAR.accepts(out[0].text)
    assert not GRAMMAR.accepts(out[1].text)


def test_the_token_table_is_built_once(engine: LocalEngine, tmp_path: Path) -> None:
    assert engine.token_table is engine.token_table
    table = engine.token_table
    assert all(t and t[0] in table.by_first for t in table.texts if t)
    assert not any('"' in table.texts[i] for i in range(table.vocab_size) if table.plain_len[i] >= 0)
