"""Temporal smoothing of one track's landmarks: a fixed-lag Kalman (RTS) smoother.

Each landmark coordinate follows a constant-velocity motion model (white acceleration of
spectral density q) and each detection measures it with white noise of variance r. Output
frame t is the Rauch–Tung–Striebel smoothed position at t from the track's samples within
``past`` frames before and ``lookahead`` frames after it: the best linear estimate under
that model, so it follows real motion without lag and removes what the detector adds.

q and r are measured per track and per landmark from the same samples, by the method of
moments on the second differences d of equally spaced samples (spacing h): under the model
Var d = 2/3·q·h³ + 6r and Cov(d_i, d_i+1) = 1/6·q·h³ − 4r, so r = (Var − 4·Cov) / 22.
A talking mouth gets a high q (little smoothing, it moves), steady eyes a low one; a
precise detector (dlib) gets a low r. ``strength`` scales r: above 1 it trades some
accuracy for steadiness. Everything is in units of the face's size (the eyes' distance),
so one setting fits every face size.

Memory is bounded by the window, and tracks never span a shot cut (the tracker ends
them), so neither does the smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EYES = (0, 1)  # landmark indices whose distance is the face's size
OUTLIER = 5.0  # a second difference beyond this many times the median one is a jump, not noise
GATE = 12.0  # mean normalised innovation² over the landmarks beyond which the track restarts (a jump)


@dataclass(frozen=True)
class LandmarkSmoother:
    lookahead: int = 6
    past: int | None = None  # frames before t that may be used; default = 3 × lookahead
    strength: float = 4.0  # multiplies the measured detector noise r (chosen by bench/landmarks.py --sweep)
    min_noise: float = 1e-6  # floor of r and q, in (eye distances)²: keeps a noiseless track defined
    prior_samples: int = 8  # below this many second differences, r and q lean on the prior below
    prior_r: float = 4e-4  # (eye distances)²: a 2% RMS detector
    prior_q: float = 1e-4  # (eye distances)² / frame³

    @property
    def past_frames(self) -> int:
        return 3 * self.lookahead if self.past is None else self.past

    def smooth(self, times: np.ndarray, points: np.ndarray, t: int) -> np.ndarray:
        """The smoothed (K, 2) landmarks at frame ``t``.

        ``times`` (n,) are the frame numbers with a sample (sorted, unique), ``points``
        (n, K, 2) the landmarks there. Samples outside the window are ignored.
        """
        times = np.asarray(times, dtype=np.float64)
        points = np.asarray(points, dtype=np.float64)
        inside = (times >= t - self.past_frames) & (times <= t + self.lookahead)
        times, points = times[inside], points[inside]
        if len(times) == 0:
            raise ValueError(f"no landmarks within the window around frame {t}")
        if self.lookahead == 0 and self.past_frames == 0:
            return points[-1]
        size = _face_size(points)
        r, q = self.noise(times, points / size)
        return rts_smooth(times, points, t, r * size**2, q * size**2)

    def noise(self, times: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r, q) per landmark (K,) measured on ``points``, shrunk towards the prior when few."""
        gaps = np.diff(times)
        d = points[:-2] - 2 * points[1:-1] + points[2:]
        even = gaps[:-1] == gaps[1:] if len(gaps) > 1 else np.zeros(0, bool)
        d, h = d[even], gaps[:-1][even]
        if len(d):  # a real jump is not noise: leave out differences far beyond the typical one
            typical = np.median(np.abs(d), axis=0)
            d, h = d[(np.abs(d) <= OUTLIER * typical + 1e-12).all((1, 2))], h[(np.abs(d) <= OUTLIER * typical + 1e-12).all((1, 2))]
        n = len(d)
        weight = n / (n + self.prior_samples)
        if n >= 2:
            lag1 = (d[:-1] * d[1:]).sum(-1).mean(0) / 2  # (K,), x and y pooled
            var = (d**2).sum(-1).mean(0) / 2
            r = np.maximum((var - 4 * lag1) / 22, self.min_noise)
            q = np.maximum(1.5 * (var - 6 * r) / np.mean(h) ** 3, self.min_noise)
        else:
            r = q = np.zeros(points.shape[1])
            weight = 0.0
        r = weight * r + (1 - weight) * self.prior_r
        q = weight * q + (1 - weight) * self.prior_q
        return self.strength * r, q


def _face_size(points: np.ndarray) -> float:
    """Median distance between the eyes over the samples (at least a pixel)."""
    eyes = np.linalg.norm(points[:, _EYES[0]] - points[:, _EYES[1]], axis=-1)
    return max(float(np.median(eyes)), 1.0)


def rts_smooth(times: np.ndarray, points: np.ndarray, t: float, r: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Constant-velocity Kalman filter forward over the samples, RTS backward; the state at ``t``.

    ``points`` (n, K, 2); ``r``, ``q`` (K,) per landmark (shared by x and y). ``t`` need not
    be a sample time (a frame between detection runs, or after the last one).
    """
    grid = np.union1d(times, [t])
    index = np.searchsorted(grid, times)
    observed = np.zeros(len(grid), bool)
    observed[index] = True
    z = np.zeros((len(grid),) + points.shape[1:])
    z[index] = points
    k = points.shape[1]
    # State per landmark: position (K, 2) and velocity (K, 2); covariance [[a, b], [b, c]] per landmark, shared by x and y.
    pos, vel = z[np.argmax(observed)].copy(), np.zeros((k, 2))
    a, b, c = 1e4 * (r + q), np.zeros(k), 1e4 * (r + q)  # uninformed: the first samples set it
    filtered, predicted, breaks = [], [], set()
    for i in range(len(grid)):
        if i:
            dt = grid[i] - grid[i - 1]
            pos = pos + dt * vel
            a, b, c = a + 2 * dt * b + dt * dt * c + q * dt**3 / 3, b + dt * c + q * dt**2 / 2, c + q * dt
        predicted.append((pos, vel, a, b, c))
        if observed[i]:
            s = a + r
            gain_p, gain_v = a / s, b / s
            innovation = z[i] - pos
            if i and ((innovation**2).sum(-1) / s).mean() > GATE:  # a jump: nothing before it is evidence
                pos, vel = z[i].copy(), np.zeros((k, 2))
                a, b, c = r.copy(), np.zeros(k), 1e4 * (r + q)
                breaks.add(i)  # the backward pass does not cross it either
                filtered.append((pos, vel, a, b, c))
                continue
            pos, vel = pos + gain_p[:, None] * innovation, vel + gain_v[:, None] * innovation
            a, b, c = a - gain_p * a, b - gain_p * b, c - gain_v * b
        filtered.append((pos, vel, a, b, c))
    target = int(np.searchsorted(grid, t))
    pos, vel = filtered[-1][:2]
    for i in range(len(grid) - 2, target - 1, -1):
        fp, fv, fa, fb, fc = filtered[i]
        if i + 1 in breaks:
            pos, vel = fp, fv
            continue
        pp, pv, pa, pb, pc = predicted[i + 1]
        dt = grid[i + 1] - grid[i]
        # Smoother gain G = P_f · Fᵀ · P_pred⁻¹ (2×2 per landmark).
        ma, mb, mc, md = fa + dt * fb, fb, fb + dt * fc, fc  # P_f·Fᵀ = [[ma, mb], [mc, md]]
        det = pa * pc - pb * pb
        ia, ib, ic = pc / det, -pb / det, pa / det
        g00, g01, g10, g11 = ma * ia + mb * ib, ma * ib + mb * ic, mc * ia + md * ib, mc * ib + md * ic
        dpos, dvel = pos - pp, vel - pv
        pos, vel = fp + g00[:, None] * dpos + g01[:, None] * dvel, fv + g10[:, None] * dpos + g11[:, None] * dvel
    return pos
