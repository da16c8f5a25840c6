"""`agent.policy.base.Batcher`: how requests that arrive one by one (sessions load their pages at different moments)
become batches, for a policy that runs batches side by side and for a `serial` one (a local model: one generate at a
time)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from agent.policy.base import Batcher, Policy, PolicyRequest, PolicyResponse
from agent.policy.persona import Intent, Persona
from envs.observation import Observation


class SlowEcho(Policy):
    """Takes `seconds` per batch, terminating every session; records the batch sizes it was given."""

    name = "slow-echo"

    def __init__(self, seconds: float, serial: bool, max_batch: int = 8):
        self.seconds, self.serial, self.max_batch = seconds, serial, max_batch
        self.sizes: list[int] = []
        self.running = 0
        self.most_at_once = 0

    async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        self.sizes.append(len(requests))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        return [PolicyResponse(step=None, raw=r.session_id) for r in requests]


def request(i: int) -> PolicyRequest:
    return PolicyRequest(f"s{i}", Persona(persona_id="p", name="P"), Intent(text="a tent"), (),
                         Observation("http://shop/", "Home", "<p>home</p>", ()), 0)


async def staggered(batcher: Batcher, n: int, gap_s: float) -> list[PolicyResponse]:
    """`n` sessions asking one after another, `gap_s` apart (longer than the batcher's wait)."""

    async def one(i: int) -> PolicyResponse:
        await asyncio.sleep(i * gap_s)
        return await batcher.submit(request(i))

    return await asyncio.gather(*(one(i) for i in range(n)))


async def test_a_serial_policy_gets_the_requests_that_arrived_during_a_batch_together() -> None:
    policy = SlowEcho(seconds=0.3, serial=True)
    batcher = Batcher(policy, wait_ms=5)
    responses = await staggered(batcher, 6, gap_s=0.03)
    # the first goes alone; the other five arrive while it runs and go together when it ends
    assert policy.sizes == [1, 5] and batcher.batches == [1, 5]
    assert policy.most_at_once == 1
    assert [r.raw for r in responses] == [f"s{i}" for i in range(6)]  # each session gets its own answer


async def test_a_parallel_policy_is_sent_each_request_after_the_wait() -> None:
    policy = SlowEcho(seconds=0.3, serial=False)
    batcher = Batcher(policy, wait_ms=5)
    await staggered(batcher, 6, gap_s=0.03)
    assert policy.sizes == [1] * 6 and policy.most_at_once > 1


async def test_a_serial_policy_still_splits_at_max_batch_and_a_failure_reaches_every_waiting_session() -> None:
    policy = SlowEcho(seconds=0.2, serial=True, max_batch=3)
    batcher = Batcher(policy, wait_ms=5)
    await staggered(batcher, 8, gap_s=0.01)
    assert sum(policy.sizes) == 8 and max(policy.sizes) == 3 and policy.most_at_once == 1

    class Broken(SlowEcho):
        async def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
            await super().act(requests)
            raise RuntimeError("the model died")

    broken = Broken(seconds=0.05, serial=True)
    batcher = Batcher(broken, wait_ms=5)
    results = await asyncio.gather(*(batcher.submit(request(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "the model died" in str(r) for r in results)
    # the failed batch does not stay counted as in flight: the next request is sent, not held
    with pytest.raises(RuntimeError, match="the model died"):
        await asyncio.wait_for(batcher.submit(request(9)), timeout=5)
    assert batcher.batches == [3, 1]
