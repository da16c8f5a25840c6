"""Throughput of the local engine and latency of the policy server, for a model directory or the tiny test model.

    .venv/bin/python benchmarks/policy_throughput.py --tiny                 # the 2-layer test model, CPU
    .venv/bin/python benchmarks/policy_throughput.py --model runs/sft/final --device cuda --max-new-tokens 128

Prints one JSON object: generated tokens/s per batch size (`LocalEngine.generate`, sampling at 0.6), and the
latency of chat completions through `PolicyServer` with the real `openai` client, sequential and 8 concurrent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.policy.engines import GenerationRequest, LocalEngine  # noqa: E402
from agent.policy.prompt import build_messages  # noqa: E402
from agent.wiring import PolicyServer  # noqa: E402

PAGE = ("<nav><a name='nav_bar.homepage'>Home</a></nav><input name='search_input'/>"
        "<ul><li><a name='search_results.acme_boots.product_title'>Acme boots</a> $89.00</li></ul>")


def engine_throughput(engine: LocalEngine, batch_sizes: list[int], max_new: int, repeats: int) -> dict[str, float]:
    messages = build_messages(None, [], "http://shop/", PAGE).messages
    ids = tuple(engine.encode(engine.chat_prompt(messages)))
    out: dict[str, float] = {"prompt_tokens": len(ids)}
    engine.generate([GenerationRequest(ids, max_new_tokens=max_new, seed=0)])  # warm-up
    for bs in batch_sizes:
        tokens, seconds = 0, 0.0
        for r in range(repeats):
            reqs = [GenerationRequest(ids, max_new_tokens=max_new, temperature=0.6, seed=r * 100 + i)
                    for i in range(bs)]
            start = time.perf_counter()
            completions = engine.generate(reqs)
            seconds += time.perf_counter() - start
            tokens += sum(c.completion_tokens for c in completions)
        out[f"batch_{bs}_tokens_per_s"] = round(tokens / seconds, 1)
        out[f"batch_{bs}_seconds_per_generate"] = round(seconds / repeats, 4)
    return out


async def server_latency(server: PolicyServer, max_new: int, repeats: int) -> dict[str, float]:
    from openai import AsyncOpenAI

    messages = build_messages(None, [], "http://shop/", PAGE).messages
    async with AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        async def one(seed: int) -> float:
            start = time.perf_counter()
            await client.chat.completions.create(model=server.model_name, messages=messages, max_tokens=max_new,
                                                 temperature=0.6, seed=seed)
            return time.perf_counter() - start

        await one(0)
        sequential = [await one(i) for i in range(repeats)]
        start = time.perf_counter()
        concurrent = await asyncio.gather(*(one(100 + i) for i in range(8)))
        wall = time.perf_counter() - start
    return {"sequential_median_s": round(statistics.median(sequential), 4),
            "concurrent8_median_s": round(statistics.median(concurrent), 4),
            "concurrent8_wall_s": round(wall, 4),
            "recent_batch_sizes": list(server.stats.batch_sizes)[-8:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="A model directory (save_pretrained output).")
    parser.add_argument("--tiny", action="store_true", help="Build and use the tiny test model.")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.tiny:
        sys.path.insert(0, str(ROOT / "tests" / "agent"))
        from tiny_model import build_tiny_model

        args.model = build_tiny_model(Path(tempfile.mkdtemp(prefix="tiny-qwen2-")))
    if args.model is None:
        parser.error("give --model DIR or --tiny")
    engine = LocalEngine.from_pretrained(args.model, device=args.device)
    result = {"model": str(args.model), "device": str(engine.device), "max_new_tokens": args.max_new_tokens,
              "engine": engine_throughput(engine, [int(b) for b in args.batch_sizes.split(",")],
                                          args.max_new_tokens, args.repeats)}
    with PolicyServer(engine=engine, max_batch=8) as server:
        result["server"] = asyncio.run(server_latency(server, args.max_new_tokens, args.repeats))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
