"""The session runner's watchdog: one env call that hangs ends that session as `error` with the reason, never the run.

The env's own timeout (`timeout_s`) is set far above the watchdog, so the env call really hangs on a loopback server
that never answers until the watchdog ends it; that is the case the watchdog exists for: something hanging despite
the env's timeouts. The default limit is `3 * timeout_s + 30`; the tests set `step_watchdog_s` so they take seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from agent.policy.base import Policy, PolicyRequest, PolicyResponse
from agent.policy.schema import ShopperStep
from agent.runtime.session import RunConfig, run_sessions
from agent.runtime.trace import iter_traces
from agent.wiring import sample_from_catalog

LONG_TIMEOUT_S = 60.0  # the env's own bound, never reached here
WATCHDOG_S = 2.0


class OneHangs(Policy):
    """Session `hung` clicks the link whose server never answers; every other session clicks `plain`, then stops."""

    name = "one-hangs"

    def __init__(self, hung: str) -> None:
        self.hung = hung

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        out = []
        for r in requests:
            if r.step == 0:
                action = {"type": "click", "name": "never" if r.session_id == self.hung else "plain"}
            else:
                action = {"type": "terminate"}
            out.append(PolicyResponse(step=ShopperStep(rationale="Testing the watchdog.", action=action)))
        return out


def test_default_watchdog_is_3_timeouts_plus_30():
    assert RunConfig(site="http://127.0.0.1:9/", timeout_s=5).watchdog_s == 45
    assert RunConfig(site="http://127.0.0.1:9/", timeout_s=5, step_watchdog_s=2).watchdog_s == 2


def test_a_hung_step_ends_its_session_as_error_and_the_run_goes_on(hostile, store_db, tmp_path):
    items = sample_from_catalog(store_db, 4, seed=0)
    config = RunConfig(site=hostile.url + "/", backend="http", concurrency=2, timeout_s=LONG_TIMEOUT_S,
                       step_watchdog_s=WATCHDOG_S, max_steps=5)
    t0 = time.perf_counter()
    results = asyncio.run(run_sessions(tmp_path, OneHangs("s00001"), items, config, progress=False))
    took = time.perf_counter() - t0
    assert took < WATCHDOG_S + 8, f"Expect the watchdog to end the hung step, actually the run took {took:.1f}s"
    assert any(h == "/never" for h in hostile.hits), "Expect the hung session to have reached the server"

    by_id = {r.session_id: r for r in results}
    assert sorted(by_id) == ["s00000", "s00001", "s00002", "s00003"]
    hung = by_id.pop("s00001")
    assert hung.outcome == "error" and hung.steps == 0
    assert hung.error == f"watchdog: step 1 did not finish within {WATCHDOG_S:g}s"
    for r in by_id.values():  # the others, run beside it and after it, finish normally
        assert (r.outcome, r.steps, r.error) == ("terminate", 2, None), r

    traces = {t.session_id: t for t in iter_traces(tmp_path)}
    assert sorted(traces) == ["s00000", "s00001", "s00002", "s00003"]
    end = traces["s00001"].end
    assert end is not None and end.outcome == "error" and end.steps == 0 and traces["s00001"].steps == []
    assert end.error == f"watchdog: step 1 did not finish within {WATCHDOG_S:g}s"
    for sid in ("s00000", "s00002", "s00003"):
        trace = traces[sid]
        assert trace.end is not None and trace.end.outcome == "terminate" and trace.end.error is None
        assert [s.valid for s in trace.steps] == [True, True]
        assert trace.steps[0].next_url == hostile.url + "/plain"


def test_a_hung_reset_ends_its_session_as_error(hostile, store_db, tmp_path):
    items = sample_from_catalog(store_db, 2, seed=0)
    config = RunConfig(site=hostile.url + "/never", backend="http", concurrency=2, timeout_s=LONG_TIMEOUT_S,
                       step_watchdog_s=WATCHDOG_S)
    t0 = time.perf_counter()
    results = asyncio.run(run_sessions(tmp_path, OneHangs(""), items, config, progress=False))
    assert time.perf_counter() - t0 < WATCHDOG_S + 8
    reason = f"watchdog: reset() did not finish within {WATCHDOG_S:g}s"
    assert [(r.outcome, r.steps, r.error) for r in results] == [("error", 0, reason)] * 2
    for trace in iter_traces(tmp_path):
        assert trace.end is not None and (trace.end.outcome, trace.end.error) == ("error", reason)
