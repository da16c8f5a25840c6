"""Session traces, schema v1: one JSONL file per session, written append-and-flush so a killed run loses no step.

Layout of a run directory::

    RUN_DIR/run.json                      the run's configuration
    RUN_DIR/summary.json                  the run's numbers (see agent.analysis.summary)
    RUN_DIR/sessions/<session_id>.jsonl   header line, one line per step, end line
    RUN_DIR/screenshots/<session_id>/<step>.png
    RUN_DIR/traces/<session_id>.zip       Playwright trace (optional)

The same records feed the report, replay, the training datasets and evaluation.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from envs.actions import ACTION_TYPES, Action
from envs.observation import ErrorKind as EnvErrorKind

SCHEMA_VERSION = 1
Outcome = Literal["purchase", "terminate", "truncated", "error"]
log = logging.getLogger(__name__)

AgentErrorKind = Literal["parse_error"]
"""The kinds of error the agent records itself. `parse_error`: the policy gave no step, because its output did not
parse as a shopper step (`agent.policy.schema.ParseErrorKind`), its prompt did not fit the model, or the policy server
failed; the step's `error` says which ("unparseable policy output: schema: ...", "...: server: ...")."""

ErrorKind = Literal[EnvErrorKind, AgentErrorKind]
"""Why a step was invalid: one of the env's kinds (`envs.observation.ErrorKind`) or the agent's (`AgentErrorKind`)."""


def _known_action_type(action: dict[str, Any]) -> dict[str, Any]:
    if action.get("type") not in ACTION_TYPES:
        raise ValueError(f"Expect an action whose type is one of {', '.join(ACTION_TYPES)}, actually: "
                         f"{action.get('type')!r}")
    return action


OutOfSchemaAction = Annotated[dict[str, Any], AfterValidator(_known_action_type)]
"""An action of one of the paper's types whose fields the action schema refuses: what a human did that the model
may not (a text longer than `envs.actions.MAX_TEXT_LEN` typed into the recorder, an OPeRA log's over-long text or
element name), or what a hand-made trace holds (a click without a name). It is kept as recorded, not dropped."""

TracedAction = Annotated[Action | OutOfSchemaAction, Field(union_mode="left_to_right")]
"""A recorded action: the paper's action model when it is one, else the dict as recorded (`OutOfSchemaAction`)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SessionHeader(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["session"] = "session"
    schema_: int = Field(default=SCHEMA_VERSION, alias="schema")
    session_id: str
    persona: dict[str, Any]
    intent: dict[str, Any]
    site: str
    policy: str
    started_at: str = Field(default_factory=now_iso)
    backend: str | None = None
    seed: int | None = None


class StepRecord(BaseModel):
    """One decision: what the shopper saw (`observation`, at `url`), thought (`rationale`) and did (`action`).

    `action` is the paper's action model (`envs.actions.Action`) whenever the recorded action is one, so an action the
    env rejected (an unknown name, a click on an input) is a model too; an action of one of the three types that the
    schema refuses stays the dict it was recorded as (`OutOfSchemaAction`: a human's over-long text); None when the
    policy gave no step. Either way it is written as the same JSON object, so traces of every version read back alike.
    `action_dict` is that object. `error_kind` is one of `ErrorKind`; anything else is refused when the record is made.
    """

    model_config = ConfigDict(extra="allow")

    kind: Literal["step"] = "step"
    step: int
    url: str
    title: str = ""
    observation: str
    rationale: str | None
    action: TracedAction | None
    valid: bool
    error: str | None = None
    error_kind: ErrorKind | None = None
    timing_ms: dict[str, float] = Field(default_factory=dict)
    screenshot: str | None = None  # path relative to the run directory
    raw_output: str | None = None
    prompt: dict[str, Any] | None = None  # what the prompt builder dropped or cut to fit the budget
    next_url: str | None = None

    @property
    def action_dict(self) -> dict[str, Any] | None:
        """The action as its JSON object (`type` first for a model), whether a model or a dict; None when absent."""
        if self.action is None or isinstance(self.action, dict):
            return self.action
        return self.action.model_dump()


class EndRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["end"] = "end"
    outcome: Outcome
    steps: int
    error: str | None = None
    ended_at: str = Field(default_factory=now_iso)


class Trace(BaseModel):
    """A session read back from disk. `end` is None for a session cut off mid-run."""

    path: Path | None = None
    header: SessionHeader
    steps: list[StepRecord]
    end: EndRecord | None = None
    torn_lines: int = 0  # unreadable lines skipped (a write cut by kill -9)

    @property
    def session_id(self) -> str:
        return self.header.session_id

    @property
    def outcome(self) -> str:
        return self.end.outcome if self.end else "incomplete"


class TraceWriter:
    """Appends records to `RUN_DIR/sessions/<session_id>.jsonl`, flushing each line to the OS as it is written.

    A `kill -9` of the writing process keeps every line that was written (the page cache survives the process);
    `fsync=True` also survives a power cut, at a cost per step.
    """

    def __init__(self, run_dir: str | Path, session_id: str, fsync: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "sessions" / f"{session_id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.write_ms = 0.0  # time spent writing, for the run's time split
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: SessionHeader | StepRecord | EndRecord) -> None:
        t0 = time.perf_counter()
        line = record.model_dump_json(by_alias=True, exclude_none=False)
        self._f.write(line + "\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self.write_ms += (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


MAX_JSON_DEPTH = 64  # far deeper than any record; a hostile line nested thousands deep would raise RecursionError
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def loads_limited(line: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, refusing (ValueError) a document nested deeper than `max_depth` before parsing it."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", line)):
        depth += 1 if bracket in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > max_depth:
                raise ValueError(f"Expect JSON nested at most {max_depth} deep, actually: deeper")
    return json.loads(line)


def read_trace(path: str | Path) -> Trace:
    """Read one session file. Torn or unreadable lines are skipped and counted; a missing header is an error."""
    path = Path(path)
    header: SessionHeader | None = None
    steps: list[StepRecord] = []
    end: EndRecord | None = None
    torn = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = loads_limited(line)
                kind = obj.get("kind")
                if kind == "session":
                    header = SessionHeader.model_validate(obj)
                elif kind == "step":
                    steps.append(StepRecord.model_validate(obj))
                elif kind == "end":
                    end = EndRecord.model_validate(obj)
                else:
                    raise ValueError(f"unknown kind {kind!r}")
            except (ValueError, ValidationError, AttributeError, RecursionError) as exc:
                torn += 1
                log.warning("%s:%d: skipping an unreadable line (%s)", path, lineno, str(exc).splitlines()[0][:120])
    if header is None:
        raise ValueError(f"{path}: no session header line; is this a shop-r1 trace?")
    if header.schema_ != SCHEMA_VERSION:
        raise ValueError(f"{path}: expected trace schema {SCHEMA_VERSION}, actually: {header.schema_}")
    return Trace(path=path, header=header, steps=steps, end=end, torn_lines=torn)


def iter_traces(run_dir: str | Path) -> Iterator[Trace]:
    """Every session of a run directory, in file-name order."""
    for p in sorted((Path(run_dir) / "sessions").glob("*.jsonl")):
        yield read_trace(p)


def load_run(run_dir: str | Path) -> tuple[list[Trace], list[str]]:
    """Every readable session of a run directory (in file-name order), and a message per unreadable file."""
    sessions = Path(run_dir) / "sessions"
    if not sessions.is_dir():
        raise FileNotFoundError(f"{run_dir} has no sessions/ directory; is it a run directory?")
    traces: list[Trace] = []
    unreadable: list[str] = []
    for path in sorted(sessions.glob("*.jsonl")):
        try:
            traces.append(read_trace(path))
        except (ValueError, ValidationError, OSError, RecursionError) as exc:
            unreadable.append(f"{path.name}: {exc}")
            log.warning("skipping %s (%s)", path, exc)
    return traces, unreadable


def page_of(url: str | None) -> str:
    """The part of a URL that names the page on any host: path and query ('/search?q=x'); '' for None."""
    if not url:
        return ""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
