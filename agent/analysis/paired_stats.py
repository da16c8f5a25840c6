"""Paired A/B statistics: the same shopper (persona, intent, seed) on both arms is one pair.

`abtest` runs every persona with the same session id and seed on A and on B, so each session of A has a twin in B.
Pairing removes the between-shopper spread from the comparison (a patient shopper is patient on both arms), so a
paired test needs fewer sessions than one that treats the arms as independent samples.

- :func:`mcnemar_exact_p`: the exact two-sided McNemar test for conversion: under "no effect" each discordant pair
  (bought on one arm only) is equally likely to go either way, so the count of B-only pairs is Binomial(b + c, 1/2).
- :func:`paired_diff_interval`: an interval for p_B - p_A from paired yes/no outcomes by Newcombe's hybrid score
  method for paired data (Newcombe 1998b, method 10): Wilson intervals for each arm, combined with a correction for
  the correlation between the arms.
- :func:`paired_mean_interval`: the paired t interval for mean(B - A) of a number per pair (steps, searches).

>>> table = PairedTable.from_outcomes([True, True, False, False, True], [True, False, False, True, False])
>>> table
PairedTable(both=1, a_only=2, b_only=1, neither=1)
>>> mcnemar_exact_p(table.a_only, table.b_only)  # 1 vs 2 discordant: nowhere near significant
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .stats import Interval, mean_interval, wilson_interval

__all__ = ["PairedTable", "mcnemar_exact_p", "paired_diff_interval", "paired_mean_interval"]


@dataclass(frozen=True)
class PairedTable:
    """The 2x2 table of paired yes/no outcomes: both arms, A only, B only, neither."""

    both: int
    a_only: int
    b_only: int
    neither: int

    def __post_init__(self) -> None:
        if min(self.both, self.a_only, self.b_only, self.neither) < 0:
            raise ValueError(f"Expect non-negative counts, actually: {self}")

    @classmethod
    def from_outcomes(cls, a: Sequence[bool], b: Sequence[bool]) -> PairedTable:
        """Count pairs (a[i], b[i]); the two sequences are the same shoppers in the same order."""
        if len(a) != len(b):
            raise ValueError(f"Expect one outcome per pair on each arm, actually: {len(a)} on A and {len(b)} on B")
        pairs = list(zip(a, b, strict=True))
        return cls(both=sum(x and y for x, y in pairs), a_only=sum(x and not y for x, y in pairs),
                   b_only=sum(y and not x for x, y in pairs), neither=sum(not x and not y for x, y in pairs))

    @property
    def n(self) -> int:
        return self.both + self.a_only + self.b_only + self.neither

    @property
    def discordant(self) -> int:
        return self.a_only + self.b_only


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: 2 · P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), at most 1.

    1.0 when there are no discordant pairs (nothing to tell the arms apart).

    >>> round(mcnemar_exact_p(0, 6), 5), round(mcnemar_exact_p(2, 10), 5)  # 2/64; 2·(1 + 12 + 66)/4096
    (0.03125, 0.03857)
    """
    if a_only < 0 or b_only < 0:
        raise ValueError(f"Expect non-negative discordant counts, actually: {a_only}, {b_only}")
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_diff_interval(table: PairedTable, confidence: float = 0.95) -> Interval:
    """An interval for p_B - p_A from paired outcomes, Newcombe (1998b) method 10.

    With p_A = (both + a_only)/n, p_B = (both + b_only)/n, Wilson intervals (l_A, u_A), (l_B, u_B), d = p_B - p_A and
    phi the correlation of the table (with Newcombe's continuity correction: for a positive association,
    phi = max(both·neither - a_only·b_only - n/2, 0) / sqrt(row and column totals)):
    low = d - sqrt((p_B - l_B)^2 - 2 phi (p_B - l_B)(u_A - p_A) + (u_A - p_A)^2), high likewise with the other sides.
    """
    n = table.n
    a = wilson_interval(table.both + table.a_only, n, confidence)
    b = wilson_interval(table.both + table.b_only, n, confidence)
    if a.estimate is None or b.estimate is None:
        return Interval(estimate=None, low=None, high=None, n=0, confidence=confidence, method="newcombe-paired")
    assert a.low is not None and a.high is not None and b.low is not None and b.high is not None
    totals = ((table.both + table.a_only) * (table.b_only + table.neither) * (table.both + table.b_only)
              * (table.a_only + table.neither))
    cross = table.both * table.neither - table.a_only * table.b_only
    if totals == 0:
        phi = 0.0
    elif cross > 0:
        phi = max(cross - n / 2, 0.0) / math.sqrt(totals)
    else:
        phi = cross / math.sqrt(totals)
    d = b.estimate - a.estimate
    db_lo, db_hi = b.estimate - b.low, b.high - b.estimate
    da_lo, da_hi = a.estimate - a.low, a.high - a.estimate
    low = d - math.sqrt(max(0.0, db_lo**2 - 2 * phi * db_lo * da_hi + da_hi**2))
    high = d + math.sqrt(max(0.0, db_hi**2 - 2 * phi * db_hi * da_lo + da_lo**2))
    return Interval(estimate=d, low=max(-1.0, low), high=min(1.0, high), n=n, confidence=confidence,
                    method="newcombe-paired")


def paired_mean_interval(values_a: Sequence[float], values_b: Sequence[float], confidence: float = 0.95) -> Interval:
    """The paired t interval for mean(B - A): `mean_interval` of the per-pair differences b[i] - a[i].

    >>> r = paired_mean_interval([3, 5, 4, 6], [4, 7, 5, 8])  # differences 1, 2, 1, 2
    >>> r.estimate, round(r.low, 4), round(r.high, 4)  # 1.5 ± 3.1824 · sqrt(1/3) / 2
    (1.5, 0.5813, 2.4187)
    """
    if len(values_a) != len(values_b):
        raise ValueError(f"Expect one value per pair on each arm, actually: {len(values_a)} on A and "
                         f"{len(values_b)} on B")
    diffs = [float(b) - float(a) for a, b in zip(values_a, values_b, strict=True)]
    r = mean_interval(diffs, confidence)
    return r.model_copy(update={"method": "paired-t"})
