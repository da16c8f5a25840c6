"""Small, dependency-free interval estimates for run comparisons (A/B tests).

- :func:`wilson_interval`: a binomial proportion (Wilson score interval, Wilson 1927).
- :func:`diff_interval`: a difference of two independent proportions, Newcombe's hybrid score interval
  (Newcombe 1998, "method 10"), built from the two Wilson intervals.
- :func:`mean_interval`: a mean with a Student-t interval.
- :func:`welch_interval`: a difference of two means (Welch's unequal-variance t interval).
- :func:`paired_bootstrap`: any statistic of paired items (two models scored on the same test steps), by the
  percentile bootstrap (Efron & Tibshirani 1993, ch. 13): resample the items with replacement, recompute, take the
  quantiles. :func:`paired_mean_difference` is its common case, mean(b) - mean(a).

Quantiles come from `statistics.NormalDist` and :func:`t_quantile` (exact for 1 and 2 degrees of freedom, a table for
the usual 95% level, the Cornish-Fisher expansion otherwise), so no SciPy is needed.

>>> r = wilson_interval(5, 10)
>>> round(r.low, 4), round(r.high, 4)
(0.2366, 0.7634)
>>> r = diff_interval(48, 80, 56, 70)  # Newcombe (1998), example (a): 56/70 - 48/80
>>> round(r.estimate, 4), round(r.low, 4), round(r.high, 4)
(0.2, 0.0524, 0.3339)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from statistics import NormalDist

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Interval",
    "diff_interval",
    "mean_interval",
    "paired_bootstrap",
    "paired_mean_difference",
    "t_quantile",
    "welch_interval",
    "wilson_interval",
    "z_value",
]

# Two-sided 95% Student-t critical values t(0.975, df), df = 1..30 (the textbook table).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


class Interval(BaseModel):
    """A point estimate with a confidence interval. Bounds are None where undefined (no data, or one value)."""

    model_config = ConfigDict(frozen=True)

    estimate: float | None
    low: float | None
    high: float | None
    n: int = 0
    confidence: float = 0.95
    method: str = ""

    def format(self, percent: bool = False, digits: int = 1) -> str:
        """`'12.5% [4.1, 30.2]'` or `'3.20 [2.10, 4.30]'`; `'n/a'` when there is no estimate."""
        if self.estimate is None:
            return "n/a"
        scale, unit = (100.0, "%") if percent else (1.0, "")
        d = digits if percent else max(digits, 2)
        est = f"{self.estimate * scale:.{d}f}{unit}"
        if self.low is None or self.high is None:
            return est
        return f"{est} [{self.low * scale:.{d}f}, {self.high * scale:.{d}f}]"


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"Expect 0 < confidence < 1, actually: {confidence}")


def z_value(confidence: float = 0.95) -> float:
    """The two-sided normal critical value, e.g. 1.95996 for 95%."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile of Student's t with `df` degrees of freedom (df may be fractional, as in Welch's test).

    One path on every install (no SciPy): exact closed forms for df = 1 and 2, the textbook table for p = 0.975
    and integer df <= 30, and the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5) elsewhere: at 95% it is off by
    0.004 at df = 3, by under 1e-3 from df = 4 and under 1e-4 from df = 6, and tends to the normal quantile.

    >>> round(t_quantile(0.975, 4), 4), round(t_quantile(0.975, 1), 4), round(t_quantile(0.5, 7), 4)
    (2.7764, 12.7062, 0.0)
    """
    if not 0 < p < 1:
        raise ValueError(f"Expect 0 < p < 1, actually: {p}")
    if not df > 0:
        raise ValueError(f"Expect df > 0, actually: {df}")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    if float(df).is_integer() and df <= len(_T975) and abs(p - 0.975) < 1e-12:
        return _T975[int(df) - 1]
    if float(df).is_integer() and df <= len(_T975) and abs(p - 0.025) < 1e-12:
        return -_T975[int(df) - 1]
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval for `successes` out of `n` (better than the normal interval near 0 and 1).

    >>> wilson_interval(0, 0).estimate is None
    True
    """
    _check_confidence(confidence)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"Expect 0 <= successes <= n, actually: successes={successes}, n={n}")
    if n == 0:
        return Interval(estimate=None, low=None, high=None, n=0, confidence=confidence, method="wilson")
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return Interval(estimate=p, low=low, high=high, n=n, confidence=confidence, method="wilson")


def diff_interval(successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95) -> Interval:
    """An interval for p_b - p_a (B minus A) by Newcombe's hybrid score method (1998, method 10).

    With Wilson intervals (l_a, u_a) and (l_b, u_b) and d = p_b - p_a:
    low = d - sqrt((p_b - l_b)^2 + (u_a - p_a)^2), high = d + sqrt((u_b - p_b)^2 + (p_a - l_a)^2).
    """
    a = wilson_interval(successes_a, n_a, confidence)
    b = wilson_interval(successes_b, n_b, confidence)
    n = n_a + n_b
    if a.estimate is None or b.estimate is None:
        return Interval(estimate=None, low=None, high=None, n=n, confidence=confidence, method="newcombe")
    assert a.low is not None and a.high is not None and b.low is not None and b.high is not None
    d = b.estimate - a.estimate
    low = d - math.sqrt((b.estimate - b.low) ** 2 + (a.high - a.estimate) ** 2)
    high = d + math.sqrt((b.high - b.estimate) ** 2 + (a.estimate - a.low) ** 2)
    return Interval(estimate=d, low=max(-1.0, low), high=min(1.0, high), n=n, confidence=confidence,
                    method="newcombe")


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((x - mean) ** 2 for x in values) / (n - 1) if n > 1 else math.nan
    return mean, var


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean with a Student-t interval: mean ± t(1 - α/2, n - 1) · s / √n. Bounds are None for n < 2."""
    _check_confidence(confidence)
    n = len(values)
    if n == 0:
        return Interval(estimate=None, low=None, high=None, n=0, confidence=confidence, method="t")
    mean, var = _mean_var(values)
    if n < 2:
        return Interval(estimate=mean, low=None, high=None, n=n, confidence=confidence, method="t")
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * math.sqrt(var / n)
    return Interval(estimate=mean, low=mean - half, high=mean + half, n=n, confidence=confidence, method="t")


def welch_interval(values_a: Sequence[float], values_b: Sequence[float], confidence: float = 0.95) -> Interval:
    """An interval for mean_b - mean_a by Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom).

    Bounds are None when either side has fewer than two values; when both variances are 0 the interval is the point.
    """
    _check_confidence(confidence)
    n_a, n_b = len(values_a), len(values_b)
    if n_a == 0 or n_b == 0:
        return Interval(estimate=None, low=None, high=None, n=n_a + n_b, confidence=confidence, method="welch")
    mean_a, var_a = _mean_var(values_a)
    mean_b, var_b = _mean_var(values_b)
    d = mean_b - mean_a
    if n_a < 2 or n_b < 2:
        return Interval(estimate=d, low=None, high=None, n=n_a + n_b, confidence=confidence, method="welch")
    va, vb = var_a / n_a, var_b / n_b
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(estimate=d, low=d, high=d, n=n_a + n_b, confidence=confidence, method="welch")
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    half = t_quantile(1 - (1 - confidence) / 2, df) * se
    return Interval(estimate=d, low=d - half, high=d + half, n=n_a + n_b, confidence=confidence, method="welch")


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The `q` quantile of sorted values, linear between order statistics (R's type 7, NumPy's default).

    >>> _quantile([0.0, 1.0, 2.0, 3.0], 0.5), round(_quantile([0.0, 1.0, 2.0, 3.0], 0.025), 6)
    (1.5, 0.075)
    """
    position = q * (len(ordered) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def paired_bootstrap(n: int, statistic: Callable[[Sequence[int]], float], *, resamples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> Interval:
    """The percentile bootstrap interval of `statistic` over `n` paired items.

    `statistic(indices)` computes the quantity (e.g. model B's accuracy minus model A's) on the items at `indices`,
    which may repeat; the estimate is `statistic(range(n))`. Each of `resamples` draws takes `n` indices uniformly
    with replacement from a `random.Random(seed)`, so the same call gives the same interval, and two statistics
    bootstrapped with the same `n` and `seed` see the same resamples. The interval is the (1 - confidence) / 2 and
    (1 + confidence) / 2 quantiles of the resampled values. Pairing is the caller's: index i must mean the same test
    item for both models.

    >>> r = paired_bootstrap(4, lambda idx: sum(idx) / len(idx), resamples=500, seed=1)
    >>> r.estimate, 0.0 <= r.low < 1.5 < r.high <= 3.0, r.method
    (1.5, True, 'paired bootstrap (500 resamples)')
    """
    _check_confidence(confidence)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"Expect n as an int >= 0, actually: {n!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"Expect resamples as an int >= 1, actually: {resamples!r}")
    method = f"paired bootstrap ({resamples} resamples)"
    if n == 0:
        return Interval(estimate=None, low=None, high=None, n=0, confidence=confidence, method=method)
    rng = random.Random(seed)
    estimate = float(statistic(range(n)))
    values = sorted(float(statistic([rng.randrange(n) for _ in range(n)])) for _ in range(resamples))
    alpha = (1 - confidence) / 2
    return Interval(estimate=estimate, low=_quantile(values, alpha), high=_quantile(values, 1 - alpha), n=n,
                    confidence=confidence, method=method)


def paired_mean_difference(values_a: Sequence[float], values_b: Sequence[float], *, resamples: int = 2000,
                           seed: int = 0, confidence: float = 0.95) -> Interval:
    """mean(b) - mean(a) over paired items (`values_a[i]` and `values_b[i]` score the same item) with its
    `paired_bootstrap` interval. For 0/1 scores this is the difference of two accuracies on one test set.

    >>> r = paired_mean_difference([0, 0, 1, 1], [1, 1, 1, 1], resamples=200)
    >>> r.estimate, r.low >= 0.0, r.high
    (0.5, True, 1.0)
    """
    if len(values_a) != len(values_b):
        raise ValueError(f"Expect paired values (the same length), actually: {len(values_a)} and {len(values_b)}")
    diffs = [float(b) - float(a) for a, b in zip(values_a, values_b, strict=True)]
    return paired_bootstrap(len(diffs), lambda idx: math.fsum(diffs[i] for i in idx) / len(idx),
                            resamples=resamples, seed=seed, confidence=confidence)
