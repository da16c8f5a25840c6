"""Default shopper benchmark: steps/s and sessions/min of the shipped checkpoint (`local` policy, CPU, in-process) at
concurrency 1 and 8, beside the scripted shopper (the baseline) and the previous tiny checkpoint, all in the same run;
and where a step's time goes.

The time table splits a default-shopper step (concurrency 8) into prefill (reading the prompts, until the first new
token of a batch), decode (the other new tokens), the step grammar (its logits processor), the env (the store's
response, simplification) and trace writing, from the engine's own counters and the traces' timings.

Run: `.venv/bin/python benchmarks/bench_default_policy.py [--sessions N]`; writes docs/benchmarks/default_policy.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import num, write_report  # noqa: E402
from bench_agent import run  # noqa: E402

from agent.checkpoints import TINY_POLICY_DIR, default_policy_dir  # noqa: E402
from sites.store.generate import build_catalog  # noqa: E402
from sites.store.server import StoreServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=8, help="sessions per cell at concurrency 8 (1 runs a quarter)")
    ap.add_argument("--products", type=int, default=5000)
    ap.add_argument("--max-steps", type=int, default=10, help="step budget per session")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/default_policy.md"))
    args = ap.parse_args()
    default = str(default_policy_dir())
    cells = [("scripted", "scripted", {}, 1), ("scripted", "scripted", {}, 8),
             ("previous default (3.9M, from scratch)", "local", {"model": str(TINY_POLICY_DIR)}, 8),
             ("default shopper (SmolLM2 + LoRA)", "local", {"model": default}, 1),
             ("default shopper (SmolLM2 + LoRA)", "local", {"model": default}, 8),
             ("default shopper, unconstrained", "local", {"model": default, "structured": False}, 8)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "catalog.db"
        build_catalog(db, n_products=args.products, seed=0)
        with StoreServer(db) as server:
            for label, policy, opts, k in cells:
                n = args.sessions if k > 1 else max(1, args.sessions // 4)
                extra = {"device": "cpu"} if policy == "local" else {}
                r = run(server.url, db, policy, "http", k, n, max_steps=args.max_steps, **extra, **opts)
                rows.append((label, k, n, r))
                print(label, k, f"{r['steps_per_s']:.3f} steps/s", flush=True)
    base = {k: r["steps_per_s"] for label, k, _, r in rows if label == "scripted"}
    lines = ["# Default shopper benchmark", "",
             "`.venv/bin/python benchmarks/bench_default_policy.py` (http backend, catalog "
             f"{args.products} products, 2-core CPU, bf16 where the CPU has it, at most {args.max_steps} steps a "
             "session). Baseline: the scripted shopper at the same concurrency, same run.", "",
             "| shopper | concurrency | sessions | sessions/min | steps/s | vs scripted | env ms/step | "
             "purchase rate | search rate |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, k, n, r in rows:
        lines.append(f"| {label} | {k} | {n} | {r['sessions_per_min']:.2f} | {r['steps_per_s']:.3f} | "
                     f"{r['steps_per_s'] / base[k]:.4f}× | {num(r['env_ms'], '.1f')} | "
                     f"{num(r['purchase'], '.0%')} | {num(r['search'], '.0%')} |")
    label, k, n, r = next(row for row in rows if row[0].startswith("default shopper (") and row[1] == 8)
    e = r["engine"]
    per = 1000 / r["steps"]
    decode = e["generate_seconds"] - e["prefill_seconds"]
    lines += ["", f"## Where a step's time goes ({label}, concurrency {k}, {r['steps']} steps)", "",
              "| part | ms per step | share of wall time |", "|---|---|---|"]
    parts = [("prefill (prompts read, batched)", e["prefill_seconds"]),
             ("decode (new tokens, grammar included)", decode),
             ("  of which the step grammar", e["grammar_seconds"]),
             ("env (store + simplify), summed over sessions", (r["env_ms"] or 0) * r["steps"] / 1000),
             ("trace writing, summed over sessions", (r["trace_ms"] or 0) * r["steps"] / 1000)]
    for name, seconds in parts:
        lines.append(f"| {name} | {seconds * per:.0f} | {seconds / r['wall']:.0%} |")
    lines += ["", f"Prompts averaged {e['prompt_tokens'] / max(1, e['requests']):.0f} tokens and completions "
              f"{e['new_tokens'] / max(1, e['requests']):.0f} tokens; {e['generate_calls']} generate calls of "
              f"{e['mean_batch_size']} requests on average; prefill ran at "
              f"{e['prompt_tokens'] / max(1e-9, e['prefill_seconds']):.0f} prompt tokens/s. Env and trace time overlap "
              "the model's (sessions run concurrently), so the shares do not add up to 100%."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
