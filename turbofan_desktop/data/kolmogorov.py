"""The two-sided Kolmogorov distribution for a finite sample: ``P(D_n >= d)``, in numpy only.

``D_n = sup |F_n(x) - F(x)|`` of ``n`` draws from a continuous ``F``. The drift check needs its tail
(the KS p-value) and the app does not ship scipy for that one function, so this module computes it
with the methods Simard & L'Ecuyer (2011, J. Stat. Softw. 39(11)) recommend, picking per ``(n, d)``:

* ``n d <= 1`` and ``n d >= n - 1``: Ruben & Gambino's closed forms (exact).
* ``d >= 0.5``, or a far tail (``n d^2 >= 2.2``; ``>= 4`` when ``n <= 140``): twice the one-sided
  Smirnov tail, summed exactly (Birnbaum & Tingey). Exact for ``d >= 0.5``; elsewhere it over-counts
  ``P(D+ >= d and D- >= d)``, at most ``2 exp(-8 n d^2)`` (below 5e-8 and 3e-14 of an absolute
  error there). Zero from ``n d^2 >= 370`` (the true value is below 1e-300).
* ``n <= 140``, or ``n <= 100000`` with ``n d^1.5 <= 1.4``: Durbin's matrix formula as Marsaglia,
  Tsang & Wang (2003) evaluate it: the ``(k, k)`` entry of ``H^n`` times ``n!/n^n`` (exact up to
  rounding; the matrix has ``2 ceil(n d) - 1`` rows, at most 115 in this region).
* otherwise: the Pelz & Good (1976) expansion of the CDF in powers of ``1/sqrt(n)`` (four terms).
  Against the exact matrix formula it is off by at most 2.5e-6 (measured at ``n = 141``), less as
  ``n`` grows.

These are the same regions scipy's ``kstwo`` uses, so the two agree to within 1e-9 absolutely
(tests/data/test_kolmogorov.py checks ``n`` from 1 to 150,000; the largest gap measured, 5e-10, was
at ``n = 10^6``, from ``lgamma`` rounding in the one-sided sum).
"""

from __future__ import annotations

import math

import numpy as np

_SMALL_N = 140  # up to here the exact matrix formula is cheap for every d
_LARGE_N = 100_000  # above this the matrix grows too large even in its region
_PI2 = math.pi**2
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SMIRNOV_CHUNK = 1 << 20  # terms of the one-sided sum evaluated at once (bounds memory for a huge n)


def kolmogorov_sf(d: float, n: int) -> float:
    """``P(D_n >= d)`` for the two-sided one-sample KS statistic of ``n`` draws (a p-value)."""
    n = int(n)
    if n < 1:
        raise ValueError(f"the Kolmogorov distribution needs n >= 1, got {n}.")
    d = float(d)
    if math.isnan(d):
        return math.nan
    if d <= 0.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    t = n * d
    if t <= 0.5:
        return 1.0
    if t <= 1.0:
        # every |F_n - F| reaches 1/(2n); below 1/n the CDF is n!/n^n (2nd - 1)^n
        return _clip(1.0 - math.exp(_log_factorial_over_power(n) + n * math.log(2.0 * t - 1.0)))
    if t >= n - 1:
        return _clip(2.0 * (1.0 - d) ** n)
    nd2 = t * d
    if nd2 >= 370.0:
        return 0.0
    if d >= 0.5 or nd2 >= (4.0 if n <= _SMALL_N else 2.2):
        return _clip(2.0 * smirnov_sf(d, n))
    if n <= _SMALL_N or (n <= _LARGE_N and n * d**1.5 <= 1.4):
        return _clip(1.0 - _durbin_cdf(d, n))
    return _clip(1.0 - _pelz_good_cdf(d, n))


def smirnov_sf(d: float, n: int) -> float:
    """One-sided ``P(D+_n >= d)``, by the exact Birnbaum-Tingey sum over ``j <= n (1 - d)``:
    ``d * sum_j C(n, j) (1 - d - j/n)^(n - j) (d + j/n)^(j - 1)``, in logs (all terms are positive)."""
    n, d = int(n), float(d)
    if d <= 0.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    last = int(math.floor(n * (1.0 - d)))
    peak, total = -math.inf, 0.0  # running log-sum-exp over the chunks
    for start in range(0, last + 1, _SMIRNOV_CHUNK):
        j = np.arange(start, min(last, start + _SMIRNOV_CHUNK - 1) + 1, dtype=np.float64)
        first = math.lgamma(n + 1) - math.lgamma(start + 1) - math.lgamma(n - start + 1)
        steps = np.log((n - j[1:] + 1) / j[1:])  # C(n, j) = C(n, j - 1) (n - j + 1) / j
        log_choose = first + np.concatenate([[0.0], np.cumsum(steps)])
        with np.errstate(divide="ignore"):
            terms = (
                log_choose + (n - j) * np.log(np.maximum(1.0 - d - j / n, 0.0)) + (j - 1) * np.log(d + j / n)
            )
        chunk_peak = float(terms.max())
        if chunk_peak == -math.inf:
            continue
        if chunk_peak > peak:
            total *= math.exp(peak - chunk_peak)
            peak = chunk_peak
        total += float(np.exp(terms - peak).sum())
    if peak == -math.inf:
        return 0.0
    return _clip(d * total * math.exp(peak))


def _durbin_cdf(d: float, n: int) -> float:
    """``P(D_n < d)`` by Durbin's matrix: with ``n d = k - h`` (``0 <= h < 1``), the ``(k, k)``
    entry of ``H^n`` times ``n!/n^n``, ``H`` the ``(2k-1)``-square matrix below. The power is
    taken by repeated squaring with the scale kept apart as a power of two (no overflow)."""
    k = math.ceil(n * d)
    h = k - n * d
    m = 2 * k - 1
    i = np.arange(m)
    gap = i[:, None] - i[None, :] + 1  # H[i, j] = 1/(i - j + 1)! where i - j + 1 >= 0, else 0
    inverse_factorial = np.array([math.exp(-math.lgamma(g + 1)) for g in range(m + 1)])  # 0 past 170!
    matrix = np.where(gap >= 0, inverse_factorial[np.clip(gap, 0, m)], 0.0)
    edge = (1.0 - h ** (i + 1)) * inverse_factorial[i + 1]  # first column, and last row reversed
    matrix[:, 0] = edge
    matrix[-1, :] = edge[::-1]
    matrix[-1, 0] = (1.0 - 2.0 * h**m + max(2.0 * h - 1.0, 0.0) ** m) * inverse_factorial[m]

    result, result_exp = np.eye(m), 0
    power, power_exp = matrix, 0
    remaining = n
    while remaining:
        if remaining & 1:
            result = result @ power
            result_exp += power_exp
            result, result_exp = _rescaled(result, result_exp, k)
        remaining >>= 1
        if remaining:
            power = power @ power
            power_exp *= 2
            power, power_exp = _rescaled(power, power_exp, k)
    entry = float(result[k - 1, k - 1])
    if entry <= 0.0:
        return 0.0
    log_cdf = math.log(entry) + result_exp * math.log(2.0) + _log_factorial_over_power(n)
    return min(1.0, math.exp(log_cdf))


def _rescaled(matrix: np.ndarray, exponent: int, k: int) -> tuple[np.ndarray, int]:
    """Move a power of two out of ``matrix`` so its ``(k, k)`` entry stays near 1."""
    _, shift = math.frexp(float(abs(matrix[k - 1, k - 1])) or 1.0)
    return np.ldexp(matrix, -shift), exponent + shift


def _pelz_good_cdf(d: float, n: int) -> float:
    """``P(D_n <= d)`` by Pelz & Good: ``K0 + K1/sqrt(n) + K2/n + K3/n^1.5`` at ``z = sqrt(n) d``,
    each ``K`` a theta-function sum over the odd ``j`` (``exp(-pi^2 j^2 / (8 z^2))``) and, for ``K2``
    and ``K3``, a second sum over all ``k`` (``exp(-pi^2 k^2 / (2 z^2))``)."""
    z = math.sqrt(n) * d
    z2 = z * z
    terms = max(1, math.ceil(16.0 * z / math.pi))
    odd = 2.0 * np.arange(1, terms + 1) - 1.0
    a = _PI2 * odd**2 / 4.0  # pi^2 j^2 / 4
    e_odd = np.exp(-a / (2.0 * z2))
    k0 = _SQRT_2PI / z * e_odd.sum()
    k1 = _SQRT_2PI / (6.0 * z2**2) * ((a - z2) * e_odd).sum()
    k2_poly = 6 * z2**3 + 2 * z2**2 + (2 * z2**2 - 5 * z2) * a + (1 - 2 * z2) * a**2
    k3_poly = (
        -30 * z2**3
        - 90 * z2**4
        + (135 * z2**2 - 96 * z2**3) * a
        + (212 * z2**2 - 60 * z2) * a**2
        + (5 - 30 * z2) * a**3
    )
    whole = np.arange(1, terms + 1, dtype=np.float64)
    b = _PI2 * whole**2  # pi^2 k^2
    e_whole = np.exp(-b / (2.0 * z2))
    k2 = _SQRT_2PI / (72.0 * z**7) * (k2_poly * e_odd).sum() - _SQRT_2PI / (36.0 * z**3) * (b * e_whole).sum()
    k3 = (
        _SQRT_2PI / (6480.0 * z**10) * (k3_poly * e_odd).sum()
        + _SQRT_2PI / (216.0 * z**6) * ((3.0 * z2 - b) * b * e_whole).sum()
    )
    root = math.sqrt(n)
    return k0 + k1 / root + k2 / n + k3 / (n * root)


def _log_factorial_over_power(n: int) -> float:
    """``ln(n! / n^n)``: the ``ln(i/n)`` terms summed with exact rounding up to the matrix formula's
    largest ``n``, ``lgamma`` beyond (relative error about 1e-16 * n ln n, used only where it is tiny)."""
    if n > _LARGE_N:
        return math.lgamma(n + 1) - n * math.log(n)
    return math.fsum(np.log(np.arange(1, n + 1) / n).tolist())


def _clip(p: float) -> float:
    return float(min(1.0, max(0.0, p)))
