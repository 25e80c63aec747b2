"""Temporal smoothing of one track's landmarks with a bounded lookahead.

Each output frame t is a local least-squares polynomial (quadratic, like Savitzky–Golay)
fitted to the track's detected landmarks in a window around t and evaluated at t. The
window is chosen per frame among candidates — centred ones first (zero phase), then
past-only and future-only ones — keeping only windows whose fit residual is consistent
with the detector's noise (estimated robustly from the same samples). Of those, the one
whose value at t has the smallest variance wins. A real jump or a fast turn makes the wide
windows fail the residual test, so the estimate falls back to short or one-sided windows
and follows the motion without lag; steady stretches get the full window and the most
smoothing. A quadratic follows smooth real motion (pans, zooms, turns) where a Gaussian
or a moving average would bend it and add drift.

Only the samples within ``past`` frames before and ``lookahead`` frames after t are used,
so memory is bounded by the window, and tracks never span a shot cut (the tracker ends
them), so neither does the smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MEDIAN_CHI2_1 = 0.4549364  # median of a χ²(1) variable: turns a median of r² into σ²


@dataclass(frozen=True)
class LandmarkSmoother:
    lookahead: int = 6
    past: int | None = None  # frames before t that may be used; default = lookahead
    tolerance: float = 2.0  # accept a window while its residual RMS ≤ tolerance × noise σ
    min_sigma: float = 0.05  # px: keeps the test meaningful on noiseless input

    @property
    def past_frames(self) -> int:
        return self.lookahead if self.past is None else self.past

    def smooth(self, times: np.ndarray, points: np.ndarray, t: int) -> np.ndarray:
        """The smoothed (K, 2) landmarks at frame ``t``.

        ``times`` (n,) are the frame numbers with a detection (sorted, unique), ``points``
        (n, K, 2) the detected landmarks there. Samples outside the window are ignored.
        """
        times = np.asarray(times, dtype=np.float64)
        points = np.asarray(points, dtype=np.float64)
        inside = (times >= t - self.past_frames) & (times <= t + self.lookahead)
        times, points = times[inside], points[inside]
        if len(times) == 0:
            raise ValueError(f"no landmarks within the window around frame {t}")
        shape = points.shape[1:]
        y = points.reshape(len(times), -1)
        rel = times - t
        sigma2 = max(_noise_variance(rel, y), self.min_sigma**2)

        best, best_var = None, np.inf
        for lo, hi in self._windows():
            sel = (rel >= lo) & (rel <= hi)
            n = int(sel.sum())
            if n == 0:
                continue
            r = rel[sel]
            extrapolating = r.min() > 0 or r.max() < 0
            deg = min(2 if n >= 4 else 1 if n >= 2 else 0, 1 if extrapolating else 2)
            value, ssr, var_factor = _fit(r, y[sel], deg)
            dof = n - deg - 1
            if dof > 0 and ssr / (dof * y.shape[1]) > self.tolerance**2 * sigma2:
                continue
            if var_factor < best_var:
                best, best_var = value, var_factor
        if best is None:  # every window saw a discontinuity: take the nearest sample
            best = y[np.argmin(np.abs(rel))]
        return best.reshape(shape)

    def _windows(self) -> list[tuple[int, int]]:
        past, ahead = self.past_frames, self.lookahead
        centred = [(-min(h, past), min(h, ahead)) for h in range(max(past, ahead), 0, -1)]
        one_sided = [(-h, 0) for h in range(past, 0, -1)] + [(0, h) for h in range(ahead, 0, -1)]
        return centred + one_sided + [(0, 0)]


def _fit(rel: np.ndarray, y: np.ndarray, deg: int) -> tuple[np.ndarray, float, float]:
    """Least-squares polynomial of degree ``deg`` in ``rel``; value at 0, residual sum of
    squares, and the variance factor of that value (its variance / σ²)."""
    v = np.vander(rel, deg + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(v, y, rcond=None)
    resid = y - v @ coef
    gram_inv = np.linalg.pinv(v.T @ v)
    return coef[0], float((resid**2).sum()), float(gram_inv[0, 0])


def _noise_variance(rel: np.ndarray, y: np.ndarray) -> float:
    """Robust per-coordinate noise variance: each sample against the straight line through
    its two neighbours, normalised, then a median (insensitive to a few real jumps)."""
    if len(rel) < 3:
        return 0.0
    t0, t1, t2 = rel[:-2], rel[1:-1], rel[2:]
    w0 = ((t2 - t1) / (t2 - t0))[:, None]
    w2 = ((t1 - t0) / (t2 - t0))[:, None]
    r = (y[1:-1] - (w0 * y[:-2] + w2 * y[2:])) / np.sqrt(1 + w0**2 + w2**2)
    return float(np.median(r**2) / _MEDIAN_CHI2_1)
