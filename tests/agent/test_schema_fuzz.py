"""`agent.policy.schema`: the parser never raises, is strict on the schema and tolerant on the wrapping."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.policy.schema import (
    MAX_RATIONALE_LEN,
    ParseError,
    ShopperStep,
    format_step,
    parse_step,
    response_format,
    shopper_step_json_schema,
)
from envs.actions import MAX_NAME_LEN, MAX_TEXT_LEN, Click, Terminate, TypeAndSubmit

VALID_STEPS = [
    ShopperStep(rationale="I'll search for boots.", action=TypeAndSubmit(name="search_input", text="hiking boots")),
    ShopperStep(rationale="This one is in budget.", action=Click(name="search_results.acme_boot.product_title")),
    ShopperStep(rationale="Nothing here fits, I'm leaving.", action=Terminate()),
    ShopperStep(rationale='He said "size 10" — ok 👟 مرحبا', action=Click(name="product_options.size.10")),
    ShopperStep(rationale="Back\\slash {brace} [bracket]\n\"quoted\"", action=TypeAndSubmit(name="q", text="}{")),
]


def check(result: Any, text: Any) -> None:
    """Every result is a step or a well-formed error."""
    assert isinstance(result, ShopperStep | ParseError), type(result)
    if isinstance(result, ParseError):
        assert result.kind in ("empty", "no_json", "invalid_json", "schema")
        assert isinstance(result.message, str) and result.message
        assert isinstance(result.raw_excerpt, str) and len(result.raw_excerpt) <= 200
        if isinstance(text, str):
            assert result.raw_excerpt == text[:200]


# --------------------------------------------------------------------------------------------------------------------
# A seeded generator of malformed outputs


def _valid_dicts() -> list[dict[str, Any]]:
    return [json.loads(format_step(step)) for step in VALID_STEPS]


def _wrong_values() -> list[Any]:
    return [None, 0, 1.5, True, [], ["x"], {}, {"a": 1}, "", "   ", "x" * 10_000]


def _mutations(rng: random.Random) -> Iterator[Any]:
    for base in _valid_dicts():
        # Wrong types for every field.
        for value in _wrong_values():
            yield {**base, "rationale": value}
            yield {**base, "action": value}
            for key in base["action"]:
                if isinstance(value, str) and (key == "text" and len(value) <= MAX_TEXT_LEN or
                                               key == "name" and 1 <= len(value) <= MAX_NAME_LEN):
                    continue  # envs.actions accepts these (blank text, even a blank name)
                yield {**base, "action": {**base["action"], key: value}}
        # Missing fields.
        for key in base:
            yield {k: v for k, v in base.items() if k != key}
        for key in base["action"]:
            yield {**base, "action": {k: v for k, v in base["action"].items() if k != key}}
        # Extra fields.
        yield {**base, "extra": 1}
        yield {**base, "action": {**base["action"], "extra": "x"}}
        yield {**base, "action": {**base["action"], "url": "http://x"}}
        # Wrong action types.
        for kind in ("buy", "Click", "CLICK", "type", "input", "scroll", "", " click"):
            yield {**base, "action": {**base["action"], "type": kind}}
        # Flattened and wrapped forms a weak model produces.
        yield {"rationale": base["rationale"], **base["action"]}
        yield {"response": base}
        yield [base]
        # Random key shuffles of length limits.
        yield {**base, "rationale": "r" * (MAX_RATIONALE_LEN + rng.randint(1, 50))}
        yield {**base, "action": {"type": "click", "name": "n" * (MAX_NAME_LEN + 1)}}
        yield {**base, "action": {"type": "type_and_submit", "name": "q", "text": "t" * (MAX_TEXT_LEN + 1)}}


def malformed_outputs(seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    valid_texts = [format_step(step) for step in VALID_STEPS]

    # Every strict prefix of valid outputs (truncated generations), bare and fenced.
    for text in valid_texts:
        for k in range(len(text)):
            yield text[:k]
        fenced = f"```json\n{text}\n```"
        for k in range(0, len(fenced), 3):
            yield fenced[:k]

    # Schema violations, serialised in several ways.
    for obj in _mutations(rng):
        yield json.dumps(obj)
        yield json.dumps(obj, ensure_ascii=False, indent=rng.choice([None, 2]))

    # Syntax damage: a character deleted, duplicated or replaced at random.
    for _ in range(300):
        text = rng.choice(valid_texts)
        i = rng.randrange(len(text))
        op = rng.choice(["delete", "dup", "replace"])
        if op == "delete":
            yield text[:i] + text[i + 1 :]
        elif op == "dup":
            yield text[:i] + text[i] + text[i:]
        else:
            yield text[:i] + rng.choice('{}[]",:\\ \'x0') + text[i + 1 :]

    # Lenient JSON dialects stay invalid: single quotes, trailing commas, comments, NaN, Python literals.
    yield "{'rationale': 'a', 'action': {'type': 'terminate'}}"
    yield '{"rationale": "a", "action": {"type": "terminate",},}'
    yield '{"rationale": "a", // why\n "action": {"type": "terminate"}}'
    yield '{"rationale": NaN, "action": {"type": "terminate"}}'
    yield '{"rationale": "a", "action": {"type": "terminate"}, "done": True}'
    yield '{"rationale": "a", "rationale": "b", "action": {"type": "terminate"}}'

    # Huge strings, unicode, RTL, control characters.
    yield "x" * 10_000
    yield "{" + "x" * 10_000
    yield json.dumps({"rationale": "é" * 10_000, "action": {"type": "terminate"}})
    yield "\u202e" + valid_texts[0][::-1]
    yield "🙂" * 5_000 + "{"
    yield "\x00\x01\x02{\x00}"
    yield "\ud800{\"rationale\": \"\\ud800\"}"

    # Deeply nested junk.
    for depth in (100, 1_000, 10_000):
        yield "{" * depth
        yield "}" * depth + "{" * depth
        yield "[" * depth + "]" * depth
        yield '{"a": ' + "[" * depth + "]" * depth + "}"
        yield '{"a": ' * depth + "1" + "}" * depth
        yield '{"rationale": "x", "action": ' + '{"type": ' * depth + '"click"' + "}" * depth + "}"
        yield "{" * depth + valid_texts[0]  # a stray unclosed prefix must not hide a valid object...
        yield '{"a": "' + "\\" * depth + '"}'

    # Random bytes, decoded the ways a client might.
    for _ in range(100):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
        yield raw.decode("utf-8", errors="replace")
        yield raw.decode("latin-1")

    # Random printable soup biased towards JSON punctuation.
    alphabet = string.printable + '{{{}}}[[]]"""\\\\:,'
    for _ in range(200):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))

    # Code fences, chatter and several objects.
    for text in valid_texts:
        yield f"```\n{text[:-1]}\n```"
        yield f"Sure! Here is my answer: {text[:-5]}"
        yield '{"rationale": "first", "action": {"type": "fly"}}\n' + text[:-1]
        yield "```json\n{}\n```"


def test_generator_is_big_enough() -> None:
    assert sum(1 for _ in malformed_outputs()) >= 1_000


def test_malformed_outputs_never_raise() -> None:
    kinds: dict[str, int] = {}
    for text in malformed_outputs(seed=0):
        result = parse_step(text)
        check(result, text)
        kinds[getattr(result, "kind", "ok")] = kinds.get(getattr(result, "kind", "ok"), 0) + 1
    assert {"empty", "no_json", "invalid_json", "schema"} <= set(kinds), kinds


def test_truncated_outputs_never_validate() -> None:
    for step in VALID_STEPS:
        text = format_step(step)
        for k in range(len(text)):  # every strict prefix is missing at least the closing brace
            assert isinstance(parse_step(text[:k]), ParseError), text[:k]


def test_schema_violations_are_schema_errors() -> None:
    for obj in _mutations(random.Random(1)):
        if not isinstance(obj, dict):
            continue
        result = parse_step(json.dumps(obj))
        assert isinstance(result, ParseError), obj
        assert result.kind == "schema", (obj, result)


def test_a_stray_brace_does_not_hide_the_object() -> None:
    text = format_step(VALID_STEPS[0])
    assert parse_step("{" * 10_000 + text) == VALID_STEPS[0]
    assert parse_step("I use { for sets. " + text) == VALID_STEPS[0]


# --------------------------------------------------------------------------------------------------------------------
# Tolerant wrapping, exact messages


@pytest.mark.parametrize("step", VALID_STEPS)
@pytest.mark.parametrize(
    "wrap",
    [
        "{}",
        "```json\n{}\n```",
        "```\n{}\n```",
        "Sure! Here is my answer: {} hope that helps",
        "  \n{}\n\n",
        "<think>I should click {{something}}.</think>\n{}",
        '{{"rationale": "draft", "action": {{"type": "buy"}}}}\nActually: {}',
        "{} {}",
        'He said "hi" and left a quote" then {}',
    ],
)
def test_wrapping_is_tolerated(step: ShopperStep, wrap: str) -> None:
    text = format_step(step)
    assert parse_step(wrap.replace("{}", text)) == step


def test_first_valid_object_wins() -> None:
    a, b = VALID_STEPS[0], VALID_STEPS[1]
    assert parse_step(format_step(a) + "\n" + format_step(b)) == a
    assert parse_step('{"x": 1}' + format_step(b)) == b


def test_nested_steps_are_not_unwrapped() -> None:
    """Strict on the schema: a step inside another object is not the answer."""
    result = parse_step(json.dumps({"answer": json.loads(format_step(VALID_STEPS[2]))}))
    assert isinstance(result, ParseError) and result.kind == "schema"
    assert "answer" in result.message
    # Brackets outside any object are text, like chatter: a one-element list is wrapping.
    assert parse_step(f"[{format_step(VALID_STEPS[2])}]") == VALID_STEPS[2]


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("", "empty", "Expect a JSON object, actually: an empty output"),
        (" \n\t", "empty", "empty output"),
        (None, "empty", "None"),
        ("I would click the boots.", "no_json", "actually: none"),
        ('{"rationale": "a", "action": {"type": "click"', "invalid_json", "never closed"),
        ('{"rationale": "a", "action": {"type": "click",}}', "invalid_json", "Expect valid JSON"),
        ('{"rationale": "a", "action": {"type": "buy"}}', "schema",
         "Expect action.type one of 'click', 'type_and_submit', 'terminate', actually: 'buy'"),
        ('{"rationale": "a", "action": {}}', "schema", "actually: no type"),
        ('{"rationale": "a", "action": {"type": "click"}}', "schema", "Expect field action.name, actually: missing"),
        ('{"rationale": "", "action": {"type": "terminate"}}', "schema", "non-empty rationale"),
        ('{"rationale": 5, "action": {"type": "terminate"}}', "schema", "Expect rationale to be a string"),
        ('{"rationale": "a", "action": {"type": "terminate"}, "x": 1}', "schema", "Expect no field x"),
        ('{"rationale": "a", "action": {"type": "terminate", "name": "n"}}', "schema", "Expect no field action.name"),
        ('{"rationale": "a", "action": "terminate"}', "schema", "Expect action to be an object"),
        ('{"action": {"type": "terminate"}}', "schema", "Expect field rationale, actually: missing"),
        ('{"rationale": "a", "rationale": "b", "action": {"type": "terminate"}}', "schema", "'rationale' repeated"),
        ("{" * 50 + "}" * 50, "invalid_json", "nested at most"),
    ],
)
def test_error_kinds_and_messages(text: Any, kind: str, message: str) -> None:
    result = parse_step(text)
    assert isinstance(result, ParseError)
    assert result.kind == kind
    assert message in result.message, result.message


def test_non_string_inputs() -> None:
    assert parse_step(format_step(VALID_STEPS[0]).encode()) == VALID_STEPS[0]
    check(parse_step(12), None)
    check(parse_step(b"\xff\xfe{"), None)


# --------------------------------------------------------------------------------------------------------------------
# Hypothesis


_names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60).filter(lambda s: not s.isspace())
_rationales = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300).filter(str.strip)
_actions = st.one_of(
    st.builds(Click, name=_names),
    st.builds(TypeAndSubmit, name=_names, text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=100)),
    st.just(Terminate()),
)
steps = st.builds(ShopperStep, rationale=_rationales, action=_actions)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(steps)
@_settings
def test_round_trip(step: ShopperStep) -> None:
    text = format_step(step)
    assert parse_step(text) == step
    assert format_step(parse_step(text)) == text  # type: ignore[arg-type]
    assert parse_step(f"```json\n{text}\n```\nDone.") == step


@given(st.text(max_size=2_000))
@_settings
def test_any_text(text: str) -> None:
    check(parse_step(text), text)


@given(st.binary(max_size=2_000))
@_settings
def test_any_bytes(raw: bytes) -> None:
    check(parse_step(raw), None)
    text = raw.decode("utf-8", errors="replace")
    check(parse_step(text), text)


@given(_json, st.text(max_size=50), st.text(max_size=50))
@_settings
def test_any_json_with_chatter(value: Any, before: str, after: str) -> None:
    text = before + json.dumps(value) + after
    check(parse_step(text), text)


@given(steps, st.data())
@_settings
def test_any_prefix_or_cut(step: ShopperStep, data: st.DataObject) -> None:
    text = format_step(step)
    k = data.draw(st.integers(0, len(text) - 1))
    result = parse_step(text[:k])
    assert isinstance(result, ParseError)
    check(result, text[:k])


# --------------------------------------------------------------------------------------------------------------------
# The JSON Schema agrees with the parser


def _validates(schema: dict[str, Any], value: Any) -> bool:
    """A tiny validator for the subset the schema uses."""
    if "anyOf" in schema:
        return any(_validates(branch, value) for branch in schema["anyOf"])
    kind = schema.get("type")
    if kind == "string":
        if not isinstance(value, str):
            return False
        if "enum" in schema and value not in schema["enum"]:
            return False
        return schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
    if kind == "object":
        if not isinstance(value, dict):
            return False
        props = schema["properties"]
        if set(schema["required"]) - set(value):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(props):
            return False
        return all(_validates(props[k], v) for k, v in value.items() if k in props)
    raise AssertionError(f"unexpected schema node {schema}")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("lengths", [False, True])
def test_schema_is_self_contained_and_strict_compatible(lengths: bool) -> None:
    schema = shopper_step_json_schema(lengths=lengths)
    text = json.dumps(schema)
    for banned in ("$ref", "$defs", "oneOf", "const", "default", "discriminator", "title"):
        assert banned not in text, banned
    for node in _walk(schema):
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])  # OpenAI strict: every property required
    assert list(schema["properties"]) == ["rationale", "action"]  # generation order: rationale first
    has_lengths = "maxLength" in text
    assert has_lengths == lengths


@pytest.mark.parametrize("lengths", [False, True])
def test_schema_agrees_with_parser(lengths: bool) -> None:
    schema = shopper_step_json_schema(lengths=lengths)
    for step in VALID_STEPS:
        assert _validates(schema, json.loads(format_step(step)))
    for obj in _mutations(random.Random(2)):
        if not isinstance(obj, dict):
            continue  # brackets around an object are wrapping to the parser (see test_nested_steps_...)
        if _validates(schema, obj):
            # The schema cannot say "non-blank" or (without lengths) bound sizes; the parser can.
            result = parse_step(json.dumps(obj))
            if isinstance(result, ParseError):
                allowed = ["non-empty rationale"] + ([] if lengths else ["characters", "character(s)"])
                assert any(reason in result.message for reason in allowed), result
        else:
            assert isinstance(parse_step(json.dumps(obj)), ParseError), obj


def test_response_format() -> None:
    rf = response_format()
    assert rf == {"type": "json_schema",
                  "json_schema": {"name": "shopper_step", "schema": shopper_step_json_schema(), "strict": True}}
    rf["json_schema"]["schema"]["properties"].clear()  # callers get a copy
    assert response_format()["json_schema"]["schema"]["properties"]
    assert response_format(strict=False)["json_schema"]["strict"] is False
