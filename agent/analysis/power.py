"""How many sessions an A/B test needs: sample sizes from a pilot's measured effect (normal approximations).

Each function answers "how many sessions per arm to detect this effect with `power` at two-sided level `alpha`",
rounded up; None when the effect is 0 (no finite number detects it) or the pilot has no spread to plan with.

- :func:`paired_proportion_n`: pairs (= sessions per arm in `abtest`) for McNemar's test, from the discordant rates
  (Connor 1987, Biometrics 43:207): n = (z_a sqrt(p_disc) + z_b sqrt(p_disc - d^2))^2 / d^2.
- :func:`two_proportion_n`: sessions per arm for two independent proportions (Fleiss, Levin & Paik 2003, 4.14,
  without continuity correction).
- :func:`paired_mean_n`: pairs for a paired t test on mean differences: ((z_a + z_b) s_d / d)^2 + z_a^2 / 2, the last
  term Guenther's (1981) correction for estimating the variance.

>>> paired_proportion_n(0.05, 0.15)  # (1.96·sqrt(.2) + 0.8416·sqrt(.19))^2 / .01 = 154.6
155
>>> two_proportion_n(0.5, 0.6)  # (1.96·sqrt(2·.55·.45) + 0.8416·sqrt(.25 + .24))^2 / .01 = 387.3
388
>>> paired_mean_n(1.0, 2.0)  # the differences' mean 1, sd 2
34
"""

from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["paired_mean_n", "paired_proportion_n", "two_proportion_n"]

_Z = NormalDist()


def _z(alpha: float, power: float) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise ValueError(f"Expect 0 < alpha < 1, actually: {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"Expect 0 < power < 1, actually: {power}")
    return _Z.inv_cdf(1 - alpha / 2), _Z.inv_cdf(power)


def _rate(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"Expect 0 <= {name} <= 1, actually: {value}")


def paired_proportion_n(p_a_only: float, p_b_only: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Pairs needed for McNemar's test, from the rates of A-only and B-only pairs (Connor 1987)."""
    _rate("p_a_only", p_a_only)
    _rate("p_b_only", p_b_only)
    za, zb = _z(alpha, power)
    d = p_b_only - p_a_only
    disc = p_a_only + p_b_only
    if d == 0 or disc > 1:
        return None
    return math.ceil((za * math.sqrt(disc) + zb * math.sqrt(max(0.0, disc - d * d))) ** 2 / (d * d))


def two_proportion_n(p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Sessions per arm to tell two independent proportions apart (no continuity correction)."""
    _rate("p_a", p_a)
    _rate("p_b", p_b)
    za, zb = _z(alpha, power)
    d = p_b - p_a
    if d == 0:
        return None
    bar = (p_a + p_b) / 2
    top = za * math.sqrt(2 * bar * (1 - bar)) + zb * math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))
    return math.ceil(top**2 / (d * d))


def paired_mean_n(mean_diff: float, sd_diff: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Pairs needed for a paired t test to detect `mean_diff` when the differences have spread `sd_diff`."""
    if not (math.isfinite(mean_diff) and math.isfinite(sd_diff)) or sd_diff < 0:
        raise ValueError(f"Expect a finite mean_diff and sd_diff >= 0, actually: {mean_diff}, {sd_diff}")
    za, zb = _z(alpha, power)
    if mean_diff == 0 or sd_diff == 0:
        return None if mean_diff == 0 else 2  # no spread: any two pairs show it
    return math.ceil(((za + zb) * sd_diff / mean_diff) ** 2 + za * za / 2)
