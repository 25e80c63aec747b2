"""Paste restored face crops back into the frame, seamlessly and touching nothing else.

Each crop is inverse-warped into the frame and alpha-blended through a feathered mask
defined in template space (so it scales with the crop size S). Overlapping faces are
composited by weight (weighted mean of the crops, combined coverage), so no seam appears
where two masks overlap. Pixels where every mask is 0 are never written: the caller gets
the changed boxes and the writer passes every other pixel through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from vidgpen.errors import ConfigError, VidgpenError
from vidgpen.faces.align import affine_scale, resized_affine, template_points
from vidgpen.faces.names import MASKS
from vidgpen.io.frames import Box

_MAX_WARP_SCALE = 1.0  # crop px per frame px beyond which a crop is shrunk before the warp


@lru_cache(maxsize=8)
def feather_mask(size: int, template: str = "gpen") -> np.ndarray:
    """S×S float32 mask in [0, 1]: an ellipse around the template's face, feathered.

    Built from the template's landmarks so it covers the same part of the face whatever
    the template and size; it is exactly 0 at the crop's border (no edge can show).
    """
    pts = template_points(template, size)
    eye_dist = float(np.linalg.norm(pts[1] - pts[0]))
    centre = (float(pts[:2, 0].mean()), float((pts[:2, 1].mean() + pts[3:, 1].mean()) / 2))
    axes = (1.55 * eye_dist, 1.95 * eye_dist)
    feather = 0.18 * eye_dist
    hard = np.zeros((size, size), np.float32)
    scale = 16  # sub-pixel precision for cv2.ellipse's integer arguments
    cv2.ellipse(
        hard,
        (round(centre[0] * scale), round(centre[1] * scale)),
        (round(axes[0] * scale), round(axes[1] * scale)),
        0, 0, 360, 1.0, -1, cv2.LINE_AA, 4,
    )
    margin = int(np.ceil(3 * feather))
    border = np.zeros_like(hard)
    border[margin:-margin, margin:-margin] = 1.0
    mask = cv2.GaussianBlur(hard * border, (0, 0), feather)
    mask[mask < 1 / 512] = 0.0
    mask[mask > 1 - 1 / 512] = 1.0
    mask.setflags(write=False)
    return mask


def _paste_region(affine: np.ndarray, size: int, shape: tuple[int, int]) -> Box | None:
    """Frame box (clipped) covered by the crop under the inverse of ``affine``."""
    inv = cv2.invertAffineTransform(affine)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.floor(corners.min(0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    h, w = shape
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None


def match_colors(restored: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the restored crop's Lab mean/std under the mask to the original's (the
    restored crop is uint8, or float32 in [0, 255])."""
    w = mask.astype(np.float64)[..., None]
    total = max(float(w.sum()), 1e-6)
    lab_r = cv2.cvtColor(restored.astype(np.float32) / 255, cv2.COLOR_RGB2LAB).astype(np.float64)
    lab_o = cv2.cvtColor(original.astype(np.float32) / 255, cv2.COLOR_RGB2LAB).astype(np.float64)
    mean_r, mean_o = (lab_r * w).sum((0, 1)) / total, (lab_o * w).sum((0, 1)) / total
    std_r = np.sqrt(((lab_r - mean_r) ** 2 * w).sum((0, 1)) / total) + 1e-6
    std_o = np.sqrt(((lab_o - mean_o) ** 2 * w).sum((0, 1)) / total)
    matched = ((lab_r - mean_r) / std_r * std_o + mean_o).astype(np.float32)
    rgb = cv2.cvtColor(matched, cv2.COLOR_LAB2RGB) * 255
    return _like(restored, rgb)


def restore_grain(restored: np.ndarray, original: np.ndarray, affine: np.ndarray, amount: float) -> np.ndarray:
    """Add ``amount`` of the original crop's grain (its detail finer than about one frame
    pixel) to the restored crop.

    GPEN returns clean, grain-free skin; pasted into grainy film it looks like a sticker
    that does not move with the grain around it. The high-pass is taken at the frame's
    pixel scale in crop space, so the grain put back has the size it has in the frame.
    """
    scale = affine_scale(affine)  # crop px per frame px
    orig = original.astype(np.float32)
    residual = orig - cv2.GaussianBlur(orig, (0, 0), max(1.0, 1.5 * scale))
    out = restored.astype(np.float32) + amount * residual
    return _like(restored, out)


def _like(restored: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` in the restored crop's kind: uint8, or float32 in [0, 255] (unrounded,
    for deep frames)."""
    if restored.dtype == np.uint8:
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.clip(values, 0, 255).astype(np.float32)


def _is_grayscale(region: np.ndarray) -> bool:
    return bool(np.array_equal(region[..., 0], region[..., 1]) and np.array_equal(region[..., 1], region[..., 2]))




@dataclass
class FacePaste:
    """One face to paste: the restored S×S crop, the unrestored crop it came from, and the
    2×3 affine (frame px → crop px) that cut it."""

    restored: np.ndarray
    original: np.ndarray
    affine: np.ndarray


def paste_faces(
    image: np.ndarray,
    pastes: Sequence[FacePaste],
    *,
    strength: float = 1.0,
    template: str = "gpen",
    mask: str = "feather",
    color_match: bool = False,
    grain: float = 0.0,
    device: str | None = None,
) -> list[Box]:
    """Blend restored faces into ``image`` (H×W×3 uint8, or uint16 for a deep frame, edited
    in place); returns the boxes whose pixels may have changed (x0, y0, x1, y1, clipped,
    end exclusive).

    ``mask``: "feather" (the template mask) or "parsing" (facexlib ParseNet, optional).
    ``strength`` blends with the unrestored face (0 leaves the frame unchanged);
    ``color_match`` moves each restored face's Lab mean/std to its original's;
    ``grain`` (0..1) puts that share of the original's film grain back on the face.
    """
    if mask not in MASKS:
        raise ConfigError(f"mask {mask!r}: choose one of {', '.join(MASKS)}")
    if strength <= 0 or not pastes:
        return []
    restored = [p.restored for p in pastes]
    if color_match:
        restored = [
            match_colors(p.restored, p.original, feather_mask(p.restored.shape[0], template)) for p in pastes
        ]
    if grain > 0:
        restored = [restore_grain(r, p.original, p.affine, grain) for r, p in zip(restored, pastes)]
    masks = parsing_masks([p.original for p in pastes], device, template) if mask == "parsing" else None
    return paste_back(image, restored, [p.affine for p in pastes], template=template, strength=strength, masks=masks)


def paste_back(
    image: np.ndarray,
    crops: Sequence[np.ndarray],
    affines: Sequence[np.ndarray],
    *,
    template: str = "gpen",
    strength: float = 1.0,
    masks: Sequence[np.ndarray] | None = None,
) -> list[Box]:
    """Inverse-warp S×S ``crops`` into ``image`` (in place) through their masks.

    ``affines`` map frame pixels to crop pixels (as used to cut the crops); ``masks``
    replace the template mask per face (S×S in [0, 1]). A frame whose face region has
    R = G = B keeps grayscale faces. Returns the changed boxes.
    """
    if strength <= 0 or not crops:
        return []
    h, w = image.shape[:2]
    faces = []
    for i, (crop, affine) in enumerate(zip(crops, affines)):
        affine = np.asarray(affine, np.float64)
        region = _paste_region(affine, crop.shape[0], (h, w))
        if region is not None:
            mask = feather_mask(crop.shape[0], template) if masks is None else masks[i].astype(np.float32)
            faces.append(_at_screen_size(_Face(crop, affine, mask, region)))
    changed: list[Box] = []
    for group in _overlapping(faces):
        changed += _composite(image, group, float(min(strength, 1.0)))
    return changed


@dataclass
class _Face:
    crop: np.ndarray
    affine: np.ndarray
    mask: np.ndarray
    region: Box  # frame box outside which the face's mask is 0


def _at_screen_size(face: _Face) -> _Face:
    """A crop larger than its face on screen, shrunk by area averaging to about that size first.

    The warp into the frame interpolates from the 2×2 crop pixels nearest each frame pixel; a
    GPEN-2048 crop pasted on a 200-pixel face would skip 9 of every 10 of its pixels, and the
    ones it hits change as the face moves: its finest detail would alias into flicker.
    """
    scale = affine_scale(face.affine)  # crop px per frame px
    if scale <= _MAX_WARP_SCALE:
        return face
    side = face.crop.shape[0]
    small = max(2, int(np.ceil(side * _MAX_WARP_SCALE / scale)))
    shrink = small / side
    crop = cv2.resize(face.crop, (small, small), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(face.mask, (small, small), interpolation=cv2.INTER_AREA)
    return _Face(crop, resized_affine(face.affine, shrink), mask, face.region)


def _overlapping(faces: list[_Face]) -> list[list[_Face]]:
    """Faces grouped so that regions overlap only within a group: each group is blended
    on one canvas (seamless where masks overlap), and faces far apart never pay for the
    area between them."""
    groups: list[tuple[Box, list[_Face]]] = []
    for face in faces:
        box, members = face.region, [face]
        while hits := [g for g in groups if _intersect(box, g[0])]:
            for other in hits:
                groups.remove(other)
                box, members = _union(box, other[0]), other[1] + members
            # The merged box may now reach groups the face's own region did not.
        groups.append((box, members))
    return [members for _, members in groups]


def _intersect(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _composite(image: np.ndarray, faces: list[_Face], strength: float) -> list[Box]:
    """Blend overlapping ``faces`` on one canvas over the union of their regions, each
    warped over its own region only; returns the changed boxes."""
    ux0, uy0 = min(f.region[0] for f in faces), min(f.region[1] for f in faces)
    ux1, uy1 = max(f.region[2] for f in faces), max(f.region[3] for f in faces)
    uh, uw = uy1 - uy0, ux1 - ux0
    weighted = np.zeros((uh, uw, 3), np.float32)
    weight = np.zeros((uh, uw), np.float32)
    uncovered = np.ones((uh, uw), np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for f in faces:
        x0, y0, x1, y1 = f.region
        shifted = f.affine.copy()
        shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)  # region px -> crop px
        rw, rh = x1 - x0, y1 - y0
        face = cv2.warpAffine(f.crop.astype(np.float32), shifted, (rw, rh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(f.mask, shifted, (rw, rh), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        alpha = np.clip(alpha, 0.0, 1.0) * strength
        at = (slice(y0 - uy0, y1 - uy0), slice(x0 - ux0, x1 - ux0))
        weighted[at] += face * alpha[..., None]
        weight[at] += alpha
        uncovered[at] *= 1.0 - alpha
    covered = 1.0 - uncovered
    touched = covered > 0
    if not touched.any():
        return []
    target = image[uy0:uy1, ux0:ux1]
    face = weighted / np.maximum(weight, 1e-12)[..., None]
    if _is_grayscale(target):
        face = np.repeat((face @ np.array([0.299, 0.587, 0.114], np.float32))[..., None], 3, axis=2)
    peak = float(np.iinfo(image.dtype).max)  # 255, or 65535 for a deep (16-bit) frame
    face *= peak / 255.0  # the crops are 8-bit; blended in float at the frame's depth
    blended = target.astype(np.float32) * (1 - covered[..., None]) + face * covered[..., None]
    out = np.clip(np.rint(blended), 0, peak).astype(image.dtype)
    target[touched] = out[touched]
    changed = []
    for f in faces:
        x0, y0, x1, y1 = f.region
        sub = touched[y0 - uy0 : y1 - uy0, x0 - ux0 : x1 - ux0]
        ys, xs = np.nonzero(sub)
        if len(xs):
            changed.append((x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1))
    return changed


def parsing_masks(crops: Sequence[np.ndarray], device: str = "cpu", template: str = "gpen") -> list[np.ndarray]:
    """Face-parsing masks (skin, brows, eyes, nose, lips; not hair or background) from
    facexlib's ParseNet, feathered; an optional extra (vidgpen[facexlib]).

    The parsing is cut by the feather mask of the crops' ``template``, so it never reaches
    the crop's border wherever that template puts the face."""
    try:
        import torch

        net = _parsenet(device)  # resolved by the caller (the pipeline resolves it once per run)
    except ImportError as exc:
        raise VidgpenError(f"face-parsing mask: facexlib is not available ({exc}); install vidgpen[facexlib] or use the template mask") from None
    out = []
    for crop in crops:
        size = crop.shape[0]
        x = cv2.resize(crop, (512, 512), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 127.5 - 1
        with torch.no_grad():
            logits = net(torch.from_numpy(x.transpose(2, 0, 1))[None].to(device))[0]
        labels = logits.argmax(1)[0].cpu().numpy()
        face = ((labels >= 1) & (labels <= 13)).astype(np.float32)  # CelebAMask-HQ: skin to lips
        face = cv2.GaussianBlur(cv2.resize(face, (size, size)), (0, 0), size * 0.02)
        out.append(face * feather_mask(size, template))
    return out


@lru_cache(maxsize=2)
def _parsenet(device: str):
    from facexlib.parsing import init_parsing_model

    from vidgpen.weights import registry

    path = Path(registry.resolve("parsenet"))
    return init_parsing_model(model_name="parsenet", device=device, model_rootpath=str(path.parent)).eval()
