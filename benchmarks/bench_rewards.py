"""Reward benchmark: scored actions per second for the Shop-R1 reward on a realistic GRPO batch.

The mix: 2,500 gold actions (55% click, 25% type_and_submit, 20% terminate, with the store's element names and search
queries), each with 8 sampled completions (GRPO's group), 20,000 completions in all, from an SFT-like policy (type right
70% of the time, name or text right 50%), 5% of them malformed. Golds arrive as JSON strings, as a dataset column.

Rows, each the best of `--repeats` interleaved rounds, caches cleared and the cyclic GC off during each run
(as `timeit` does):

- parse only: `agent.policy.schema.parse_step` on every completion (the format check);
- reward only: `score_action` on already parsed actions (tokenize, ROUGE-L, gating, DARS);
- parse + reward: the TRL callable `ShopR1Reward()(prompts, completions, gold_action=...)`, everything included;
- baselines, same run: the same two with a pure-Python O(n·m) DP ROUGE-L instead of rapidfuzz's LCSseq;
- the four component callables, as TRL would call them per batch of 512 (they share the parse cache);
- ROUGE-L alone on 2,000 pairs of 30-token texts, rapidfuzz vs the DP baseline.

Run: `.venv/bin/python benchmarks/bench_rewards.py [--n 20000] [--repeats 5]`; writes docs/benchmarks/rewards.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path

import rapidfuzz

import training.rewards as rewards
from agent.policy.schema import ShopperStep, parse_step
from training.rewards import RewardConfig, ShopR1Reward, parse_gold, score_action
from training.rouge import tokenize

BRANDS = ("acme", "northwind", "summit", "ridge", "trailhead")
ITEMS = ("trail runner", "hiking boot", "rain jacket", "camp stove", "wool socks", "day pack", "down vest")
WORDS = ("waterproof", "lightweight", "mens", "womens", "cheap", "wool", "insulated")
RATIONALE_BITS = ("These look right", "Too expensive for me", "I want to compare reviews first", "Let me search",
                  "The navy one fits my style", "Nothing here matches, so")
TYPES = ("click", "type_and_submit", "terminate")
GROUP = 8


def click_name(rng: random.Random) -> str:
    brand, item = rng.choice(BRANDS), rng.choice(ITEMS).replace(" ", "_")
    return rng.choice([f"search_results.{brand}_{item}.title", f"search_results.{brand}_{item}.image",
                       f"product_options.color.{rng.choice(('navy', 'black', 'olive'))}", "add_to_cart.buy_now",
                       "nav_bar.homepage", f"refinements.brand.{brand}", "sort_by.price_low_to_high",
                       "search_results.pagination.next", "cart.proceed_to_checkout"])


def query(rng: random.Random) -> str:
    return " ".join([*rng.sample(WORDS, rng.randint(0, 2)), rng.choice(ITEMS)])


def gold_action(rng: random.Random) -> dict[str, str]:
    u = rng.random()
    if u < 0.55:
        return {"type": "click", "name": click_name(rng)}
    if u < 0.80:
        return {"type": "type_and_submit", "name": "search_input", "text": query(rng)}
    return {"type": "terminate"}


def completion(gold: dict[str, str], rng: random.Random) -> str:
    kind = gold["type"] if rng.random() < 0.7 else rng.choice([t for t in TYPES if t != gold["type"]])
    right = rng.random() < 0.5
    if kind == "terminate":
        action: dict[str, str] = {"type": "terminate"}
    elif kind == "click":
        action = dict(gold) if gold["type"] == "click" and right else {"type": "click", "name": click_name(rng)}
    else:
        text = gold["text"] if gold["type"] == "type_and_submit" and right else query(rng)
        action = {"type": "type_and_submit", "name": "search_input", "text": text}
    rationale = f"{rng.choice(RATIONALE_BITS)}, item {rng.randint(0, 10**6)}."  # unique outputs: no cache hits
    text = json.dumps({"rationale": rationale, "action": action})
    if rng.random() < 0.05:
        text = rng.choice([text[: len(text) // 2], "I think I'll click it.", text.replace('"rationale"', '"why"')])
    return text


def dp_rouge_l(pred: str, ref: str) -> float:
    """The baseline: ROUGE-L F1 with the textbook O(n·m) LCS table in pure Python (same tokenization)."""
    a, b = tokenize(pred), tokenize(ref)
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return 2.0 * previous[-1] / (len(a) + len(b))


def clear_caches() -> None:
    rewards._parse_text.cache_clear()
    rewards._parse_gold_json.cache_clear()


def best_of_interleaved(repeats: int, funcs: list[Callable[[], object]]) -> list[float]:
    """The best time of each function over `repeats` rounds; each round runs every function once, in turn, so a
    noisy neighbour slows all rows alike."""
    best = [float("inf")] * len(funcs)
    for _ in range(repeats):
        for i, func in enumerate(funcs):
            clear_caches()
            gc.collect()
            gc.disable()  # as timeit does: the cyclic GC's pauses depend on what else is alive, not on the code
            try:
                t0 = time.perf_counter()
                func()
                best[i] = min(best[i], time.perf_counter() - t0)
            finally:
                gc.enable()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="completions (a multiple of the group size 8)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/rewards.md"))
    args = parser.parse_args()

    rng = random.Random(args.seed)
    group_golds = [gold_action(rng) for _ in range(args.n // GROUP)]
    golds_dict = [g for g in group_golds for _ in range(GROUP)]
    golds = [json.dumps(g) for g in golds_dict]
    completions = [completion(g, rng) for g in golds_dict]
    n = len(completions)

    steps = [parse_step(c) for c in completions]
    valid = [(s.action, parse_gold(g)) for s, g in zip(steps, golds, strict=True) if isinstance(s, ShopperStep)]
    config = RewardConfig()
    reward = ShopR1Reward(config)

    def reward_only(similarity: Callable[[str, str], float]) -> Callable[[], object]:
        return lambda: [score_action(p, g, config, similarity=similarity) for p, g in valid]

    def components() -> object:
        funcs = reward.component_funcs()
        for lo in range(0, n, 512):
            batch, gold_batch = completions[lo : lo + 512], golds[lo : lo + 512]
            for f in funcs:
                f(None, batch, gold_action=gold_batch)
        return None

    baseline = ShopR1Reward(config, similarity=dp_rouge_l)
    vocabulary = [*WORDS, *BRANDS, *(w for item in ITEMS for w in item.split())]
    long_texts = [" ".join(rng.choices(vocabulary, k=30)) for _ in range(4000)]
    long_pairs = list(zip(long_texts[::2], long_texts[1::2], strict=True))

    def rouge_only(similarity: Callable[[str, str], float]) -> Callable[[], object]:
        return lambda: [similarity(a, b) for a, b in long_pairs]

    plan: list[tuple[str, int, Callable[[], object]]] = [
        ("parse only (`parse_step`)", n, lambda: [parse_step(c) for c in completions]),
        ("reward only: `score_action`, rapidfuzz ROUGE-L", len(valid), reward_only(rewards.rouge_l)),
        ("baseline reward only: `score_action`, pure-Python DP ROUGE-L", len(valid), reward_only(dp_rouge_l)),
        ("parse + reward: `ShopR1Reward()` TRL callable", n, lambda: reward(None, completions, gold_action=golds)),
        ("baseline parse + reward: the same, DP ROUGE-L", n, lambda: baseline(None, completions, gold_action=golds)),
        ("parse + reward: 4 component callables, batches of 512", n, components),
        ("ROUGE-L alone, 30-token texts: rapidfuzz", len(long_pairs), rouge_only(rewards.rouge_l)),
        ("ROUGE-L alone, 30-token texts: DP baseline", len(long_pairs), rouge_only(dp_rouge_l)),
    ]
    seconds = best_of_interleaved(args.repeats, [func for _, _, func in plan])
    rows = [(label, count, t) for (label, count, _), t in zip(plan, seconds, strict=True)]
    parse_rate, reward_rate, base_reward_rate, full_rate, base_full_rate, _, long_rate, base_long_rate = (
        c / t for _, c, t in rows
    )

    lines = [
        "# Reward benchmark",
        "",
        f"`.venv/bin/python benchmarks/bench_rewards.py --n {args.n} --repeats {args.repeats}`: {n:,} completions "
        f"({len(valid):,} valid, {n - len(valid):,} malformed), groups of {GROUP} per gold action, best of "
        f"{args.repeats}. {platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"rapidfuzz {rapidfuzz.__version__}, one process, one thread, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end (a shared machine: the best of several rounds is reported).",
        "",
        "| what | actions | seconds | scored actions/s | µs/action |",
        "|---|---|---|---|---|",
    ]
    for label, count, seconds in rows:
        lines.append(f"| {label} | {count:,} | {seconds:.3f} | {count / seconds:,.0f} | {1e6 * seconds / count:.2f} |")
    lines += [
        "",
        f"- rapidfuzz vs the DP baseline: **{reward_rate / base_reward_rate:.1f}x** on the reward alone, "
        f"**{full_rate / base_full_rate:.2f}x** with parsing.",
        f"- Target > 50,000 scored actions/s: reward only **{reward_rate:,.0f}/s** "
        f"({'met' if reward_rate > 50_000 else 'missed'}); parse + reward **{full_rate:,.0f}/s** "
        f"({'met' if full_rate > 50_000 else 'missed'}).",
        "- Why the DP baseline is close: names have 3-7 tokens and queries 1-4, so its table has ~20 cells, and both "
        f"share the tokenizer (a regex) and everything else. On 30-token texts rapidfuzz is "
        f"**{long_rate / base_long_rate:.0f}x** faster.",
        f"- The format check dominates: `parse_step` alone runs at {parse_rate:,.0f}/s, "
        f"{100 * (1 / parse_rate) / (1 / full_rate):.0f}% of the parse + reward time.",
    ]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
