"""Agent runtime benchmark: sessions/min and steps/s at concurrency 1, 4 and 8, with the time split between policy,
env and trace writing; the baseline is the env alone (the store's happy path) at the same concurrency, measured in the
same run, so the runtime's overhead shows as a ratio.

Run: `.venv/bin/python benchmarks/bench_agent.py [--sessions N] [--local-model DIR]`; writes docs/benchmarks/agent.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import num, write_report  # noqa: E402
from bench_env import throughput as env_throughput  # noqa: E402

from agent.analysis.summary import session_searches, summarize  # noqa: E402
from agent.policy import make_policy  # noqa: E402
from agent.runtime.session import RunConfig, run_sessions  # noqa: E402
from agent.runtime.trace import iter_traces  # noqa: E402
from agent.wiring import sample_from_catalog  # noqa: E402
from sites.store.generate import build_catalog  # noqa: E402
from sites.store.server import StoreServer  # noqa: E402


def run(url: str, db: Path, policy_name: str, backend: str, k: int, n: int, max_steps: int = 30,
        **policy_opts) -> dict:
    items = sample_from_catalog(db, n, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        policy = make_policy(policy_name, **policy_opts)
        config = RunConfig(site=url, backend=backend, concurrency=k, seed=1, max_steps=max_steps)

        async def go():
            try:
                return await run_sessions(tmp, policy, items, config, progress=False)
            finally:
                await policy.close()

        t0 = time.perf_counter()
        asyncio.run(go())
        wall = time.perf_counter() - t0
        traces = list(iter_traces(tmp))
        summary = summarize(traces)
    t = summary.timing
    engine = getattr(policy, "engine", None)
    return {"sessions_per_min": n / wall * 60, "steps_per_s": summary.total_steps / wall, "policy_ms": t.policy_ms,
            "env_ms": t.env_ms, "trace_ms": t.trace_ms, "purchase": summary.purchase_rate,
            "search": sum(1 for tr in traces if session_searches(tr) > 0) / len(traces) if traces else None,
            "steps": summary.total_steps, "wall": wall, "engine": engine.stats.as_dict() if engine else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=24, help="sessions per http cell (browser cells use a third)")
    ap.add_argument("--products", type=int, default=5000)
    ap.add_argument("--local-model", type=Path, default=None, help="a tiny model dir for the `local` rows")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/agent.md"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "catalog.db"
        build_catalog(db, n_products=args.products, seed=0)
        with StoreServer(db) as server:
            cells = [("scripted", b) for b in ("http", "browser")]
            if args.local_model:
                cells.append(("local", "http"))
            for policy, backend in cells:
                for k in (1, 4, 8):
                    n = args.sessions if backend == "http" else max(k, args.sessions // 3)
                    opts = {"model": str(args.local_model), "max_new_tokens": 64} if policy == "local" else {}
                    r = run(server.url, db, policy, backend, k, n, **opts)
                    base = asyncio.run(env_throughput(server.url, backend, k, 1))
                    rows.append((policy, backend, k, n, r, base))
                    print(policy, backend, k, f"{r['steps_per_s']:.1f} steps/s vs env {base:.1f}", flush=True)
    lines = ["# Agent runtime benchmark", "",
             f"`.venv/bin/python benchmarks/bench_agent.py` (catalog {args.products} products, 2-core CPU). "
             "Baseline: the env alone walking the store's happy path at the same concurrency (steps/s), same run.", "",
             "| policy | backend | concurrency | sessions | sessions/min | steps/s | env-only steps/s | runtime / env |"
             " policy ms/step | env ms/step | trace ms/step | purchase rate |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for policy, backend, k, n, r, base in rows:
        lines.append(f"| {policy} | {backend} | {k} | {n} | {r['sessions_per_min']:.0f} | {r['steps_per_s']:.1f} |"
                     f" {base:.1f} | {r['steps_per_s'] / base:.2f}× | {num(r['policy_ms'], '.1f')} |"
                     f" {num(r['env_ms'], '.1f')} | {num(r['trace_ms'], '.2f')} | {num(r['purchase'], '.0%')} |")
    lines += ["", "`local`: an untrained `shop-r1 model init --preset tiny` model (random weights, 64 new tokens "
              "per step); "
              "its outputs do not parse, so its sessions end after three steps and it never reaches the env: the rows "
              "measure batched CPU generation."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
