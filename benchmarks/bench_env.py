"""Env benchmark: step latency split, throughput at 1/4/8 concurrent sessions, and compactness per page type.

Baseline in the same run: a bare Playwright click + navigate over the same pages, with no annotation or
simplification. Run: `.venv/bin/python benchmarks/bench_env.py [--walks N] [--products N]`; writes
docs/benchmarks/env.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# The happy path is a test helper (it knows the env's element names): tests/envs/happy_path.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "envs"))

from _report import write_report  # noqa: E402
from happy_path import HappyPath  # noqa: E402

from envs.browser import SharedBrowser
from envs.chromium import launch_kwargs
from envs.env import AsyncShopEnv, EnvConfig
from envs.simplify import count_interactables, simplify
from sites.store.generate import build_catalog
from sites.store.server import StoreServer

TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> int:
    """A tokenizer-free proxy for LLM tokens: words and punctuation marks."""
    return len(TOKEN.findall(text))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def one_walk(url: str, backend: str, browser: SharedBrowser | None, timings: list[dict] | None) -> int:
    env = AsyncShopEnv(url, backend, EnvConfig(timeout_s=30), browser=browser)
    try:
        obs, _ = await env.reset()
        path, steps = HappyPath(), 0
        while (action := path.next_action(obs.names)) is not None:
            obs, _, _, _, info = await env.step(action)
            assert info["valid"], info
            steps += 1
            if timings is not None:
                timings.append(info["timing_ms"])
        return steps
    finally:
        await env.close()


async def latency(url: str, backend: str, walks: int) -> dict[str, tuple[float, float]]:
    browser = SharedBrowser() if backend == "browser" else None
    timings: list[dict] = []
    await one_walk(url, backend, browser, None)  # warm-up
    for _ in range(walks):
        await one_walk(url, backend, browser, timings)
    if browser:
        await browser.close()
    out = {}
    for key in ("action", "navigation", "observe", "simplify", "total"):
        vals = [t.get(key, 0.0) for t in timings]
        out[key] = (statistics.median(vals), pct(vals, 0.9))
    return out


async def throughput(url: str, backend: str, k: int, walks_per_session: int) -> float:
    browser = SharedBrowser() if backend == "browser" else None
    await one_walk(url, backend, browser, None)
    t0 = time.perf_counter()

    async def session() -> int:
        return sum([await one_walk(url, backend, browser, None) for _ in range(walks_per_session)])

    steps = sum(await asyncio.gather(*(session() for _ in range(k))))
    dt = time.perf_counter() - t0
    if browser:
        await browser.close()
    return steps / dt


async def bare_playwright(url: str, walks: int) -> tuple[float, float]:
    """The same happy path (search, sort, product, options, add to cart, checkout, place order) driven with plain
    Playwright selectors: click + navigate, no annotation, no simplification. The floor for a browser step."""
    from playwright.async_api import async_playwright

    times: list[float] = []

    async def timed(page, do) -> None:
        t0 = time.perf_counter()
        async with page.expect_navigation():
            await do()
        times.append((time.perf_counter() - t0) * 1000)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(**launch_kwargs())
        for walk in range(walks + 1):
            ctx = await browser.new_context()
            page = await ctx.new_page()
            await page.goto(url)
            start = len(times)
            await page.fill("input[type=search]", "running shoes")
            await timed(page, lambda p=page: p.press("input[type=search]", "Enter"))
            await timed(page, lambda p=page: p.click("a:has-text('Price: Low to High')"))
            await timed(page, lambda p=page: p.click("section[aria-label='Search results'] article h2 a >> nth=0"))
            for i in range(await page.locator("main fieldset").count()):
                await timed(page, lambda p=page, i=i: p.locator("main fieldset").nth(i).locator("a").first.click())
            await timed(page, lambda p=page: p.click("button:has-text('Add to Cart')"))
            await timed(page, lambda p=page: p.click("a:has-text('Proceed to checkout')"))
            await timed(page, lambda p=page: p.click("button:has-text('Place order')"))
            if walk == 0:
                del times[start:]  # the first walk warms up
            await ctx.close()
        await browser.close()
    return statistics.median(times), pct(times, 0.9)


ANNOTATION = re.compile(r'\sdata-shop-(?:id|hidden)="[^"]*"')


def page_kind(url: str) -> str:
    for marker, kind in (("/search", "results"), ("/product/", "product"), ("/cart", "cart"),
                         ("/checkout", "checkout"), ("/order/", "order")):
        if marker in url:
            return kind
    return "home"


async def compactness(url: str) -> list[tuple[str, int, int, int, int, int, int]]:
    """Per page type on the happy path: the browser's DOM (`page.content()`, our annotations removed) vs the
    simplified page, in characters and tokens, and how many interactables are named."""
    rows, seen = [], set()
    env = AsyncShopEnv(url, "browser")
    try:
        obs, _ = await env.reset()
        path = HappyPath(sort=False)
        while True:
            kind = page_kind(obs.url)
            if kind not in seen:
                seen.add(kind)
                dom = ANNOTATION.sub("", await env.driver.page.content())
                s = simplify(dom)
                rows.append((kind, len(dom), tokens(dom), len(s.html), tokens(s.html), len(s.elements),
                             count_interactables(dom)))
            action = path.next_action(obs.names)
            if action is None:
                break
            obs, *_ = await env.step(action)
    finally:
        await env.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--walks", type=int, default=5, help="happy-path walks per latency measurement")
    ap.add_argument("--products", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/env.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "catalog.db"
        build_catalog(db, n_products=args.products, seed=0)
        with StoreServer(db) as server:
            url = server.url
            lat = {b: asyncio.run(latency(url, b, args.walks)) for b in ("browser", "http")}
            bare = asyncio.run(bare_playwright(url, args.walks))
            thr = {(b, k): asyncio.run(throughput(url, b, k, 1 if b == "browser" else 3))
                   for b in ("browser", "http") for k in (1, 4, 8)}
            comp = asyncio.run(compactness(url))
    lines = ["# Env benchmark", "", f"`{' '.join(['.venv/bin/python', 'benchmarks/bench_env.py'])}` "
             f"(catalog {args.products} products, {args.walks} happy-path walks per backend; 2-core CPU).", "",
             "## Step latency (ms, median / p90)", "",
             "| backend | action | navigation | observe (annotate + DOM read) | simplify | step total |",
             "|---|---|---|---|---|---|"]
    for b in ("browser", "http"):
        r = lat[b]
        lines.append(f"| {b} | " + " | ".join(f"{r[k][0]:.1f} / {r[k][1]:.1f}"
                                                for k in ("action", "navigation", "observe", "simplify", "total"))
                     + " |")
    lines.append(f"| bare Playwright click + navigate (baseline) | | | | | {bare[0]:.1f} / {bare[1]:.1f} |")
    lines += ["", f"- Browser step / bare round trip (median): **{lat['browser']['total'][0] / bare[0]:.2f}×** "
              "(target ≤ 1.5×)",
              f"- http step vs browser step (median): **{lat['browser']['total'][0] / lat['http']['total'][0]:.1f}× "
              "faster** (target ≥ 20×)", "",
              "## Throughput (steps/s, whole happy-path sessions)", "", "| backend | 1 | 4 | 8 |", "|---|---|---|---|"]
    for b in ("browser", "http"):
        lines.append(f"| {b} | " + " | ".join(f"{thr[(b, k)]:.1f}" for k in (1, 4, 8)) + " |")
    lines += ["", "## Compactness (browser DOM `page.content()` vs simplified)", "",
              "| page | DOM chars | DOM tokens* | simplified chars | simplified tokens* | ratio (chars) |"
              " ratio (tokens) | interactables named / present |", "|---|---|---|---|---|---|---|---|"]
    for kind, dc, dt, sc, st, named, present in comp:
        lines.append(f"| {kind} | {dc:,} | {dt:,} | {sc:,} | {st:,} | {dc / sc:.1f}× | {dt / st:.1f}× |"
                     f" {named} / {present} |")
    lines += ["", "*tokens: words and punctuation marks (`\\w+|[^\\w\\s]`), a tokenizer-free proxy."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
