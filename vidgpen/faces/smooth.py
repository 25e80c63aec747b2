"""Temporal smoothing of one track's landmarks: a fixed-lag Kalman (RTS) smoother.

Each landmark coordinate follows a constant-velocity motion model (white acceleration of
spectral density q) and each detection measures it with white noise of variance r. Output
frame t is the Rauch–Tung–Striebel smoothed position at t from the track's samples within
``past`` frames before and ``lookahead`` frames after it: the best linear estimate under
that model, so it follows real motion without lag and removes what the detector adds.

r and q are measured per track and per landmark from the same samples, by moments of the
second differences d of equally spaced samples (spacing h): under the model
Var d = 2/3·q·h³ + 6r and Cov(d_i, d_i+1) = 1/6·q·h³ − 4r, so r = (Var − 4·Cov) / 22.
The noise is the typical wobble, so r comes from robust (median) moments; the motion is
everything beyond, so q comes from plain ones, and is raised around each second difference
the noise cannot explain (``BURST``): the filter opens where a head turns or a mouth opens
and smooths hard elsewhere. A jump (``JUMP``; a gated innovation in the filter) restarts
the track's filter instead of being smeared. A talking mouth gets a high q, steady eyes a
low one; a precise detector (dlib) a low r. ``strength`` scales r: above 1 it trades a
little accuracy for steadiness, and makes up for the part of a detector's error that is
not white (retinaface-onnx's drifts slowly, which the moments count as motion). Chosen per
detector (``STRENGTH``), with the lookahead: for retinaface-onnx 10 at a lookahead of 12
(bench/landmarks.py's held-out clips: NME 1.02× raw (p95 1.04×), jitter 2.6× lower; at a
lookahead of 6, strength 4 gave 1.02× and 2.2×, 6 gave 1.03× and 2.3×, 8 gave 1.035× and
2.5× but 1.11× on the fast talk_s13; tests/test_faces_smooth.py's known path, lookahead 6,
three noise seeds: jitter 2.5–2.8× lower at 4, 2.7–3.0× at 6). dlib's nearly white error
needs less: on that path 4 gave 5.2–5.8× less jitter at 0.74–0.80× the raw drift, 6 gave
4.7–5.2× at 0.89–0.96×. Everything is in units of the face's eye distance, so one
setting fits every face size.

Why (bench/landmarks.py, real talking heads degraded like home video, scored against
dlib and retinaface-onnx on the clean source; README, Faces across frames): the quadratic
windows this replaced, and registration before them, cost accuracy on real faces (a mouth
is not rigid), and offline Savitzky–Golay did too; a constant-velocity smoother whose
noise each track measures keeps the detector's accuracy with a fraction of its jitter.

Memory is bounded by the window, and tracks never span a shot cut (the tracker ends
them), so neither does the smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EYES = (0, 1)  # landmark indices whose distance is the face's size
BURST, JUMP = 4.0, 25.0  # a second difference this many times the noise's expected one is real motion; a jump
_MEDIAN_CHI2_1 = 0.4549364  # median of a χ²(1) variable: turns a median of squares into a variance
GATE = 12.0  # mean normalised innovation² over the landmarks beyond which the track restarts (a jump)
STRENGTH = {"dlib": 4.0}  # per detector; others take LandmarkSmoother.strength (see the docstring)


@dataclass(frozen=True)
class LandmarkSmoother:
    lookahead: int = 6
    past: int | None = None  # frames before t that may be used; default = 3 × lookahead
    strength: float = 10.0  # multiplies the measured detector noise r (chosen by bench/landmarks.py --sweep)
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
        q_at = bursts(times, points / size, r, q)
        return rts_smooth(times, points, t, self.strength * r * size**2, q_at * size**2)

    def noise(self, times: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r, q) per landmark (K,) measured on ``points``, shrunk towards the prior when few."""
        gaps = np.diff(times)
        d = points[:-2] - 2 * points[1:-1] + points[2:]
        even = gaps[:-1] == gaps[1:] if len(gaps) > 1 else np.zeros(0, bool)
        d, h = d[even], gaps[:-1][even]
        n = len(d)
        weight = n / (n + self.prior_samples)
        if n >= 2:
            # The noise is the typical wobble: robust (median) moments, which a burst of real
            # motion or a jump barely moves. The motion is everything beyond: plain moments.
            lag0 = _robust_variance(d)
            lag1 = (_robust_variance(d[:-1] + d[1:]) - 2 * lag0) / 2
            r = np.maximum((lag0 - 4 * lag1) / 22, self.min_noise)
            d2 = (d**2).mean(2)  # (n, K): a jump (beyond JUMP) is left to the filter's gate
            kept = d2 < JUMP * 6 * r
            motion = (d2 * kept).sum(0) / np.maximum(kept.sum(0), 1)
            q = np.maximum(1.5 * (motion - 6 * r) / np.mean(h) ** 3, self.min_noise)
        else:
            r = q = np.zeros(points.shape[1])
            weight = 0.0
        r = weight * r + (1 - weight) * self.prior_r
        q = weight * q + (1 - weight) * self.prior_q
        return r, q


def bursts(times: np.ndarray, points: np.ndarray, r: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(n, K) the motion's q on the way into each sample: the window's ``q``, raised around a
    second difference the noise cannot explain (beyond ``BURST`` × its expected size: a head
    turning, a mouth opening) to what that difference needs, so the filter follows it at once."""
    out = np.tile(q, (len(times), 1))
    if len(times) < 3:
        return out
    gaps = np.diff(times)
    d2 = ((points[:-2] - 2 * points[1:-1] + points[2:]) ** 2).mean(-1)  # (n − 2, K), x and y pooled
    h = np.maximum(gaps[:-1], gaps[1:])[:, None]
    # Beyond JUMP it is a jump: the filter's gate restarts there, which raising q would defeat.
    moving = (d2 > BURST * 6 * r) & (d2 < JUMP * 6 * r)
    local = np.where(moving, np.maximum(1.5 * (d2 - 6 * r) / h**3, q), q)
    for offset in range(3):  # the steps into the difference's three samples
        out[offset:offset + len(local)] = np.maximum(out[offset:offset + len(local)], local)
    return out


def _robust_variance(x: np.ndarray) -> np.ndarray:
    """Per landmark, the variance of zero-mean normal samples ``x`` (n, K, 2) from the median of their squares."""
    return np.median(np.swapaxes(x**2, 0, 1).reshape(x.shape[1], -1), axis=1) / _MEDIAN_CHI2_1


def _face_size(points: np.ndarray) -> float:
    """Median distance between the eyes over the samples (at least a pixel)."""
    eyes = np.linalg.norm(points[:, _EYES[0]] - points[:, _EYES[1]], axis=-1)
    return max(float(np.median(eyes)), 1.0)


def rts_smooth(times: np.ndarray, points: np.ndarray, t: float, r: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Constant-velocity Kalman filter forward over the samples, RTS backward; the positions at ``t``.

    ``points`` (n, K, 2); ``r`` (K,) per landmark, ``q`` (n, K) per sample and landmark (for the
    step into that sample; x and y share both). ``t`` need not
    be a sample time (a frame between detection runs, or after the last one). Plain floats:
    on five landmarks numpy's per-call overhead made it five times slower.
    """
    grid = sorted({float(f) for f in times} | {float(t)})
    samples = dict(zip((float(f) for f in times), points.tolist()))
    q_into = {float(f): qs for f, qs in zip(times, q.tolist())}
    q_last = q[-1].tolist()
    r = r.tolist()
    uninformed = [1e4 * (rk + qk) for rk, qk in zip(r, q.max(0).tolist())]
    first = samples[float(times[0])]
    # Per landmark: state (x, y, vx, vy) and covariance (a, b, c) = [[a, b], [b, c]], shared by x and y.
    state = [(x, y, 0.0, 0.0) for x, y in first]
    cov = [(u, 0.0, u) for u in uninformed]
    filtered, predicted, breaks = [], [], set()
    for i, now in enumerate(grid):
        if i:
            dt = now - grid[i - 1]
            state = [(x + dt * vx, y + dt * vy, vx, vy) for x, y, vx, vy in state]
            cov = [(a + 2 * dt * b + dt * dt * c + qk * dt**3 / 3, b + dt * c + qk * dt * dt / 2, c + qk * dt)
                   for (a, b, c), qk in zip(cov, q_into.get(now, q_last))]
        predicted.append((state, cov))
        z = samples.get(now)
        if z is not None:
            surprise = sum(((zx - s[0]) ** 2 + (zy - s[1]) ** 2) / (cv[0] + rk) for (zx, zy), s, cv, rk in zip(z, state, cov, r))
            if i and surprise / len(z) > GATE:  # a jump: nothing before it is evidence, and the backward pass stops here
                state, cov = [(zx, zy, 0.0, 0.0) for zx, zy in z], [(rk, 0.0, u) for rk, u in zip(r, uninformed)]
                breaks.add(i)
            else:
                state, cov = zip(*(_update(s, cv, zk, rk) for s, cv, zk, rk in zip(state, cov, z, r)))
        filtered.append((state, cov))
    target = grid.index(float(t))
    smoothed = filtered[-1][0]
    for i in range(len(grid) - 2, target - 1, -1):
        (f_state, f_cov), (p_state, p_cov) = filtered[i], predicted[i + 1]
        if i + 1 in breaks:
            smoothed = f_state
            continue
        dt = grid[i + 1] - grid[i]
        smoothed = [_rts_step(fs, fc, ps, pc, ss, dt) for fs, fc, ps, pc, ss in zip(f_state, f_cov, p_state, p_cov, smoothed)]
    return np.array([(x, y) for x, y, _, _ in smoothed])


def _update(state: tuple, cov: tuple, z: list[float], r: float) -> tuple[tuple, tuple]:
    """Kalman update of one landmark's (x, y, vx, vy) and shared covariance by its measurement."""
    x, y, vx, vy = state
    a, b, c = cov
    gain_p, gain_v = a / (a + r), b / (a + r)
    ix, iy = z[0] - x, z[1] - y
    return (x + gain_p * ix, y + gain_p * iy, vx + gain_v * ix, vy + gain_v * iy), (a - gain_p * a, b - gain_p * b, c - gain_v * b)


def _rts_step(f_state: tuple, f_cov: tuple, p_state: tuple, p_cov: tuple, s_state: tuple, dt: float) -> tuple:
    """One backward step: filtered + G (smoothed next − predicted next), G = P_f · Fᵀ · P_pred⁻¹."""
    fa, fb, fc = f_cov
    pa, pb, pc = p_cov
    ma, mb, mc, md = fa + dt * fb, fb, fb + dt * fc, fc  # P_f · Fᵀ
    det = pa * pc - pb * pb
    ia, ib, ic = pc / det, -pb / det, pa / det
    g00, g01, g10, g11 = ma * ia + mb * ib, ma * ib + mb * ic, mc * ia + md * ib, mc * ib + md * ic
    dx, dy, dvx, dvy = (s - p for s, p in zip(s_state, p_state))
    x, y, vx, vy = f_state
    return x + g00 * dx + g01 * dvx, y + g00 * dy + g01 * dvy, vx + g10 * dx + g11 * dvx, vy + g10 * dy + g11 * dvy
