"""`agent.analysis.paired_stats` and `agent.analysis.power` against hand-computed values, and the A/A check: over many
simulated A/A experiments the 95% intervals (paired and unpaired) cover 0 about 95% of the time."""

from __future__ import annotations

import math
import random

import pytest

from agent.analysis.paired_stats import PairedTable, mcnemar_exact_p, paired_diff_interval, paired_mean_interval
from agent.analysis.power import paired_mean_n, paired_proportion_n, two_proportion_n
from agent.analysis.stats import diff_interval, mean_interval, welch_interval, wilson_interval


# ------------------------------------------------------------------------------------------------------ McNemar
def test_mcnemar_exact_by_hand():
    assert mcnemar_exact_p(3, 0) == 0.25  # 2 · (1/2)^3
    assert mcnemar_exact_p(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact_p(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)  # 0.109375
    assert mcnemar_exact_p(5, 5) == 1.0 and mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(8, 2) == mcnemar_exact_p(2, 8), "two-sided: symmetric"
    assert mcnemar_exact_p(0, 200) < 1e-50, "large counts stay exact"
    with pytest.raises(ValueError, match="Expect non-negative discordant counts, actually: -1, 2"):
        mcnemar_exact_p(-1, 2)


def test_paired_table_from_outcomes():
    t = PairedTable.from_outcomes([True, True, False, False], [True, False, True, False])
    assert (t.both, t.a_only, t.b_only, t.neither, t.n, t.discordant) == (1, 1, 1, 1, 4, 2)
    with pytest.raises(ValueError, match="Expect one outcome per pair on each arm, actually: 2 on A and 1 on B"):
        PairedTable.from_outcomes([True, False], [True])
    with pytest.raises(ValueError, match="non-negative"):
        PairedTable(1, -1, 0, 0)


# --------------------------------------------------------------------------------------------- paired interval
def test_paired_interval_without_correlation_is_newcombes_unpaired_one():
    # both 3, A only 1, B only 4, neither 2: both·neither - a·b = 2 < n/2, so phi* = 0 and the paired interval is
    # the square-and-add of Wilson(4/10) = (0.168179, 0.687327) and Wilson(7/10) = (0.396776, 0.892210):
    # low = 0.3 - sqrt(0.303224² + 0.287327²) = -0.117732, high = 0.3 + sqrt(0.192210² + 0.231821²) = 0.601139
    r = paired_diff_interval(PairedTable(3, 1, 4, 2))
    assert r.estimate == pytest.approx(0.3) and r.method == "newcombe-paired" and r.n == 10
    assert r.low == pytest.approx(-0.117732, abs=2e-5) and r.high == pytest.approx(0.601139, abs=2e-5)
    same = diff_interval(4, 10, 7, 10)
    assert (r.low, r.high) == pytest.approx((same.low, same.high))


def test_paired_interval_with_perfect_negative_correlation_adds_the_margins():
    # 3 A-only and 3 B-only pairs: phi = (0 - 9)/sqrt(3·3·3·3) = -1, so each side is the sum of the Wilson margins:
    # Wilson(3/6) half-width = z·sqrt(1/24 + z²/144)/(1 + z²/6) = 0.312384; interval ±0.624767
    r = paired_diff_interval(PairedTable(0, 3, 3, 0))
    assert r.estimate == 0
    assert r.low == pytest.approx(-0.624767, abs=1e-5) and r.high == pytest.approx(0.624767, abs=1e-5)


def test_paired_interval_with_positive_correlation_is_narrower():
    # both 40, A only 2, B only 8, neither 50 (n = 100): phi* = (2000 - 16 - 50)/sqrt(42·58·48·52) = 0.784325
    t = PairedTable(40, 2, 8, 50)
    a, b = wilson_interval(42, 100), wilson_interval(48, 100)
    phi = 1934 / math.sqrt(42 * 58 * 48 * 52)
    low = 0.06 - math.sqrt((0.48 - b.low) ** 2 - 2 * phi * (0.48 - b.low) * (a.high - 0.42) + (a.high - 0.42) ** 2)
    high = 0.06 + math.sqrt((b.high - 0.48) ** 2 - 2 * phi * (b.high - 0.48) * (0.42 - a.low) + (0.42 - a.low) ** 2)
    r = paired_diff_interval(t)
    assert phi == pytest.approx(0.784325, abs=1e-6)
    assert (r.low, r.high) == pytest.approx((low, high)) and r.low == pytest.approx(-0.00352, abs=1e-5)
    unpaired = diff_interval(42, 100, 48, 100)
    assert r.high - r.low < 0.6 * (unpaired.high - unpaired.low), "pairing removes the between-shopper spread"
    assert paired_diff_interval(PairedTable(0, 0, 0, 0)).estimate is None


def test_paired_mean_interval_by_hand():
    # differences 1, 2, 1, 2: mean 1.5, s = sqrt(1/3), t(0.975, 3) = 3.1824: 1.5 ± 3.1824·0.57735/2 = 1.5 ± 0.918680
    r = paired_mean_interval([3, 5, 4, 6], [4, 7, 5, 8])
    assert r.estimate == 1.5 and r.method == "paired-t"
    assert r.low == pytest.approx(0.581320, abs=1e-5) and r.high == pytest.approx(2.418680, abs=1e-5)
    unpaired = welch_interval([3, 5, 4, 6], [4, 7, 5, 8])
    assert unpaired.low < 0 < r.low, "the paired interval sees what the unpaired one cannot"
    with pytest.raises(ValueError, match="Expect one value per pair on each arm, actually: 2 on A and 3 on B"):
        paired_mean_interval([1, 2], [1, 2, 3])


# ------------------------------------------------------------------------------------------------------- power
def test_sample_sizes_by_hand():
    # McNemar (Connor 1987): discordant 0.2, difference 0.1: (1.959964·sqrt(.2) + 0.841621·sqrt(.19))² / .01 = 154.6
    assert paired_proportion_n(0.05, 0.15) == 155
    assert paired_proportion_n(0.15, 0.05) == 155, "either direction"
    # Two proportions 0.5 vs 0.6: (1.959964·sqrt(2·.55·.45) + 0.841621·sqrt(.25 + .24))² / .01 = 387.3
    assert two_proportion_n(0.5, 0.6) == 388
    # Paired t: ((1.959964 + 0.841621)·2/1)² + 1.959964²/2 = 31.39 + 1.92 = 33.3
    assert paired_mean_n(1.0, 2.0) == 34
    assert paired_mean_n(-1.0, 2.0) == 34
    # 90% power needs more; no effect needs infinitely many
    assert paired_proportion_n(0.05, 0.15, power=0.9) > 155
    assert paired_proportion_n(0.1, 0.1) is None and two_proportion_n(0.3, 0.3) is None and paired_mean_n(0, 1) is None
    assert paired_mean_n(0.5, 0.0) == 2
    for bad, match in ((lambda: paired_proportion_n(1.2, 0), "Expect 0 <= p_a_only <= 1, actually: 1.2"),
                       (lambda: two_proportion_n(0.1, 0.2, alpha=0), "Expect 0 < alpha < 1, actually: 0"),
                       (lambda: paired_mean_n(1, -1), "sd_diff >= 0"),
                       (lambda: paired_mean_n(1, 1, power=1), "Expect 0 < power < 1, actually: 1")):
        with pytest.raises(ValueError, match=match):
            bad()


def test_sample_size_gives_the_promised_power():
    """Simulate McNemar experiments at the computed size: about 80% of them reject "no difference"."""
    n = paired_proportion_n(0.05, 0.15)
    rng = random.Random(7)
    rejections = 0
    runs = 400
    for _ in range(runs):
        a_only = b_only = 0
        for _ in range(n):
            u = rng.random()
            a_only += u < 0.05
            b_only += 0.05 <= u < 0.20
        rejections += mcnemar_exact_p(a_only, b_only) < 0.05
    assert 0.70 <= rejections / runs <= 0.88, rejections / runs  # exact tests are a little conservative


# ----------------------------------------------------------------------------------------------------- A/A check
def _aa_pairs(rng: random.Random, n: int) -> tuple[list[bool], list[bool], list[float], list[float]]:
    """An A/A experiment: each shopper has its own purchase propensity and step count, the same on both arms;
    the arms differ only by chance (independent draws given the shopper)."""
    bought_a, bought_b, steps_a, steps_b = [], [], [], []
    for _ in range(n):
        propensity = rng.betavariate(2, 2)
        typical = rng.uniform(4, 14)
        bought_a.append(rng.random() < propensity)
        bought_b.append(rng.random() < propensity)
        steps_a.append(round(rng.gauss(typical, 2)))
        steps_b.append(round(rng.gauss(typical, 2)))
    return bought_a, bought_b, steps_a, steps_b


def test_aa_intervals_cover_zero_at_the_nominal_rate():
    """2,000 simulated A/A experiments of 100 sessions per arm: each 95% interval covers the true difference, 0,
    about 95% of the time (the binomial spread of the estimate over 2,000 runs is ±0.5%), and McNemar rejects about
    5%. Paired intervals on the same shoppers on both arms (as `abtest` runs them); unpaired intervals on two
    independent groups of shoppers (what they assume)."""
    rng = random.Random(13)
    runs = 2000
    covers = {"paired conversion": 0, "unpaired conversion": 0, "paired steps": 0, "unpaired steps": 0}
    rejects = 0
    unpaired_on_pairs = 0
    for _ in range(runs):
        bought_a, bought_b, steps_a, steps_b = _aa_pairs(rng, 100)
        table = PairedTable.from_outcomes(bought_a, bought_b)
        other_bought, _, other_steps, _ = _aa_pairs(rng, 100)  # other shoppers: an independent arm
        intervals = {
            "paired conversion": paired_diff_interval(table),
            "unpaired conversion": diff_interval(sum(bought_a), 100, sum(other_bought), 100),
            "paired steps": paired_mean_interval(steps_a, steps_b),
            "unpaired steps": welch_interval(steps_a, other_steps),
        }
        for name, r in intervals.items():
            covers[name] += r.low <= 0 <= r.high
        rejects += mcnemar_exact_p(table.a_only, table.b_only) < 0.05
        welch = welch_interval(steps_a, steps_b)
        unpaired_on_pairs += welch.low <= 0 <= welch.high
    for name, n in covers.items():
        assert 0.93 <= n / runs <= 0.975, (name, n / runs)
    assert 0.015 <= rejects / runs <= 0.065, rejects / runs
    # On paired data the unpaired interval ignores that the shoppers are the same: valid but wider than it needs to be.
    assert unpaired_on_pairs / runs > 0.975


def test_mean_interval_coverage_is_not_an_accident_of_the_check():
    """The same check fails for an interval that is too narrow (a z interval at 80%): the A/A test can fail."""
    rng = random.Random(3)
    runs, covered = 500, 0
    for _ in range(runs):
        _, _, steps_a, steps_b = _aa_pairs(rng, 100)
        r = mean_interval([b - a for a, b in zip(steps_a, steps_b, strict=True)], confidence=0.8)
        covered += r.low <= 0 <= r.high
    assert not 0.93 <= covered / runs <= 0.985
