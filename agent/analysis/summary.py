"""A run's numbers, computed from its traces: outcomes, steps, actions, errors, time split and the shopping funnel.

Everything here is a pure function of the trace records (`agent.runtime.trace`), so the numbers can be recomputed from
any run directory at any time. `write_summary` stores them as `RUN_DIR/summary.json`.

Definitions:

- **Rates** are fractions of sessions. A session without an end line (a killed run) counts as `incomplete`.
- **Steps per session** counts step lines, parse failures included.
- **Action types**: counts per action `type` over all steps, unparseable outputs in their own `unparseable` bucket;
  the fractions are over the steps with a parsed action, and `unparseable_rate` is over all steps.
- **Invalid-action rate**: steps with `valid` false (parse failures included) over all steps.
- **Time split**: mean milliseconds per step in the policy (`timing_ms.policy`), in the env (`timing_ms.env`, with
  its `env_*` parts) and writing the trace (the end lines' `trace_ms` summed, over those sessions' steps).
- **Funnel**: the fraction of sessions that reached each stage, each stage on its own (a shopper may buy a featured
  product without ever searching). Stages come from the URLs a session visited (each step's `url` and `next_url`,
  and the end's `final_url`, matched on path and query) and its action names; see `FunnelConfig`.
- **Searches**: valid `type_and_submit` steps whose resulting page is a search page (refinement clicks are not
  searches; a department link reaches the search stage but is not a search).
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator
from rich.console import Console
from rich.table import Table

from agent.runtime.trace import Trace, load_run, page_of
from envs.actions import ACTION_TYPES

__all__ = [
    "Distribution",
    "FunnelConfig",
    "FunnelStage",
    "RunSummary",
    "TimeSplit",
    "format_summary",
    "session_searches",
    "session_stages",
    "summarize",
    "write_summary",
]

log = logging.getLogger(__name__)

OUTCOMES = ("purchase", "terminate", "truncated", "error", "incomplete")
UNPARSEABLE = "unparseable"
STAGES = ("search", "product", "add_to_cart", "purchase")
STAGE_LABELS = {"search": "Search results", "product": "Product page", "add_to_cart": "Add to cart",
                "purchase": "Purchase"}


class FunnelConfig(BaseModel):
    """How funnel stages are recognised. Regexes are searched (`re.search`) in a URL's path and query, or in an
    action's `name`. The defaults fit our store (`sites/store`)."""

    model_config = ConfigDict(frozen=True)

    search_url: str = Field(r"^/search(?:[/?#]|$)", description="A search-results page.")
    product_url: str = Field(r"^/product/", description="A product page.")
    add_to_cart_action: str = Field(r"add_to_cart|buy_now", description="The name of a (valid) add-to-cart click.")
    cart_url: str = Field(r"^/(?:cart|checkout)(?:[/?#]|$)", description="Visiting it also counts as add-to-cart.")

    @field_validator("search_url", "product_url", "add_to_cart_action", "cart_url")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"Expect a regular expression, actually: {value!r} ({exc})") from None
        return value


class Distribution(BaseModel):
    """Summary statistics of a list of numbers (None when the list is empty)."""

    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        xs = sorted(values)
        if not xs:
            return cls()
        return cls(mean=math.fsum(xs) / len(xs), median=quantile(xs, 0.5), p90=quantile(xs, 0.9), min=xs[0],
                   max=xs[-1])


class TimeSplit(BaseModel):
    """Mean milliseconds per step, by where the time went."""

    policy_ms: float | None = None
    env_ms: float | None = None
    trace_ms: float | None = None
    env_parts_ms: dict[str, float] = Field(default_factory=dict, description="Means of the env's `env_*` timings.")
    steps_timed: int = 0


class FunnelStage(BaseModel):
    stage: str
    label: str
    sessions: int
    fraction: float | None


class RunSummary(BaseModel):
    """The numbers of one run (see the module docstring for definitions)."""

    sessions: int
    complete: int = Field(description="Sessions with an end line.")
    torn_lines: int = 0
    outcomes: dict[str, int]
    purchase_rate: float | None
    terminate_rate: float | None
    truncated_rate: float | None
    error_rate: float | None
    total_steps: int
    steps_per_session: Distribution
    action_types: dict[str, int]
    action_type_fractions: dict[str, float]
    unparseable_rate: float | None
    invalid_steps: int
    invalid_rate: float | None
    error_kinds: dict[str, int]
    timing: TimeSplit
    funnel: list[FunnelStage]
    searches: int
    searches_per_session: float | None
    policies: dict[str, int] = Field(default_factory=dict)


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default, 'linear')."""
    if not sorted_values:
        raise ValueError("Expect at least one value, actually: none")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _visited(trace: Trace) -> list[str]:
    urls = []
    for step in trace.steps:
        urls.append(step.url)
        if step.next_url:
            urls.append(step.next_url)
    final = getattr(trace.end, "final_url", None) if trace.end else None
    if isinstance(final, str):
        urls.append(final)
    return [page_of(u) for u in urls]


def session_stages(trace: Trace, config: FunnelConfig | None = None) -> set[str]:
    """The funnel stages one session reached."""
    cfg = config or FunnelConfig()
    pages = _visited(trace)
    reached: set[str] = set()
    if any(re.search(cfg.search_url, p) for p in pages):
        reached.add("search")
    if any(re.search(cfg.product_url, p) for p in pages):
        reached.add("product")
    carted = any(re.search(cfg.cart_url, p) for p in pages) or any(
        s.valid and (action := s.action_dict) and isinstance(action.get("name"), str)
        and re.search(cfg.add_to_cart_action, action["name"])
        for s in trace.steps
    )
    if carted:
        reached.add("add_to_cart")
    if trace.outcome == "purchase":
        reached.add("purchase")
    return reached


def session_searches(trace: Trace, config: FunnelConfig | None = None) -> int:
    """How many searches a session typed: valid `type_and_submit` steps that led to a search-results page."""
    cfg = config or FunnelConfig()
    n = 0
    for i, step in enumerate(trace.steps):
        if not (step.valid and (action := step.action_dict) and action.get("type") == "type_and_submit"):
            continue
        landed = step.next_url or (trace.steps[i + 1].url if i + 1 < len(trace.steps) else None)
        if re.search(cfg.search_url, page_of(landed)):
            n += 1
    return n


def _action_type(action: dict | None) -> str:
    if action is None:
        return UNPARSEABLE
    kind = action.get("type")
    return kind if isinstance(kind, str) else UNPARSEABLE


def _ordered(counts: Counter[str], first: Iterable[str], last: Iterable[str] = ()) -> dict[str, int]:
    first, last = list(first), list(last)
    middle = sorted(k for k in counts if k not in first and k not in last)
    return {k: counts[k] for k in [*first, *middle, *last] if counts.get(k)}


def summarize(traces: Iterable[Trace], config: FunnelConfig | None = None) -> RunSummary:
    """Compute a run's numbers from its traces."""
    cfg = config or FunnelConfig()
    outcomes: Counter[str] = Counter()
    steps_per: list[int] = []
    actions: Counter[str] = Counter()
    error_kinds: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    policies: Counter[str] = Counter()
    policy_ms: list[float] = []
    env_ms: list[float] = []
    env_parts: dict[str, list[float]] = {}
    trace_ms, trace_steps = 0.0, 0
    invalid = searches = torn = complete = 0
    n = 0
    for trace in traces:
        n += 1
        torn += trace.torn_lines
        outcomes[trace.outcome] += 1
        policies[trace.header.policy] += 1
        complete += trace.end is not None
        steps_per.append(len(trace.steps))
        for step in trace.steps:
            actions[_action_type(step.action_dict)] += 1
            if not step.valid:
                invalid += 1
            if step.error_kind:
                error_kinds[step.error_kind] += 1
            t = step.timing_ms
            if "policy" in t:
                policy_ms.append(t["policy"])
            if "env" in t:
                env_ms.append(t["env"])
            for key, value in t.items():
                if key.startswith("env_"):
                    env_parts.setdefault(key[4:], []).append(value)
        written = getattr(trace.end, "trace_ms", None) if trace.end else None
        if isinstance(written, int | float):
            trace_ms += written
            trace_steps += len(trace.steps)
        stages.update(session_stages(trace, cfg))
        searches += session_searches(trace, cfg)
    total_steps = sum(steps_per)
    parsed = total_steps - actions.get(UNPARSEABLE, 0)

    def mean(xs: list[float]) -> float | None:
        return math.fsum(xs) / len(xs) if xs else None

    return RunSummary(
        sessions=n,
        complete=complete,
        torn_lines=torn,
        outcomes={o: outcomes.get(o, 0) for o in OUTCOMES} | {o: c for o, c in outcomes.items() if o not in OUTCOMES},
        purchase_rate=_ratio(outcomes["purchase"], n),
        terminate_rate=_ratio(outcomes["terminate"], n),
        truncated_rate=_ratio(outcomes["truncated"], n),
        error_rate=_ratio(outcomes["error"], n),
        total_steps=total_steps,
        steps_per_session=Distribution.of(steps_per),
        action_types=_ordered(actions, ACTION_TYPES, (UNPARSEABLE,)),
        action_type_fractions={k: c / parsed for k, c in _ordered(actions, ACTION_TYPES).items()
                               if k != UNPARSEABLE} if parsed else {},
        unparseable_rate=_ratio(actions.get(UNPARSEABLE, 0), total_steps),
        invalid_steps=invalid,
        invalid_rate=_ratio(invalid, total_steps),
        error_kinds=dict(error_kinds.most_common()),
        timing=TimeSplit(
            policy_ms=mean(policy_ms), env_ms=mean(env_ms),
            trace_ms=trace_ms / trace_steps if trace_steps else None,
            env_parts_ms={k: m for k, v in sorted(env_parts.items()) if (m := mean(v)) is not None},
            steps_timed=max(len(policy_ms), len(env_ms)),
        ),
        funnel=[FunnelStage(stage=s, label=STAGE_LABELS[s], sessions=stages.get(s, 0), fraction=_ratio(stages[s], n))
                for s in STAGES],
        searches=searches,
        searches_per_session=_ratio(searches, n),
        policies=dict(policies.most_common()),
    )


def write_summary(run_dir: str | Path, config: FunnelConfig | None = None) -> RunSummary:
    """Summarize every readable session of `run_dir` and write `RUN_DIR/summary.json` (unreadable files are logged
    and left out)."""
    run_dir = Path(run_dir)
    traces, _ = load_run(run_dir)
    summary = summarize(traces, config)
    out = run_dir / "summary.json"
    out.write_text(json.dumps(summary.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s (%d sessions)", out, summary.sessions)
    return summary


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_summary(summary: RunSummary, width: int = 100) -> str:
    """The summary as plain-text tables (rendered with rich, without colour codes) for the terminal."""
    s = summary
    overview = Table(title="Run summary", show_header=False, title_justify="left")
    overview.add_column("metric")
    overview.add_column("value", justify="right")
    overview.add_row("sessions", f"{s.sessions} ({s.complete} complete)")
    for outcome, count in s.outcomes.items():
        overview.add_row(f"  {outcome}", f"{count} ({_pct(_ratio(count, s.sessions))})")
    dist = s.steps_per_session
    overview.add_row("steps / session (mean, median, p90)",
                     f"{_num(dist.mean)}, {_num(dist.median)}, {_num(dist.p90)}")
    overview.add_row("invalid-action rate", f"{_pct(s.invalid_rate)} ({s.invalid_steps}/{s.total_steps})")
    overview.add_row("searches / session", _num(s.searches_per_session, 2))
    t = s.timing
    overview.add_row("ms / step: policy, env, trace", f"{_num(t.policy_ms)}, {_num(t.env_ms)}, {_num(t.trace_ms, 2)}")
    if s.torn_lines:
        overview.add_row("unreadable trace lines", str(s.torn_lines))

    funnel = Table(title="Funnel (sessions reaching each stage)", title_justify="left")
    funnel.add_column("stage")
    funnel.add_column("sessions", justify="right")
    funnel.add_column("share", justify="right")
    for stage in s.funnel:
        funnel.add_row(stage.label, str(stage.sessions), _pct(stage.fraction))

    acts = Table(title="Actions", title_justify="left")
    acts.add_column("type")
    acts.add_column("steps", justify="right")
    acts.add_column("share", justify="right")
    for kind, count in s.action_types.items():
        share = _pct(s.unparseable_rate) + " of all" if kind == UNPARSEABLE else _pct(s.action_type_fractions.get(kind))
        acts.add_row(kind, str(count), share)

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False)
    console.print(overview)
    console.print(funnel)
    console.print(acts)
    if s.error_kinds:
        errors = Table(title="Error kinds", title_justify="left")
        errors.add_column("kind")
        errors.add_column("steps", justify="right")
        for kind, count in s.error_kinds.items():
            errors.add_row(kind, str(count))
        console.print(errors)
    return buf.getvalue()
