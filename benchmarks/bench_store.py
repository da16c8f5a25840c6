"""Store benchmarks: catalog build time, search latency at 1k/10k/100k products, and results pages over HTTP.

    .venv/bin/python benchmarks/bench_store.py            # full: 1k, 10k and 100k products (a few minutes)
    .venv/bin/python benchmarks/bench_store.py --quick    # smoke run: 1k and 10k

Prints a Markdown report and writes it to docs/benchmarks/store.md.

- Search latency is `Catalog.search` end to end (total count, department and brand facets, one page of 10 products
  as typed records) over a fixed set of realistic 1-4 word queries, with the result cache off ("cold": every request
  runs its SQL) and on ("cached": a repeat of a request already seen, e.g. the back button).
- The baseline is a naive in-process BM25 (`rank_bm25.BM25Okapi`) over the same products' text (title, brand,
  category, description, bullets): score every product, count the matches, take the top 10. No facets, no filters.
- Results pages over HTTP: the store app (`sites.store.server.StoreServer`, in a child process so that the clients do
  not share its interpreter lock) on loopback, hit by 8 and 32 concurrent clients (threads, one httpx client each)
  for a bounded number of requests. Skipped when the web app is not importable.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sites.store.catalog import Catalog  # noqa: E402
from sites.store.generate import build_catalog  # noqa: E402
from sites.store.models import SearchQuery  # noqa: E402

REPORT = ROOT / "docs" / "benchmarks" / "store.md"
SEED = 0
QUERIES = [
    "running shoes", "wireless headphones", "shampoo", "organic coffee", "queen sheet set", "yoga mat",
    "men's waterproof hiking boots", "air fryer", "dark chocolate", "standing desk", "bluetooth speaker", "leggings",
    "vitamin c serum", "stainless steel water bottle", "memory foam pillow", "sparkling water", "protein powder",
    "led desk lamp", "noise cancelling headphones", "women's winter coat", "laptop", "phone case", "coffee beans",
    "adjustable dumbbells", "scented candle", "area rug", "blackout curtains", "gluten free pasta",
    "portable charger", "kids bike helmet", "sulfate free shampoo", "maxi dress",
]
_REFINEMENTS = [
    {"department": "fashion"}, {"price_max": 50.0}, {"min_rating": 4.0}, {"sort": "price_asc"},
    {"department": "electronics", "sort": "rating"}, {"price_min": 20.0, "price_max": 80.0, "min_rating": 4.5},
    {"sort": "price_desc", "page": 2}, {"department": "home & furniture", "price_max": 200.0},
]
FILTERED = [dict(q=q, **_REFINEMENTS[i % len(_REFINEMENTS)]) for i, q in enumerate(QUERIES)]
_WORD = re.compile(r"\w+")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(fn: Callable[[], object], reps: int, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock milliseconds of `reps` calls; their thread CPU milliseconds are appended to `cpu` if given.

    CPU time is what the work costs, whatever else the machine runs; wall time is what a caller waits.
    """
    out = []
    for _ in range(reps):
        c = time.thread_time()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
        if cpu is not None:
            cpu.append((time.thread_time() - c) * 1000)
    return out


# ---------------------------------------------------------------------------------------------------------- search
def bench_search(path: Path, reps: int) -> dict[str, float]:
    cold = Catalog(path, cache_size=0)
    plain = [SearchQuery(q=q) for q in QUERIES]
    refined = [SearchQuery(**kw) for kw in FILTERED]
    for query in plain + refined:  # warm the OS page cache and the in-memory search keys, as a running server has
        cold.search(query)
    cpu: list[float] = []
    times = [t for _ in range(reps) for query in plain for t in timed(lambda q=query: cold.search(q), 1, cpu)]
    times_f = [t for _ in range(reps) for query in refined for t in timed(lambda q=query: cold.search(q), 1)]
    cached = Catalog(path)
    for query in plain:
        cached.search(query)
    times_c = [t for _ in range(reps) for query in plain for t in timed(lambda q=query: cached.search(q), 1)]
    totals = [cold.search(q).total for q in plain]
    return {"p50": statistics.median(times), "p99": percentile(times, 99), "cpu_p50": statistics.median(cpu),
            "f_p50": statistics.median(times_f), "f_p99": percentile(times_f, 99),
            "c_p50": statistics.median(times_c), "matches": statistics.median(totals)}


def bench_rank_bm25(path: Path, reps: int) -> dict[str, float]:
    """The naive baseline: rank_bm25 over the same text; returns index build seconds and query p50/p99 (ms)."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = conn.execute("SELECT title, brand, category, description, bullets FROM products ORDER BY id").fetchall()
    conn.close()
    t = time.perf_counter()
    corpus = [_WORD.findall(" ".join(r).lower()) for r in rows]
    bm25 = BM25Okapi(corpus)
    build = time.perf_counter() - t

    def search(q: str) -> tuple[int, list[int]]:
        scores = bm25.get_scores(_WORD.findall(q.lower()))
        top = np.argpartition(-scores, 10)[:10]
        return int((scores > 0).sum()), sorted(top.tolist(), key=lambda i: -scores[i])

    cpu: list[float] = []
    times = [t for _ in range(reps) for q in QUERIES for t in timed(lambda q=q: search(q), 1, cpu)]
    return {"build": build, "p50": statistics.median(times), "p99": percentile(times, 99),
            "cpu_p50": statistics.median(cpu)}


# ------------------------------------------------------------------------------------------------------------- http
def _serve(db_path: str, pipe) -> None:  # runs in the child process
    from sites.store.server import StoreServer

    with StoreServer(db_path, variant="a", host="127.0.0.1", port=0) as server:
        pipe.send(server.url)
        pipe.recv()  # until the parent says stop


def bench_http(path: Path, clients: list[int], requests_per_client: int) -> list[dict[str, float]] | str:
    try:
        import httpx

        import sites.store.server  # noqa: F401
    except Exception as e:  # the web app is written separately; report why the section is missing
        return f"skipped: the web app does not import ({type(e).__name__}: {e})"
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(str(path), child), daemon=True)
    proc.start()
    try:
        if not parent.poll(120):
            return "skipped: the store server did not start within 120 s"
        url = parent.recv()
        paths = [f"/search?q={q.replace(' ', '+')}&page={1 + i % 3}" for i, q in enumerate(QUERIES * 3)]
        with httpx.Client(base_url=url) as warm:
            for p in paths:
                warm.get(p).raise_for_status()
        out = []
        for n in clients:
            def worker(k: int, n: int = n) -> tuple[list[float], int]:
                lat, errors = [], 0
                with httpx.Client(base_url=url, timeout=60) as client:
                    for j in range(requests_per_client):
                        t = time.perf_counter()
                        r = client.get(paths[(k * requests_per_client + j) % len(paths)])
                        lat.append((time.perf_counter() - t) * 1000)
                        errors += r.status_code != 200
                return lat, errors

            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                results = list(pool.map(worker, range(n)))
            wall = time.perf_counter() - t0
            lat = [x for got, _ in results for x in got]
            out.append({"clients": n, "requests": len(lat), "rps": len(lat) / wall, "p50": statistics.median(lat),
                        "p99": percentile(lat, 99), "errors": sum(e for _, e in results)})
        return out
    finally:
        parent.send("stop")
        proc.join(30)
        if proc.is_alive():
            proc.terminate()


# ----------------------------------------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100k-product catalog (a smoke run)")
    ap.add_argument("--out", type=Path, default=REPORT, help="where to write the Markdown report")
    args = ap.parse_args(argv)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    load_before = os.getloadavg()[0]
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        builds: list[tuple[int, float, float, float]] = []
        paths: dict[int, Path] = {}
        for n in sorted({*sizes, 5_000}):
            path = Path(tmp) / f"catalog-{n}.db"
            t, c = time.perf_counter(), time.process_time()
            build_catalog(path, n_products=n, seed=SEED, progress=False)
            builds.append((n, time.perf_counter() - t, time.process_time() - c, path.stat().st_size / 2**20))
            print(f"built {n:,} products in {builds[-1][1]:.1f}s", file=sys.stderr)
            if n in sizes:
                paths[n] = path
            else:
                path.unlink()
        search_rows = []
        for n in sizes:
            ours = bench_search(paths[n], reps=5)
            base = bench_rank_bm25(paths[n], reps=1 if n >= 100_000 else 3)
            search_rows.append((n, ours, base))
            print(f"searched {n:,}: p50 {ours['p50']:.2f} ms, rank_bm25 {base['p50']:.1f} ms", file=sys.stderr)
        http = bench_http(paths[sizes[-1]], clients=[8, 32], requests_per_client=40)
    load_after = os.getloadavg()[0]

    lines += [
        "# Store benchmarks",
        "",
        f"`{' '.join(['benchmarks/bench_store.py', *(['--quick'] if args.quick else [])])}` on {platform.machine()},"
        f" {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version};"
        f" load average {load_before:.1f} before, {load_after:.1f} after (other work on the machine adds noise).",
        "",
        f"## Search latency (`Catalog.search`, ms; {len(QUERIES)} queries, seed {SEED})",
        "",
        "Cold: cache off, every request runs its SQL (wall clock; \"cpu\": the thread's CPU time, which other load on",
        "the machine does not inflate). Refined: each query with a refinement or a non-default sort (department,",
        "price range, rating, price/rating order, page 2). Cached: a repeat of a request already seen. rank_bm25: a",
        "naive Python BM25 over the same text (score all, count, top 10; no facets). Ratio: its CPU p50 over our cold",
        "CPU p50.",
        "",
        "| products | median matches | cold p50 | cold p99 | cold cpu p50 | refined p50 | refined p99 | cached p50"
        " | rank_bm25 p50 | rank_bm25 cpu p50 | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, ours, base in search_rows:
        lines.append(
            f"| {n:,} | {ours['matches']:,.0f} | {ours['p50']:.2f} | {ours['p99']:.2f} | {ours['cpu_p50']:.2f}"
            f" | {ours['f_p50']:.2f} | {ours['f_p99']:.2f} | {ours['c_p50']:.3f} | {base['p50']:.1f}"
            f" | {base['cpu_p50']:.1f} | {base['cpu_p50'] / ours['cpu_p50']:.0f}× |")
    lines += ["", "## Catalog build (`build_catalog`: generate, index, VACUUM; seconds)", "",
              "| products | wall | cpu | file MB | rank_bm25 index (wall) |", "|---:|---:|---:|---:|---:|"]
    base_build = {n: f"{base['build']:.1f}" for n, _, base in search_rows}
    for n, secs, cpu_secs, mb in builds:
        lines.append(f"| {n:,} | {secs:.1f} | {cpu_secs:.1f} | {mb:.0f} | {base_build.get(n, '')} |")
    lines += ["", f"## Results pages over HTTP ({sizes[-1]:,} products, variant a, loopback)", ""]
    if isinstance(http, str):
        lines.append(http)
    else:
        lines += ["`GET /search?q=…&page=1..3` over the query set; the server's search cache is on (after a warm-up",
                  "pass, most requests hit it, as when shoppers page and go back). Server and clients share the CPUs",
                  "above.", "",
                  "| clients | requests | requests/s | p50 ms | p99 ms | errors |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for row in http:
            lines.append(f"| {row['clients']} | {row['requests']} | {row['rps']:.0f} | {row['p50']:.1f}"
                         f" | {row['p99']:.1f} | {row['errors']} |")
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
