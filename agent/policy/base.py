"""One interface for every shopper policy, batch-friendly: many sessions ask at once.

A session asks through a `Batcher`, which gathers the requests of concurrent sessions into one `Policy.act` call
(one `generate` for a local model, concurrent requests for a server).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from envs.actions import Click
from envs.observation import ElementRef, Observation

from .persona import Intent, Persona
from .prompt import HistoryItem
from .schema import ShopperStep


@dataclass(frozen=True)
class PolicyRequest:
    """What a policy sees to choose one step of one session."""

    session_id: str
    persona: Persona
    intent: Intent
    history: tuple[HistoryItem, ...]
    observation: Observation
    step: int
    seed: int = 0  # stochastic policies derive their randomness from (seed, step)


@dataclass
class PolicyResponse:
    """The policy's answer: a parsed step, or the raw output and why it could not be parsed."""

    step: ShopperStep | None
    raw: str = ""
    error: str | None = None
    prompt: dict[str, Any] | None = None  # prompt-budget bookkeeping (dropped pages, tokens)
    usage: dict[str, int] = field(default_factory=dict)


def tried_clicks(request: PolicyRequest) -> frozenset[str]:
    """The elements already clicked on this very page (same URL, same simplified HTML) earlier in the session. On a
    store, the same click from the same page leads where it led before, so a shopper who takes it again is going round
    in circles: pressing "Buy Now" then "Add to Cart" then "Buy Now" on the "Please choose a size" notice, or going
    back to the results and opening the same product again.

    >>> from dataclasses import replace
    >>> from agent.policy.persona import Intent, Persona
    >>> from agent.policy.prompt import HistoryItem
    >>> from envs.observation import ElementRef, Observation
    >>> results = Observation("http://shop/search?q=tent", "Results", "<a>Tent</a>", (ElementRef("tent", "clickable"),))
    >>> product = replace(results, url="http://shop/product/1", html="<h1>Tent</h1>")
    >>> def clicked(name, page):
    ...     return HistoryItem(page.url, page.html, {"type": "click", "name": name})
    >>> request = PolicyRequest("s", Persona(persona_id="p", name="P"), Intent(text="a tent"),
    ...                         (clicked("tent", results), clicked("back", product)), results, 2)
    >>> sorted(tried_clicks(request))  # back on the results: the tent was opened from here already
    ['tent']
    >>> sorted(tried_clicks(replace(request, observation=replace(results, html="<a>Tent</a><a>Tarp</a>"))))
    []
    """
    here = (request.observation.url, request.observation.html)
    return frozenset(h.action.name for h in request.history
                     if isinstance(h.action, Click) and (h.url, h.observation) == here)


def offered_elements(request: PolicyRequest, skip_tried: bool = True) -> list[ElementRef]:
    """The page's elements a step may name: all of them, less the `tried_clicks` when `skip_tried`. The local grammar
    and the served page schema both draw their names from this."""
    skip = tried_clicks(request) if skip_tried else frozenset()
    return [e for e in request.observation.elements if e.name not in skip]

class Policy(ABC):
    """A shopper: given requests from many sessions, returns one response each, in order."""

    name: str = "policy"
    max_batch: int = 8
    serial: bool = False
    """True when `act` runs one batch at a time (a local model behind a lock): a `Batcher` then holds the requests
    that arrive while a batch is in flight and sends them together when it ends, instead of queueing small batches
    behind it."""

    @abstractmethod
    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (servers, models). Calling it twice is harmless."""

    def describe(self) -> dict[str, Any]:
        """What to record in run.json and the trace header."""
        return {"name": self.name}


class Batcher:
    """Gathers concurrent `submit` calls into batches of at most `policy.max_batch` for `policy.act`.

    A batch is sent as soon as it is full, as soon as every active session is waiting on it (sessions register with
    `active()`), or when no more requests arrive within `wait_ms`. For a `serial` policy nothing is sent while a
    batch is in flight: the requests that arrive meanwhile go together when it ends (a local model's step takes
    seconds, sessions' page loads a tenth of one, so sending after `wait_ms` would queue batches of one or two).
    """

    def __init__(self, policy: Policy, wait_ms: float = 5.0):
        self.policy = policy
        self.wait_s = wait_ms / 1000
        self._pending: list[tuple[PolicyRequest, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self.batches: list[int] = []  # sizes of the batches sent, for the summary
        self.sessions = 0  # sessions registered with active(); 0 means unknown
        self._in_flight = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Register a running session, so the batcher knows when everyone is waiting and need not wait longer."""
        self.sessions += 1
        try:
            yield
        finally:
            self.sessions -= 1
            if self._pending and len(self._pending) >= self.sessions:
                self._send()

    async def submit(self, request: PolicyRequest) -> PolicyResponse:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((request, fut))
        if len(self._pending) >= self.policy.max_batch or len(self._pending) == self.sessions:
            self._send()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_later())
        return await fut

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.wait_s)
        if self._pending:
            self._send()

    def _send(self) -> None:
        if self.policy.serial and self._in_flight:
            return  # sent when the batch in flight ends (`_run`)
        batch, self._pending = self._pending[: self.policy.max_batch], self._pending[self.policy.max_batch:]
        self.batches.append(len(batch))
        self._in_flight += 1
        asyncio.ensure_future(self._run(batch))
        if self._pending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.ensure_future(self._flush_later())

    async def _run(self, batch: list[tuple[PolicyRequest, asyncio.Future]]) -> None:
        try:
            responses = await self.policy.act([req for req, _ in batch])
            if len(responses) != len(batch):
                raise RuntimeError(f"{self.policy.name} returned {len(responses)} responses for {len(batch)} requests")
        except Exception as exc:  # the policy failed: every waiting session learns why
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
        else:
            for (_, fut), resp in zip(batch, responses, strict=True):
                if not fut.done():
                    fut.set_result(resp)
        finally:
            self._in_flight -= 1
            if self.policy.serial and self._pending:
                self._send()
