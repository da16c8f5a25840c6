"""`agent.analysis.stats.paired_bootstrap` and `paired_mean_difference`: hand-checkable cases, determinism, and
agreement with the normal approximation where it holds."""

from __future__ import annotations

import doctest
import math

import pytest

import agent.analysis.stats
from agent.analysis.stats import paired_bootstrap, paired_mean_difference


def test_equal_scores_give_a_zero_interval_and_a_constant_shift_gives_the_point():
    a = [0, 1, 1, 0, 1]
    same = paired_mean_difference(a, a)
    assert (same.estimate, same.low, same.high, same.n) == (0.0, 0.0, 0.0, 5)
    shift = paired_mean_difference([0.1, 0.2, 0.3], [0.6, 0.7, 0.8])
    assert shift.estimate == pytest.approx(0.5) and shift.low == pytest.approx(0.5) and shift.high == pytest.approx(0.5)


def test_two_items_by_hand():
    # differences (1, 0): a resample of 2 is (0,0), mixed or (1,1) with probability 1/4, 1/2, 1/4, so its mean is
    # 0, 0.5 or 1; the 2.5% and 97.5% quantiles of 4000 draws are 0 and 1.
    r = paired_mean_difference([0, 0], [1, 0], resamples=4000, seed=3)
    assert (r.estimate, r.low, r.high) == (0.5, 0.0, 1.0)


def test_it_agrees_with_the_normal_interval_on_many_items():
    # 400 paired items: d_i = b_i - a_i is +1 on 240 and -1 on 160, so mean 0.2 and variance 1 - 0.04 = 0.96; the
    # normal interval is 0.2 ± 1.96 · sqrt(0.96 / 400).
    a = [0] * 240 + [1] * 160
    b = [1] * 240 + [0] * 160
    r = paired_mean_difference(a, b, resamples=3000, seed=0)
    half = 1.959964 * math.sqrt(0.96 / 400)  # 0.0960
    assert r.estimate == pytest.approx(0.2)
    assert r.low == pytest.approx(0.2 - half, abs=0.012) and r.high == pytest.approx(0.2 + half, abs=0.012)


def test_seeded_and_deterministic_and_shared_resamples():
    a, b = [0, 1, 0, 1, 1, 0, 0, 1], [1, 1, 0, 1, 0, 1, 1, 1]
    first = paired_mean_difference(a, b, seed=7)
    assert paired_mean_difference(a, b, seed=7) == first
    # the same n and seed draw the same indices, whatever the statistic; another seed draws others
    seen: list[list[list[int]]] = [[], [], []]
    for k, seed in ((0, 7), (1, 7), (2, 8)):
        paired_bootstrap(8, lambda idx, k=k: seen[k].append(list(idx)) or 0.0, resamples=5, seed=seed)
    assert seen[0] == seen[1] and len(seen[0]) == 6 and seen[0][0] == list(range(8))
    assert seen[2][1:] != seen[0][1:]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="Expect paired values \\(the same length\\), actually: 2 and 3"):
        paired_mean_difference([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="Expect resamples as an int >= 1, actually: 0"):
        paired_bootstrap(3, len, resamples=0)
    with pytest.raises(ValueError, match="Expect n as an int >= 0, actually: -1"):
        paired_bootstrap(-1, len)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(3, len, confidence=1.5)
    empty = paired_mean_difference([], [])
    assert (empty.estimate, empty.low, empty.high) == (None, None, None)


def test_doctests():
    assert doctest.testmod(agent.analysis.stats).failed == 0
