"""Paste-back geometry and mask choice, decided once per run or per face before blending."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from vidgpen.errors import VidgpenError
from vidgpen.faces.align import resized_affine
from vidgpen.faces.blend import FacePaste, parsing_masks
from vidgpen.io.frames import Box, Frame

log = logging.getLogger(__name__)


def usable_mask(mask: str, device: str | None) -> str:
    """The paste-back mask this run can use: ParseNet needs the facexlib extra and its
    weights; without them, warn once and feather instead of failing mid-video."""
    if mask != "parsing":
        return mask
    probe_crop = np.zeros((512, 512, 3), np.uint8)
    try:
        parsing_masks([probe_crop], device)
    except VidgpenError as exc:
        log.warning("face-parsing mask unavailable (%s); using the feathered mask", exc)
        return "feather"
    return "parsing"


def paste_of(restored: np.ndarray, crop: np.ndarray, affine: np.ndarray) -> FacePaste:
    """Super-resolution GPENs return a larger crop than they take: scale the map to it."""
    out_size, in_size = restored.shape[0], crop.shape[0]
    if out_size == in_size:
        return FacePaste(restored, crop, affine)
    original = cv2.resize(crop, (out_size, out_size), interpolation=cv2.INTER_CUBIC)
    return FacePaste(restored, original, resized_affine(affine, out_size / in_size))


def refresh_image(frame: Frame, boxes: list[Box]) -> None:
    """Faces of a deep frame are pasted into its 16-bit image; bring them into the 8-bit
    one too (previews and overlays draw from it), only where the paste changed pixels."""
    for x0, y0, x1, y1 in boxes:
        frame.image[y0:y1, x0:x1] = (frame.deep[y0:y1, x0:x1] >> 8).astype(np.uint8)
