"""Finding 11: the policy server caps max_tokens, refuses huge prompts before tokenizing, and groups by length."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "agent"))
from tiny_model import cached_tiny_model  # noqa: E402

from agent.wiring import PolicyServer  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with PolicyServer(cached_tiny_model(tmp_path_factory), device="cpu", max_batch=8, batch_wait_ms=50,
                      max_tokens_cap=300, max_prompt_bytes=100_000) as srv:
        yield srv


def _body(max_tokens: int, text: str = "Boots") -> dict:
    return {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0.0}


def test_max_tokens_over_the_cap_is_a_400(server):
    r = httpx.post(f"{server.base_url}/chat/completions", json=_body(8000), timeout=30)
    assert r.status_code == 400 and "at most 300" in r.text, f"Expect a 400, actually: {r.status_code} {r.text}"


def test_huge_prompt_is_refused_before_tokenizing(server):
    t0 = time.perf_counter()
    r = httpx.post(f"{server.base_url}/chat/completions", json=_body(16, "x" * 10_000_000), timeout=60)
    took = time.perf_counter() - t0
    assert r.status_code == 413 and "bytes" in r.text, f"Expect a 413, actually: {r.status_code} {r.text[:200]}"
    assert took < 3, f"Expect the refusal before tokenizing (fast), actually: {took:.1f}s"


async def test_short_requests_are_not_batched_with_long_ones(server):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
        long = asyncio.create_task(client.post("/chat/completions", json=_body(300)))
        await asyncio.sleep(0.01)
        short = await client.post("/chat/completions", json=_body(4))
        await long
    assert short.status_code == 200
    done_with = server.stats.batch_sizes
    assert list(done_with)[-2:] == [1, 1], f"Expect the short and long requests in separate batches: {done_with}"
