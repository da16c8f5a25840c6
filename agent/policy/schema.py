"""The policy's output: one JSON object `{"rationale": ..., "action": {...}}`, its JSON Schema, and a tolerant parser.

Strict on the schema (the format reward depends on it), tolerant on the wrapping (code fences, chatter around the
object, several objects). `parse_step` never raises; a failure is a `ParseError` value.

>>> step = parse_step('Sure! ```json\\n{"rationale": "I want boots.", "action": {"type": "terminate"}}\\n``` Done!')
>>> step.action
Terminate(type='terminate')
>>> format_step(step)
'{"rationale": "I want boots.", "action": {"type": "terminate"}}'
>>> parse_step('{"rationale": "Buy it.", "action": {"type": "buy"}}').message
"Expect action.type one of 'click', 'type_and_submit', 'terminate', actually: 'buy'"
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from envs.actions import ACTION_MODELS, ACTION_TYPES, Action, action_to_dict, parse_action

__all__ = [
    "MAX_RATIONALE_LEN",
    "ParseError",
    "ParseErrorKind",
    "ShopperStep",
    "format_action",
    "format_step",
    "page_names",
    "page_names_from_schema",
    "parse_step",
    "response_format",
    "shopper_step_json_schema",
]

MAX_RATIONALE_LEN = 2000
"""Rationales are a sentence or two in the paper; anything near this long is a runaway generation."""

MAX_SCAN_CHARS = 1_000_000
"""Only the first this-many characters of an output are scanned for a JSON object."""

MAX_CANDIDATE_CHARS = 100_000
"""A valid step is at most ~20k characters even with every character escaped; larger objects are not parsed."""

MAX_NESTING = 32
"""A valid step nests 2 deep; deeper candidates are rejected before `json.loads` ever sees them."""

MAX_CANDIDATES = 64
"""At most this many top-level objects are tried, in order."""

EXCERPT_CHARS = 200

ParseErrorKind = Literal["empty", "no_json", "invalid_json", "schema"]


class ShopperStep(BaseModel):
    """One step of a shopper: a short first-person rationale, then the action.

    >>> ShopperStep(rationale="Let me search.", action={"type": "type_and_submit", "name": "q", "text": "tent"})
    ShopperStep(rationale='Let me search.', action=TypeAndSubmit(type='type_and_submit', name='q', text='tent'))
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rationale: str = Field(max_length=MAX_RATIONALE_LEN, description="A short first-person rationale for the action.")
    action: Action

    @field_validator("rationale")
    @classmethod
    def _rationale_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Expect a non-empty rationale, actually: blank")
        return value


@dataclass(frozen=True, slots=True)
class ParseError:
    """Why an output is not a valid step. `kind` is one of `empty`, `no_json`, `invalid_json`, `schema`.

    >>> parse_step("   ").kind
    'empty'
    """

    kind: ParseErrorKind
    message: str
    raw_excerpt: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


# --------------------------------------------------------------------------------------------------------------------
# Formatting


def _dumps(obj: Any) -> str:
    # The one serialisation used everywhere (SFT targets, prompt history): readable separators, unicode kept.
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def format_action(action: Any) -> str:
    """The canonical JSON of an action (`type` first).

    >>> format_action({"type": "click", "name": "nav_bar.homepage"})
    '{"type": "click", "name": "nav_bar.homepage"}'
    """
    return _dumps(action_to_dict(parse_action(action)))


def format_step(step: ShopperStep) -> str:
    """The canonical JSON of a step: the assistant turn of SFT data. `parse_step(format_step(s)) == s`.

    >>> format_step(ShopperStep(rationale="Looks good, I'll open it.", action={"type": "click", "name": "a.b"}))
    '{"rationale": "Looks good, I\\'ll open it.", "action": {"type": "click", "name": "a.b"}}'
    """
    return _dumps({"rationale": step.rationale, "action": action_to_dict(step.action)})


# --------------------------------------------------------------------------------------------------------------------
# JSON Schema


def page_names(elements: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names a step may use on a page: `(clickable, inputs)` from its `envs.observation.ElementRef`s, blank
    names dropped and duplicates kept once, in page order. The local grammar and the served schema both use this.

    >>> from envs.observation import ElementRef
    >>> page_names([ElementRef("search", "input"), ElementRef("cart", "clickable"), ElementRef("cart", "clickable")])
    (('cart',), ('search',))
    """
    clickable = tuple(dict.fromkeys(e.name for e in elements if e.kind == "clickable" and e.name.strip()))
    inputs = tuple(dict.fromkeys(e.name for e in elements if e.kind == "input" and e.name.strip()))
    return clickable, inputs


def _action_branch(model: type[BaseModel], *, lengths: bool, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    raw = model.model_json_schema()
    properties: dict[str, Any] = {}
    for key, prop in raw["properties"].items():
        if key == "type":
            properties[key] = {"type": "string", "enum": [prop["const"]]}
            continue
        out: dict[str, Any] = {"type": "string"}
        if "description" in prop:
            out["description"] = prop["description"]
        if key == "name" and names is not None:
            out["enum"] = list(names)
        elif lengths:
            out.update({k: prop[k] for k in ("minLength", "maxLength") if k in prop})
        properties[key] = out
    summary = (model.__doc__ or "").strip().split("\n\n")[0]
    return {
        "type": "object",
        "description": summary,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def shopper_step_json_schema(*, lengths: bool = False, clickable: tuple[str, ...] | None = None,
                             inputs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A self-contained JSON Schema of a step: no `$ref`, `$defs`, `oneOf`, `const`, `default` or `discriminator`.

    It sits in the subset that both OpenAI strict structured outputs and vLLM's guided decoding backends accept:
    every object lists all its properties as required and forbids others, and the action is an `anyOf` of three
    branches told apart by a one-value `enum` on `type`. Property order (rationale first) is generation order.

    `lengths=True` adds `minLength`/`maxLength` (vLLM honours them and they bound runaway strings; OpenAI strict mode
    rejects them, hence off by default). A non-blank rationale is checked by `parse_step`, not by the schema.

    `clickable` and `inputs` make the schema page-exact: a click's `name` is an `enum` of `clickable`, a
    type_and_submit's an `enum` of `inputs` (see `page_names`), and an empty tuple drops that action's branch (an
    `enum` may not be empty). `None` leaves the name a free string.

    >>> schema = shopper_step_json_schema()
    >>> schema["required"], [b["properties"]["type"]["enum"][0] for b in schema["properties"]["action"]["anyOf"]]
    (['rationale', 'action'], ['click', 'type_and_submit', 'terminate'])
    >>> "$ref" in json.dumps(schema)
    False
    >>> page = shopper_step_json_schema(clickable=("cart", "home"), inputs=())
    >>> [b["properties"].get("name", {}).get("enum") for b in page["properties"]["action"]["anyOf"]]
    [['cart', 'home'], None]
    """
    rationale: dict[str, Any] = {"type": "string", "description": "A short first-person rationale for the action."}
    if lengths:
        rationale.update(minLength=1, maxLength=MAX_RATIONALE_LEN)
    names = {"click": clickable, "type_and_submit": inputs, "terminate": None}
    branches = [_action_branch(model, lengths=lengths, names=names[kind])
                for kind, model in zip(ACTION_TYPES, ACTION_MODELS, strict=True)
                if names[kind] is None or names[kind]]
    return {
        "type": "object",
        "properties": {
            "rationale": rationale,
            "action": {
                "description": "The next action: exactly one of click, type_and_submit, terminate.",
                "anyOf": branches,
            },
        },
        "required": ["rationale", "action"],
        "additionalProperties": False,
    }


def page_names_from_schema(schema: Any) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The inverse of `shopper_step_json_schema` on names: `(clickable, inputs)` as the schema allows them.

    `None` means any name (no `enum`), an empty tuple that the action type is absent. Raises `ValueError` ("Expect
    ..., actually: ...") when the schema is not the step schema's shape, so a server can answer 400.

    >>> page_names_from_schema(shopper_step_json_schema(clickable=("cart",), inputs=()))
    (('cart',), ())
    >>> page_names_from_schema(shopper_step_json_schema())
    (None, None)
    """
    try:
        branches = schema["properties"]["action"]["anyOf"]
    except (KeyError, TypeError):
        raise ValueError("Expect a shopper_step schema with properties.action.anyOf, actually: "
                         f"{_short(schema)}") from None
    if not isinstance(branches, list) or not branches:
        raise ValueError(f"Expect properties.action.anyOf to be a non-empty list, actually: {_short(branches)}")
    found: dict[str, tuple[str, ...] | None] = {}
    for branch in branches:
        try:
            properties = branch["properties"]
            (kind,) = properties["type"]["enum"]
        except (KeyError, TypeError, ValueError):
            raise ValueError("Expect each action branch to have properties.type.enum with one action type, actually: "
                             f"{_short(branch)}") from None
        if kind not in ACTION_TYPES or kind in found:
            raise ValueError(f"Expect each of {', '.join(ACTION_TYPES)} at most once, actually: {kind!r}")
        enum = properties.get("name", {}).get("enum") if isinstance(properties.get("name"), dict) else None
        if enum is not None and (not isinstance(enum, list) or not enum
                                 or not all(isinstance(n, str) and n.strip() for n in enum)):
            raise ValueError(f"Expect the {kind} name enum to be a non-empty list of non-blank strings, actually: "
                             f"{_short(enum)}")
        found[kind] = tuple(dict.fromkeys(enum)) if enum is not None else None
    return found.get("click", ()), found.get("type_and_submit", ())


_SCHEMA_CACHE: dict[bool, dict[str, Any]] = {}


def response_format(*, strict: bool = True, lengths: bool = False, clickable: tuple[str, ...] | None = None,
                    inputs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """`response_format` for the openai client (and vLLM's OpenAI-compatible server). Give the page's `clickable`
    and `inputs` (`page_names`) for a page-exact schema; `shop-r1 serve-policy` enforces either kind.

    >>> rf = response_format()
    >>> rf["type"], rf["json_schema"]["name"], rf["json_schema"]["strict"]
    ('json_schema', 'shopper_step', True)
    """
    if clickable is not None or inputs is not None:
        schema = shopper_step_json_schema(lengths=lengths, clickable=clickable, inputs=inputs)
    else:
        if lengths not in _SCHEMA_CACHE:
            _SCHEMA_CACHE[lengths] = shopper_step_json_schema(lengths=lengths)
        schema = copy.deepcopy(_SCHEMA_CACHE[lengths])
    return {"type": "json_schema", "json_schema": {"name": "shopper_step", "schema": schema, "strict": strict}}


# --------------------------------------------------------------------------------------------------------------------
# Parsing

_TOKEN = re.compile(r'[{}\[\]"\\]')


@dataclass(slots=True)
class _Frame:
    char: str
    start: int
    depth: int = 1  # nesting depth of the value this frame opened, counting itself


def _scan(text: str) -> tuple[list[tuple[int, int, int]], int | None]:
    """Maximal balanced `{...}` spans as (start, end_exclusive, nesting), and the position of the first unclosed `{`.

    One linear pass. Quotes and brackets count only inside an open `{` (outside, they are chatter); inside a string,
    braces are text and a backslash escapes the next character. A stray `{` that never closes does not hide the
    object after it: spans nested in an unclosed brace still count as top-level.
    """
    spans: list[tuple[int, int, int]] = []
    stack: list[_Frame] = []
    open_braces = 0
    in_string = False
    skip_to = -1
    for match in _TOKEN.finditer(text):
        i = match.start()
        if i < skip_to:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                skip_to = i + 2
            elif char == '"':
                in_string = False
            continue
        if char == "{":
            stack.append(_Frame("{", i))
            open_braces += 1
        elif open_braces == 0:
            continue  # quotes, brackets and `}` in chatter
        elif char == '"':
            in_string = True
        elif char == "[":
            stack.append(_Frame("[", i))
        elif char == "]":
            if stack[-1].char == "[":
                _pop_into_parent(stack)
        elif char == "}":
            while stack[-1].char != "{":  # unmatched `[` frames end with their object
                _pop_into_parent(stack)
            frame = stack[-1]
            _pop_into_parent(stack)
            open_braces -= 1
            spans.append((frame.start, i + 1, frame.depth))
    unclosed = next((f.start for f in stack if f.char == "{"), None)
    spans.sort()
    maximal: list[tuple[int, int, int]] = []
    for span in spans:
        if not maximal or span[0] >= maximal[-1][1]:
            maximal.append(span)
    return maximal, unclosed


def _pop_into_parent(stack: list[_Frame]) -> None:
    child = stack.pop()
    if stack:
        stack[-1].depth = max(stack[-1].depth, child.depth + 1)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"Expect each key once, actually: {key!r} repeated")
        out[key] = value
    return out


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # pragma: no cover - repr of JSON values does not fail
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _describe(error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    if len(loc) >= 2 and loc[0] == "action" and loc[1] in ACTION_TYPES:
        loc.pop(1)  # pydantic puts the union tag in the location
    where = ".".join(loc) or "the output"
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    types = ", ".join(repr(t) for t in ACTION_TYPES)
    if kind == "union_tag_invalid":
        tag = value.get("type") if isinstance(value, dict) else ctx.get("tag")
        return f"Expect {where}.type one of {types}, actually: {_short(tag)}"
    if kind == "union_tag_not_found":
        return f"Expect {where}.type one of {types}, actually: no type"
    if kind == "missing":
        return f"Expect field {where}, actually: missing"
    if kind == "extra_forbidden":
        return f"Expect no field {where}, actually: {_short(value)}"
    if kind in ("string_type", "model_type", "model_attributes_type", "dict_type"):
        expected = "a string" if kind == "string_type" else "an object"
        return f"Expect {where} to be {expected}, actually: {_json_type(value)} {_short(value)}"
    if kind == "string_too_long":
        return f"Expect {where} at most {ctx.get('max_length')} characters, actually: {len(value)}"
    if kind == "string_too_short":
        return f"Expect {where} at least {ctx.get('min_length')} character(s), actually: {_short(value)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{where}: {error['msg']}, actually: {_short(value)}"


def _schema_message(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    # Report the action type problem alone: per-field errors of the wrong branch would only confuse.
    tag_errors = [e for e in errors if e["type"] in ("union_tag_invalid", "union_tag_not_found")]
    chosen = (tag_errors + [e for e in errors if e not in tag_errors])[:3]
    return "; ".join(_describe(e) for e in chosen)


def parse_step(text: Any) -> ShopperStep | ParseError:
    """Parse a model output into a `ShopperStep`, or say why not. Never raises.

    The first top-level JSON object that validates wins; objects are found by a balanced-brace scan aware of strings
    and escapes, so code fences and chatter around the object are fine. Inside the object the schema is strict:
    no extra fields, no missing ones, no coercion, no duplicate keys, a non-blank rationale.

    >>> parse_step('{"rationale": "ok", "action": {"type": "click"}}').message
    'Expect field action.name, actually: missing'
    >>> parse_step('{"rationale": "ok", "action": {"type": "click", "name": "x"').kind
    'invalid_json'
    """
    try:
        return _parse_step(text)
    except Exception as exc:  # the contract is "never raises"; this is a last line of defence
        excerpt = text[:EXCERPT_CHARS] if isinstance(text, str) else ""
        return ParseError("invalid_json", f"Expect a parseable output, actually: {type(exc).__name__}", excerpt)


def _parse_step(text: Any) -> ShopperStep | ParseError:
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    if text is None:
        return ParseError("empty", "Expect a JSON object, actually: None", "")
    if not isinstance(text, str):
        return ParseError("no_json", f"Expect a string output, actually: {type(text).__name__}", "")
    excerpt = text[:EXCERPT_CHARS]
    if not text.strip():
        return ParseError("empty", "Expect a JSON object, actually: an empty output", excerpt)

    scanned = text[:MAX_SCAN_CHARS]
    spans, unclosed = _scan(scanned)
    if not spans:
        if unclosed is not None:
            return ParseError(
                "invalid_json",
                f"Expect a complete JSON object, actually: '{{' at character {unclosed} is never closed (truncated?)",
                excerpt,
            )
        expected = 'Expect a JSON object {"rationale": ..., "action": {...}}'
        return ParseError("no_json", f"{expected}, actually: none in the output", excerpt)

    first_schema: str | None = None
    first_invalid: str | None = None
    for start, end, nesting in spans[:MAX_CANDIDATES]:
        if end - start > MAX_CANDIDATE_CHARS:
            first_invalid = first_invalid or (
                f"Expect a JSON object under {MAX_CANDIDATE_CHARS} characters, actually: {end - start}"
            )
            continue
        if nesting > MAX_NESTING:
            first_invalid = first_invalid or f"Expect JSON nested at most {MAX_NESTING} deep, actually: {nesting}"
            continue
        try:
            data = json.loads(scanned[start:end], object_pairs_hook=_no_duplicates)
        except _DuplicateKeyError as exc:
            first_schema = first_schema or str(exc)
            continue
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            first_invalid = first_invalid or f"Expect valid JSON, actually: {reason} in the object at character {start}"
            continue
        try:
            return ShopperStep.model_validate(data)
        except ValidationError as exc:
            first_schema = first_schema or _schema_message(exc)
    if first_schema is not None:
        return ParseError("schema", first_schema, excerpt)
    return ParseError("invalid_json", first_invalid or "Expect valid JSON, actually: none found", excerpt)
