"""Hand-built traces for the summary, report and replay tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.runtime.trace import EndRecord, ErrorKind, SessionHeader, StepRecord, TraceWriter

ORIGIN = "http://127.0.0.1:8000"


def step(n: int, url: str, action: dict[str, Any] | None, *, next_url: str | None = None, valid: bool = True,
         title: str = "", rationale: str | None = "I look around.", error_kind: ErrorKind | None = None,
         timing: dict[str, float] | None = None, **extra: Any) -> StepRecord:
    """A step record; `url`/`next_url` given as paths get the test origin."""
    def full(u: str | None) -> str | None:
        return ORIGIN + u if u and u.startswith("/") else u

    return StepRecord(
        step=n, url=full(url) or "", title=title, observation=f"<main>page {url}</main>", rationale=rationale,
        action=action, valid=valid, error=None if valid else f"failed: {error_kind}", error_kind=error_kind,
        timing_ms=timing if timing is not None else {"policy": 10.0, "env": 20.0, "env_navigation": 15.0},
        next_url=full(next_url), **extra,
    )


def write_session(run_dir: Path, session_id: str, steps: list[StepRecord], outcome: str | None, *,
                  final_url: str | None = None, trace_ms: float | None = 1.0, policy: str = "test",
                  end_extra: dict[str, Any] | None = None, persona: dict[str, Any] | None = None,
                  intent: dict[str, Any] | None = None) -> Path:
    """Write one session file; `outcome=None` leaves the end line out (a cut-off session)."""
    with TraceWriter(run_dir, session_id) as w:
        w.write(SessionHeader(session_id=session_id, persona=persona or {"persona_id": "p", "name": "Pat"},
                              intent=intent or {"text": "I need running shoes."}, site=ORIGIN + "/", policy=policy))
        for s in steps:
            w.write(s)
        if outcome is not None:
            extra: dict[str, Any] = dict(end_extra or {})
            if final_url is not None:
                extra["final_url"] = ORIGIN + final_url if final_url.startswith("/") else final_url
            if trace_ms is not None:
                extra["trace_ms"] = trace_ms
            w.write(EndRecord(outcome=outcome, steps=len(steps), **extra))
    return w.path


SEARCH = {"type": "type_and_submit", "name": "search.products_input", "text": "running shoes"}
OPEN = {"type": "click", "name": "search_results.acme_trail.title"}
BUY = {"type": "click", "name": "acme_trail.buy_now"}
PLACE = {"type": "click", "name": "place_order"}
TERMINATE = {"type": "terminate"}


def buyer(run_dir: Path, session_id: str = "s00000", **header: Any) -> Path:
    """Search, open a product, buy now, place the order: a purchase in 4 steps."""
    return write_session(run_dir, session_id, [
        step(1, "/", SEARCH, next_url="/search?q=running+shoes", title="Home"),
        step(2, "/search?q=running+shoes", OPEN, next_url="/product/B0X?from=%2Fsearch", title="Results"),
        step(3, "/product/B0X?from=%2Fsearch", BUY, next_url="/checkout", title="Acme Trail"),
        step(4, "/checkout", PLACE, next_url="/order/20260101-ABC", title="Checkout"),
    ], "purchase", final_url="/order/20260101-ABC", trace_ms=2.0, **header)


def browser_then_leave(run_dir: Path, session_id: str = "s00001", **header: Any) -> Path:
    """Search twice, one invalid click, an unparseable output, then terminate."""
    return write_session(run_dir, session_id, [
        step(1, "/", SEARCH, next_url="/search?q=running+shoes"),
        step(2, "/search?q=running+shoes", {"type": "click", "name": "nope"}, next_url="/search?q=running+shoes",
             valid=False, error_kind="unknown_name"),
        step(3, "/search?q=running+shoes", None, next_url="/search?q=running+shoes", valid=False,
             error_kind="parse_error", timing={"policy": 30.0}),
        step(4, "/search?q=running+shoes", {**SEARCH, "text": "trail shoes"}, next_url="/search?q=trail+shoes"),
        step(5, "/search?q=trail+shoes", TERMINATE, next_url="/search?q=trail+shoes"),
    ], "terminate", final_url="/search?q=trail+shoes", trace_ms=3.0, **header)
