"""How often a policy's steps are usable on a live site: parseable (the output is a step) and valid (the env took it).

`measure_step_validity` runs seeded sessions until it has `steps` steps and scores the first `steps` of them in
session order, so the same policy, site and seed give the same steps. The shipped default checkpoint's test and
`shop-r1 experiment default-policy` both use it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.policy.base import Policy
from agent.policy.persona import PersonaIntent

from .session import RunConfig, run_sessions
from .trace import iter_traces

__all__ = ["StepValidity", "measure_step_validity"]


@dataclass(frozen=True)
class StepValidity:
    """Counts over `steps` steps: `parseable` outputs were a step; `valid` steps were also accepted by the env."""

    steps: int
    parseable: int
    valid: int
    error_kinds: dict[str, int] = field(default_factory=dict)
    sessions: int = 0

    @property
    def parse_rate(self) -> float:
        return self.parseable / self.steps if self.steps else 0.0

    @property
    def valid_rate(self) -> float:
        return self.valid / self.steps if self.steps else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "parse_rate": self.parse_rate, "valid_rate": self.valid_rate}


async def measure_step_validity(
    policy: Policy,
    site: str,
    items: Sequence[PersonaIntent],
    *,
    steps: int = 50,
    seed: int = 0,
    max_steps: int = 10,
    concurrency: int = 8,
    backend: Literal["http", "browser"] = "http",
) -> StepValidity:
    """Run sessions of `policy` on `site` (shoppers from `items`, `concurrency` at a time, at most `max_steps` steps
    each) until `steps` steps are recorded, then count the first `steps`. Each round starts only as many sessions as
    the steps still missing could need, so a small `steps` costs few sessions. More sessions than `items` cycle
    through them; the policy is not closed. A `ValueError` if `items` is empty or `steps` or `max_steps` < 1."""
    if steps < 1 or max_steps < 1 or not items:
        raise ValueError(f"Expect steps >= 1, max_steps >= 1 and some shoppers, actually: steps={steps}, "
                         f"max_steps={max_steps}, {len(items)} shoppers")
    config = RunConfig(site=site, backend=backend, concurrency=concurrency, seed=seed, max_steps=max_steps)
    records: list[Any] = []
    sessions = 0
    with tempfile.TemporaryDirectory(prefix="shop-r1-validity-") as tmp:
        round_ = 0
        while len(records) < steps:
            # Only as many sessions as could still be needed: a round of `n` sessions records at most n * max_steps.
            n = min(concurrency, -(-(steps - len(records)) // max_steps))
            batch = [items[(sessions + k) % len(items)] for k in range(n)]
            run_dir = Path(tmp) / f"round{round_}"
            ids = [f"s{sessions + k:05d}" for k in range(n)]
            await run_sessions(run_dir, policy, batch, config, ids=ids, progress=False,
                               extra={"task": "step_validity"})
            sessions += len(batch)
            round_ += 1
            traces = sorted(iter_traces(run_dir), key=lambda t: t.header.session_id)
            new = [s for t in traces for s in t.steps]
            if not new:
                raise RuntimeError(f"Expect steps from {len(batch)} sessions on {site}, actually: none recorded")
            records += new
    scored = records[:steps]
    kinds = Counter(s.error_kind or ("parse_error" if s.action is None else "other") for s in scored if not s.valid)
    return StepValidity(steps=len(scored), parseable=sum(s.action is not None for s in scored),
                        valid=sum(bool(s.valid) for s in scored), error_kinds=dict(sorted(kinds.items())),
                        sessions=sessions)

