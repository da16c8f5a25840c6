"""The anti-hacking property of Shop-R1's reward: always answering `terminate` must not pay.

A realistic gold mix (55% click, 25% type_and_submit, 20% terminate, with the store's element names and search
queries) is scored against sampled predictions of three policies:

- `terminate`: always `{"type": "terminate"}`, the reward hack the paper's DARS is there to stop;
- `sft`: an SFT-like policy, action type right 70% of the time (else one of the two other types), and when the type is
  right, the name (click) or the text (type_and_submit) right 50% of the time (else a sibling element on the page, or a
  perturbed or different query);
- `weak`: a policy at the paper's SFT level (Table 2: 22.25% type accuracy; names/texts right 30% of the time).

What we find (N = 3000, seeds 0 and 1; printed with `pytest -s`):

| reward       | E[terminate] | E[sft]  | E[weak] | sft / terminate | weak / terminate |
|--------------|--------------|---------|---------|-----------------|------------------|
| Shop-R1      | 0.559        | 329     | 80.0    | ~590x           | ~143x            |
| no DARS      | 0.559        | 1.164   | 0.691   | ~2.1x           | ~1.24x           |
| binary       | 0.195        | 0.421   | 0.099   | ~2.2x           | ~0.51x (flipped) |
| binary + fmt | 0.695        | 0.921   | 0.599   | ~1.3x           | ~0.86x (flipped) |

With DARS the gap is two to three orders of magnitude, for both policies. Without DARS the ordering still holds on
this mix (a correct type is worth +0.3 and terminate earns no attribute credit), but the gap shrinks to a ~2x ratio,
and to ~1.2x at the paper's SFT level: the signal that separates learning the hard long-text actions from spamming
terminate is tiny. With the binary reward the ordering flips at the paper's SFT level: spamming terminate earns about
twice what the weak policy earns. Table 4's binary action reward keeps the format reward (`binary + fmt`: the same
+0.5 for every well-formed output, so the ratios shrink towards 1), and the ordering is still flipped. This matches the
paper's Table 4, where the no-DARS and binary runs collapse to terminate.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from training.rewards import RewardConfig, ShopR1Reward

BRANDS = ("acme", "northwind", "summit", "ridge", "trailhead")
ITEMS = ("trail runner", "hiking boot", "rain jacket", "camp stove", "wool socks", "day pack", "down vest")
COLORS = ("navy", "black", "olive", "red")
SIZES = ("us_8", "us_9", "us_10", "small", "large")
WORDS = ("waterproof", "lightweight", "mens", "womens", "cheap", "wool", "insulated")
TYPES = ("click", "type_and_submit", "terminate")
N = 3000


def slug(text: str) -> str:
    return text.replace(" ", "_")


def click_name(rng: random.Random) -> str:
    """An element name as the env derives them from the store's pages."""
    brand, item = rng.choice(BRANDS), slug(rng.choice(ITEMS))
    return rng.choice([
        f"search_results.{brand}_{item}.title",
        f"search_results.{brand}_{item}.image",
        f"product_options.color.{rng.choice(COLORS)}",
        f"product_options.size.{rng.choice(SIZES)}",
        "add_to_cart.buy_now",
        "add_to_cart.add_to_cart",
        "nav_bar.homepage",
        f"refinements.brand.{brand}",
        "sort_by.price_low_to_high",
        "search_results.pagination.next",
        "cart.proceed_to_checkout",
    ])


def query(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(0, 2))
    if rng.random() < 0.3:
        words.append(rng.choice(BRANDS))
    return " ".join([*words, rng.choice(ITEMS)])


def gold_action(rng: random.Random) -> dict[str, str]:
    u = rng.random()
    if u < 0.55:
        return {"type": "click", "name": click_name(rng)}
    if u < 0.80:
        return {"type": "type_and_submit", "name": "search_input", "text": query(rng)}
    return {"type": "terminate"}


def near_query(text: str, rng: random.Random) -> str:
    """A wrong query: a word dropped, a word added, or another query."""
    tokens = text.split()
    u = rng.random()
    if u < 1 / 3 and len(tokens) > 1:
        tokens.pop(rng.randrange(len(tokens)))
    elif u < 2 / 3:
        tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(("for", "men", "best", "sale")))
    else:
        return query(rng)
    return " ".join(tokens)


def predict(gold: dict[str, str], rng: random.Random, p_type: float, p_value: float) -> dict[str, str]:
    kind = gold["type"] if rng.random() < p_type else rng.choice([t for t in TYPES if t != gold["type"]])
    value_right = rng.random() < p_value
    if kind == "terminate":
        return {"type": "terminate"}
    if kind == "click":
        if gold["type"] == "click" and value_right:
            return dict(gold)
        name = click_name(rng)
        while name == gold.get("name"):
            name = click_name(rng)
        return {"type": "click", "name": name}
    if gold["type"] == "type_and_submit":
        text = gold["text"] if value_right else near_query(gold["text"], rng)
        return {"type": "type_and_submit", "name": "search_input", "text": text}
    return {"type": "type_and_submit", "name": "search_input", "text": query(rng)}


def completion(action: dict[str, str]) -> str:
    return json.dumps({"rationale": "That is what I would do next.", "action": action})


@pytest.fixture(scope="module")
def sampled() -> tuple[list[dict[str, str]], dict[str, list[str]]]:
    rng = random.Random(0)
    golds = [gold_action(rng) for _ in range(N)]
    policy_rng = random.Random(1)
    policies = {
        "terminate": [completion({"type": "terminate"}) for _ in golds],
        "sft": [completion(predict(g, policy_rng, 0.70, 0.50)) for g in golds],
        "weak": [completion(predict(g, policy_rng, 0.2225, 0.30)) for g in golds],
    }
    return golds, policies


def expected_rewards(config: RewardConfig, golds: list[dict[str, str]], policies: dict[str, list[str]]
                     ) -> dict[str, float]:
    reward = ShopR1Reward(config)
    out: dict[str, float] = {}
    for name, completions in policies.items():
        values = reward(None, completions, gold_action=golds)
        out[name] = sum(v for v in values if v is not None) / len(values)
    return out


def test_the_sample_is_realistic(sampled: Any) -> None:
    golds, policies = sampled
    share = {t: sum(g["type"] == t for g in golds) / len(golds) for t in TYPES}
    assert share["click"] == pytest.approx(0.55, abs=0.03)
    assert share["type_and_submit"] == pytest.approx(0.25, abs=0.03)
    assert share["terminate"] == pytest.approx(0.20, abs=0.03)
    sft_types = [json.loads(c)["action"]["type"] for c in policies["sft"]]
    type_acc = sum(p == g["type"] for p, g in zip(sft_types, golds, strict=True)) / len(golds)
    assert type_acc == pytest.approx(0.70, abs=0.03)


def test_shop_r1_makes_terminate_spam_lose_by_orders_of_magnitude(sampled: Any) -> None:
    golds, policies = sampled
    r = expected_rewards(RewardConfig(), golds, policies)
    print("Shop-R1", r)
    # always terminate: 0.5 format everywhere + 0.3 on the ~20% terminate golds
    assert r["terminate"] == pytest.approx(0.5 + 0.3 * 0.2, abs=0.3 * 0.03)
    assert r["sft"] > 300 * r["terminate"]
    assert r["weak"] > 50 * r["terminate"]


def test_without_dars_the_gap_shrinks_drastically(sampled: Any) -> None:
    golds, policies = sampled
    with_dars = expected_rewards(RewardConfig(), golds, policies)
    r = expected_rewards(RewardConfig(use_dars=False), golds, policies)
    print("no DARS", r)
    # the ordering holds on this mix, but the ratio falls from ~600x to ~2x (and ~1.2x at the paper's SFT level)
    assert r["terminate"] < r["weak"] < r["sft"]
    assert r["sft"] / r["terminate"] < 3
    assert r["weak"] / r["terminate"] < 1.5
    assert with_dars["sft"] / with_dars["terminate"] > 100 * (r["sft"] / r["terminate"])


@pytest.mark.parametrize("use_format", [False, True], ids=["table2_baseline", "table4_format_kept"])
def test_binary_reward_flips_at_the_papers_sft_level(sampled: Any, use_format: bool) -> None:
    golds, policies = sampled
    r = expected_rewards(RewardConfig(binary=True, use_format=use_format), golds, policies)
    print("binary", "+ format" if use_format else "", r)
    # always terminate is exact on every terminate gold (~20%), plus 0.5 format everywhere when the format is kept
    assert r["terminate"] == pytest.approx(0.2 + (0.5 if use_format else 0.0), abs=0.03)
    assert r["sft"] / r["terminate"] < 3
    assert r["terminate"] > r["weak"]  # the hack pays more than a weak-but-honest policy
