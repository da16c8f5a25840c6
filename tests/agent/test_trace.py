"""Typed trace records: the action is the paper's action model, `error_kind` one of the known kinds, and traces written
before either was typed still read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from agent.runtime.trace import ErrorKind, SessionHeader, StepRecord, TraceWriter, read_trace
from envs.actions import MAX_TEXT_LEN, Click, Terminate, TypeAndSubmit
from envs.observation import ErrorKind as EnvErrorKind

# Lines as the untyped writer (action: dict, error_kind: str) put them on disk, shortened from a real run.
OLD_HEADER = (
    '{"kind": "session", "schema": 1, "session_id": "s00000", "persona": {"persona_id": "p"}, "intent": {"text": '
    '"running shoes"}, "site": "http://127.0.0.1:40081", "policy": "local", "started_at": '
    '"2026-12-06T16:00:12.000+00:00", "backend": "http", "seed": 7}'
)
OLD_STEP = (
    '{"kind": "step", "step": 1, "url": "http://127.0.0.1:40081/", "title": "Home \\u00b7 ShopR1", "observation": '
    '"<header><a name=\\"header.shopr1_home\\">ShopR1</a></header>", "rationale": "I\'ll search.", "action": '
    '{"type": "click", "name": "search"}, "valid": true, "error": null, "error_kind": null, "timing_ms": {"policy": '
    '32246.6, "env": 537.4}, "screenshot": "screenshots/s00000/000.png", "raw_output": "{\\"rationale\\": ...}", '
    '"prompt": {"dropped": [], "truncated_current": false, "tokens": 1835}, "next_url": '
    '"http://127.0.0.1:40081/search?q=", "recovered": null, "usage": {"prompt_tokens": 1849}}'
)
OLD_REJECTED = (
    '{"kind": "step", "step": 2, "url": "http://127.0.0.1:40081/search?q=", "title": "", "observation": "<main/>", '
    '"rationale": "Open it.", "action": {"type": "click", "name": "nope"}, "valid": false, "error": "no element named '
    '\'nope\'", "error_kind": "unknown_name", "timing_ms": {}, "screenshot": null, "raw_output": null, "prompt": null, '
    '"next_url": "http://127.0.0.1:40081/search?q="}'
)
OLD_UNPARSED = (
    '{"kind": "step", "step": 3, "url": "http://127.0.0.1:40081/search?q=", "title": "", "observation": "<main/>", '
    '"rationale": null, "action": null, "valid": false, "error": "unparseable policy output: no_json: no JSON object",'
    ' "error_kind": "parse_error", "timing_ms": {"policy": 30.0}, "screenshot": null, "raw_output": "hmm", "prompt": '
    'null, "next_url": "http://127.0.0.1:40081/search?q="}'
)
OLD_END = '{"kind": "end", "outcome": "error", "steps": 3, "error": null, "ended_at": "2026-12-06T16:01:00.000+00:00"}'


def _record(**fields) -> StepRecord:
    base = dict(step=1, url="http://shop/", observation="<main/>", rationale=None, action=None, valid=True)
    return StepRecord(**{**base, **fields})


def _written_step(tmp_path: Path, record: StepRecord) -> dict:
    with TraceWriter(tmp_path, "s1") as writer:
        writer.write(record)
    return json.loads(writer.path.read_text())


def test_a_trace_written_before_the_types_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "s00000.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join([OLD_HEADER, OLD_STEP, OLD_REJECTED, OLD_UNPARSED, OLD_END]) + "\n")
    trace = read_trace(path)
    assert trace.torn_lines == 0 and len(trace.steps) == 3, f"Expect 3 readable steps, actually: {trace}"
    first, rejected, unparsed = trace.steps
    assert first.action == Click(name="search") and first.action_dict == {"type": "click", "name": "search"}
    assert rejected.action == Click(name="nope") and rejected.error_kind == "unknown_name"
    assert unparsed.action is None and unparsed.action_dict is None and unparsed.error_kind == "parse_error"
    assert first.model_extra == {"recovered": None, "usage": {"prompt_tokens": 1849}}


def test_an_action_is_written_as_the_same_json_object_it_was_before(tmp_path: Path) -> None:
    old = json.loads(OLD_STEP)
    record = StepRecord.model_validate(old)
    assert isinstance(record.action, Click)
    assert _written_step(tmp_path, record) == old
    assert json.dumps(_written_step(tmp_path / "b", _record(action=TypeAndSubmit(name="q", text="tent"))
                                    )["action"]) == '{"type": "type_and_submit", "name": "q", "text": "tent"}'


@pytest.mark.parametrize("action", [{"type": "terminate"}, Terminate()])
def test_a_dict_or_a_model_becomes_the_model(action) -> None:
    assert _record(action=action).action == Terminate()


def test_an_action_the_schema_refuses_is_kept_as_recorded(tmp_path: Path) -> None:
    long = {"type": "type_and_submit", "name": "search_input", "text": "x" * (MAX_TEXT_LEN + 1)}
    nameless = {"type": "click"}
    for action in (long, nameless):
        record = _record(action=action)
        assert record.action == action and isinstance(record.action, dict)
        assert _written_step(tmp_path / str(len(action)), record)["action"] == action


@pytest.mark.parametrize("action", [{"type": "scroll"}, {"name": "search"}])
def test_an_action_of_no_known_type_is_refused(action) -> None:
    with pytest.raises(ValidationError, match="Expect an action whose type is one of click, type_and_submit, "
                                              "terminate, actually"):
        _record(action=action)


def test_error_kind_takes_the_env_kinds_and_the_agent_kinds() -> None:
    kinds = set(get_args(ErrorKind))
    assert set(get_args(EnvErrorKind)) <= kinds and "parse_error" in kinds
    for kind in sorted(kinds):
        assert _record(valid=False, error_kind=kind).error_kind == kind


def test_an_unknown_error_kind_is_refused_when_the_record_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"error_kind\n  Input should be 'invalid_action', .* or 'parse_error' "
                                              r"\[type=literal_error, input_value='timeout'"):
        _record(valid=False, error_kind="timeout")


def test_a_step_with_an_unknown_error_kind_on_disk_is_skipped_and_counted(tmp_path: Path) -> None:
    with TraceWriter(tmp_path, "s1") as writer:
        writer.write(SessionHeader(session_id="s1", persona={}, intent={}, site="http://shop/", policy="test"))
    with writer.path.open("a") as f:
        f.write(OLD_REJECTED.replace('"unknown_name"', '"timeout"') + "\n")
    trace = read_trace(writer.path)
    assert trace.steps == [] and trace.torn_lines == 1
