"""Summary statistics without numpy/scipy: mean, sample std, standard error, Student-t 95 % CI.

The core depends on neither numpy nor scipy, and a group has a handful of seeds, so plain Python is
both enough and fast. The t quantile inverts the t CDF (regularised incomplete beta, continued
fraction as in Numerical Recipes) by bisection; tests check it against scipy.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, Iterable, List, Optional


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300

    def clamp(v: float) -> float:
        return v if abs(v) > tiny else tiny

    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 / clamp(1.0 - qab * x / qap)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / clamp(1.0 + aa * d)
        c = clamp(1.0 + aa / c)
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / clamp(1.0 + aa * d)
        c = clamp(1.0 + aa / c)
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=1024)
def t_ppf(q: float, df: float) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (0 < q < 1)."""
    if not 0.0 < q < 1.0:
        raise ValueError("q must be in (0, 1)")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def describe(values: Iterable[Any], confidence: float = 0.95) -> Dict[str, Any]:
    """n, mean, std (sample, ddof=1), sem, ci (Student t, two-sided), min, max of the numbers in
    ``values``; NaN and non-numbers are left out and counted in ``dropped``. Undefined entries
    (no values; std/sem/ci of one value) are None. An infinity makes mean and std infinite/NaN,
    as numpy would, rather than being dropped: a diverged run should show."""
    xs: List[float] = []
    dropped = 0
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            dropped += 1
        else:
            xs.append(float(v))
    n = len(xs)
    out: Dict[str, Optional[Any]] = {
        "n": n,
        "mean": None,
        "std": None,
        "sem": None,
        "ci": None,
        "min": None,
        "max": None,
        "dropped": dropped,
    }
    if not n:
        return out
    mean = math.fsum(xs) / n
    out.update(mean=mean, min=min(xs), max=max(xs))
    if n > 1 and all(math.isfinite(x) for x in xs):
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
        sem = std / math.sqrt(n)
        half = t_ppf(0.5 + confidence / 2.0, n - 1) * sem
        out.update(std=std, sem=sem, ci=[mean - half, mean + half])
    return out
