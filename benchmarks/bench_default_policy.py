"""Default shopper benchmark: steps/s and sessions/min of the shipped checkpoint (`local` policy, CPU, in-process) at
concurrency 1 and 8, with the scripted shopper measured in the same run as the baseline, and the grammar's cost
(the same model unconstrained).

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

from agent.checkpoints import default_policy_dir  # noqa: E402
from sites.store.generate import build_catalog  # noqa: E402
from sites.store.server import StoreServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=16, help="sessions per cell (concurrency 1 runs half)")
    ap.add_argument("--products", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/default_policy.md"))
    args = ap.parse_args()
    model = str(default_policy_dir())
    cells = [("scripted", "scripted", {}, 1), ("scripted", "scripted", {}, 8),
             ("default checkpoint", "local", {"model": model}, 1),
             ("default checkpoint", "local", {"model": model}, 8),
             ("default checkpoint, unconstrained", "local", {"model": model, "structured": False}, 8)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "catalog.db"
        build_catalog(db, n_products=args.products, seed=0)
        with StoreServer(db) as server:
            for label, policy, opts, k in cells:
                n = args.sessions if k > 1 else max(1, args.sessions // 2)
                r = run(server.url, db, policy, "http", k, n, **opts)
                rows.append((label, k, n, r))
                print(label, k, f"{r['steps_per_s']:.2f} steps/s", flush=True)
    base = {k: r["steps_per_s"] for label, k, _, r in rows if label == "scripted"}
    lines = ["# Default shopper benchmark", "",
             "`.venv/bin/python benchmarks/bench_default_policy.py` (http backend, catalog "
             f"{args.products} products, 2-core CPU, fp32). Baseline: the scripted shopper at the same concurrency, "
             "same run.", "",
             "| shopper | concurrency | sessions | sessions/min | steps/s | vs scripted | policy ms/step | "
             "env ms/step | purchase rate |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, k, n, r in rows:
        lines.append(f"| {label} | {k} | {n} | {r['sessions_per_min']:.1f} | {r['steps_per_s']:.2f} | "
                     f"{r['steps_per_s'] / base[k]:.3f}× | {num(r['policy_ms'], '.1f')} | "
                     f"{num(r['env_ms'], '.1f')} | {num(r['purchase'], '.0%')} |")
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
