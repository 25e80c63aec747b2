"""Align faces to a template: least-squares similarity from 5 landmarks, warp to S×S.

The similarity is fitted by least squares (Umeyama) on all five points: a randomised or
subset fit would make the crop wobble from frame to frame even with steady landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

from vidgpen.errors import ConfigError
from vidgpen.faces.names import TEMPLATES


def template_points(template: str, size: int) -> np.ndarray:
    """The template's 5 points in crop pixels at crop size ``size``."""
    try:
        return TEMPLATES[template] * size
    except KeyError:
        raise ConfigError(f"unknown face template {template!r}; choose one of {', '.join(TEMPLATES)}") from None


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 similarity (rotation, uniform scale, translation) that best maps src onto dst.

    Closed-form least squares (Umeyama 1991), without reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - out[:, :2] @ mu_s
    return out


def face_affine(landmarks: np.ndarray, size: int, template: str = "gpen") -> np.ndarray:
    """2×3 affine mapping frame pixels to crop pixels of an S×S crop aligned to the template."""
    return umeyama(landmarks, template_points(template, size))


def affine_scale(affine: np.ndarray) -> float:
    """Uniform scale of a 2×3 similarity transform (e.g. crop px per frame px)."""
    return float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))


def resized_affine(affine: np.ndarray, factor: float) -> np.ndarray:
    """``affine`` (frame px → crop px) for the crop resized by ``factor``.

    OpenCV puts pixel centres on integers, and a resize maps the crop's pixel edges, not its
    centres, onto each other: u' = (u + 0.5) · factor − 0.5. The half-pixel term is what a
    plain ``affine * factor`` misses (0.45 frame pixels for a GPEN-2048 crop shrunk tenfold).
    """
    out = np.asarray(affine, np.float64) * factor
    out[:, 2] += 0.5 * (factor - 1.0)
    return out


def invert_affine(affine: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """outer ∘ inner for 2×3 affines (inner applied first)."""
    out = outer[:, :2] @ inner
    out[:, 2] += outer[:, 2]
    return out


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ affine[:, :2].T + affine[:, 2]


def warp_face(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The S×S crop of ``image`` under ``affine``; reflected borders avoid black wedges at frame edges."""
    return cv2.warpAffine(
        image, np.asarray(affine, dtype=np.float64), (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101
    )
