"""Alignment and paste-back with an identity restorer on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import FACES
from face_clips import linear_path, load_face, make_clip

from vidgpen.errors import VidgpenError
from vidgpen.faces.align import (
    apply_affine,
    face_affine,
    template_points,
    umeyama,
    warp_face,
)
from vidgpen.faces.blend import (
    FacePaste,
    feather_mask,
    match_colors,
    paste_back,
    paste_faces,
    restore_grain,
)
from vidgpen.faces.detect import make_detector

S = 512


@pytest.fixture(scope="module")
def frame_and_faces():
    """Two ~150 px faces that overlap a little, on a 480×360 frame."""
    a, b = load_face(FACES / "ffhq_00006.png", 300), load_face(FACES / "ffhq_00009.png", 300)
    clip = make_clip([(a, linear_path((170, 170), (170, 170), 1)), (b, linear_path((320, 190), (320, 190), 1))], 1, seed=6, codec=None)
    image = clip.frames[0]
    faces = make_detector("retinaface-onnx").detect(image)
    assert len(faces) == 2
    return image, [face_affine(f.landmarks, S) for f in faces]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def _mask_support(image: np.ndarray, affines) -> np.ndarray:
    inside = np.zeros(image.shape[:2], bool)
    for a in affines:
        m = cv2.warpAffine(feather_mask(S), a, image.shape[1::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        inside |= m > 0
    return inside


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale = np.deg2rad(17), 2.5
    m = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 12], [scale * np.sin(angle), scale * np.cos(angle), -7]])
    np.testing.assert_allclose(umeyama(src, apply_affine(m, src)), m, atol=1e-9)


def test_aligned_crop_puts_landmarks_on_the_template(frame_and_faces):
    image, affines = frame_and_faces
    crop = warp_face(image, affines[0], S)
    assert crop.shape == (S, S, 3)
    faces = make_detector("retinaface-onnx").detect(crop)
    assert len(faces) >= 1
    best = min(faces, key=lambda f: np.abs(f.landmarks - template_points("gpen", S)).mean())
    assert np.abs(best.landmarks - template_points("gpen", S)).mean() < 0.03 * S


def test_identity_restorer_round_trip(frame_and_faces):
    image, affines = frame_and_faces
    crops = [warp_face(image, a, S) for a in affines]
    out = image.copy()
    boxes = paste_back(out, crops, affines)
    inside = _mask_support(image, affines)
    assert inside.any() and _psnr(out[inside], image[inside]) >= 40.0
    assert np.array_equal(out[~inside], image[~inside])  # outside the masks: bit-identical
    in_boxes = np.zeros(image.shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        in_boxes[y0:y1, x0:x1] = True
    assert np.array_equal(out[~in_boxes], image[~in_boxes]) and (out != image).any()


def test_strength_zero_leaves_the_frame_unchanged(frame_and_faces):
    image, affines = frame_and_faces
    out = image.copy()
    assert paste_back(out, [np.zeros((S, S, 3), np.uint8)] * 2, affines, strength=0.0) == []
    assert np.array_equal(out, image)


def test_overlapping_faces_composite_without_seams(frame_and_faces):
    image, affines = frame_and_faces
    grey = [np.full((S, S, 3), 200, np.uint8)] * 2
    out = image.copy()
    paste_back(out, grey, affines)
    full = np.ones(image.shape[:2], np.float32)
    for a in affines:
        full *= 1 - cv2.warpAffine(feather_mask(S), a, image.shape[1::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    covered = 1 - full > 0.999
    # Where the masks overlap, a uniform restorer gives a uniform result: no seam.
    assert covered.sum() > 1000 and np.abs(out[covered].astype(int) - 200).max() <= 1


def _full_frame_reference(image: np.ndarray, crops, affines) -> np.ndarray:
    """The blend written the plain way: every face shrunk to its size on screen, then warped over the whole frame."""
    from vidgpen.faces.align import affine_scale, resized_affine

    size = image.shape[1::-1]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    weighted, weight, uncovered = np.zeros(image.shape, np.float64), np.zeros(image.shape[:2]), np.ones(image.shape[:2])
    for crop, a in zip(crops, affines):
        mask, side = feather_mask(S), int(np.ceil(S / max(affine_scale(a), 1.0)))
        crop, mask = (cv2.resize(x, (side, side), interpolation=cv2.INTER_AREA) for x in (crop, mask))
        a = resized_affine(a, side / S)
        face = cv2.warpAffine(crop.astype(np.float32), a, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        alpha = np.clip(cv2.warpAffine(mask, a, size, flags=flags, borderMode=cv2.BORDER_CONSTANT), 0, 1)
        weighted += face * alpha[..., None]
        weight += alpha
        uncovered *= 1 - alpha
    covered = (1 - uncovered)[..., None]
    blended = image * (1 - covered) + weighted / np.maximum(weight, 1e-12)[..., None] * covered
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("apart", [False, True])
def test_faces_match_a_full_frame_blend(frame_and_faces, apart):
    # Each face is warped over its own region only, and faces far apart on canvases of
    # their own; the result must be the blend of every face warped over the whole frame.
    image, affines = frame_and_faces
    if apart:  # a wider frame with a third face 800 px to the right of the first
        image = np.concatenate([image, image[:, ::-1], image], axis=1)
        third = affines[0].copy()
        third[:, 2] -= third[:, :2] @ np.array([800.0, 0.0])
        affines = [*affines, third]
    rng = np.random.default_rng(3)
    crops = [np.clip(warp_face(image, a, S).astype(int) + rng.integers(-30, 30, 3), 0, 255).astype(np.uint8) for a in affines]
    out = image.copy()
    boxes = paste_back(out, crops, affines)
    reference = _full_frame_reference(image, crops, affines)
    assert len(boxes) == len(affines) and not np.array_equal(out, image)
    # OpenCV samples at 1/32 px steps, rounded from where each warp starts: a level or two.
    diff = np.abs(out.astype(int) - reference)
    assert diff.max() <= 2 and (diff > 1).mean() < 1e-3
    for x0, y0, x1, y1 in boxes:  # every change lies in a returned box
        out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    assert np.array_equal(out, image)


def test_parsing_mask_is_cut_by_the_faces_template(frame_and_faces, monkeypatch):
    """ParseNet stubbed (facexlib is an optional extra) to call every pixel skin: what is
    left is the template's feather mask, which must be the ffhq one for ffhq crops."""
    import torch

    from vidgpen.faces import blend

    def all_skin(device):
        def net(x):
            logits = torch.zeros(1, 19, *x.shape[2:])
            logits[:, 1] = 1.0
            return (logits,)

        return net

    monkeypatch.setattr(blend, "_parsenet", all_skin)
    image, affines = frame_and_faces
    affine = face_affine(make_detector("retinaface-onnx").detect(image)[0].landmarks, S, "ffhq")
    crop = warp_face(image, affine, S)
    [mask] = blend.parsing_masks([crop], template="ffhq")
    assert np.abs(mask - feather_mask(S, "ffhq")).max() < 1e-5
    assert np.abs(mask - feather_mask(S, "gpen")).max() > 0.5
    tinted = np.clip(crop.astype(int) + 40, 0, 255).astype(np.uint8)
    parsed, feathered = image.copy(), image.copy()
    paste_faces(parsed, [FacePaste(tinted, crop, affine)], template="ffhq", mask="parsing")
    paste_faces(feathered, [FacePaste(tinted, crop, affine)], template="ffhq")
    assert np.abs(parsed.astype(int) - feathered).max() <= 1 and not np.array_equal(parsed, image)


def test_half_strength_is_halfway(frame_and_faces):
    image, affines = frame_and_faces
    out = image.copy()
    paste_back(out, [np.zeros((S, S, 3), np.uint8)], affines[:1], strength=0.5)
    centre = np.round(apply_affine(cv2.invertAffineTransform(affines[0]), [[S / 2, S * 0.55]])[0]).astype(int)
    x, y = centre
    np.testing.assert_allclose(out[y, x].astype(float), image[y, x] * 0.5, atol=1.0)


def test_deep_frame_is_blended_at_its_own_depth(frame_and_faces):
    """A 16-bit frame (a 10-bit source) keeps its low bits through the paste: the blend
    is float at 16 bits, not the 8-bit image scaled up (which would give multiples of 257)."""
    image, affines = frame_and_faces
    deep = np.full(image.shape, 12345, np.uint16)  # 48.04 in 8-bit terms
    crop = np.full((S, S, 3), 100, np.uint8)
    changed = paste_back(deep, [crop], affines[:1], strength=0.5)
    inside = deep != 12345
    assert changed and inside.any()
    assert (deep[inside] % 257 != 0).mean() > 0.99
    centre = np.round(apply_affine(cv2.invertAffineTransform(affines[0]), [[S / 2, S * 0.55]])[0]).astype(int)
    x, y = centre
    assert np.all(np.abs(deep[y, x].astype(float) - (12345 + 25700) / 2) <= 1)


def test_grayscale_source_keeps_grayscale_faces(frame_and_faces):
    image, affines = frame_and_faces
    gray = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    tinted = [np.clip(warp_face(gray, a, S).astype(int) + [40, 0, -40], 0, 255).astype(np.uint8) for a in affines]
    out = gray.copy()
    paste_back(out, tinted, affines)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_colour_matching_restores_the_original_tone(frame_and_faces):
    image, affines = frame_and_faces
    original = warp_face(image, affines[0], S)
    tinted = np.clip(original.astype(int) + [50, -20, 10], 0, 255).astype(np.uint8)
    mask = feather_mask(S)
    matched = match_colors(tinted, original, mask)
    sel = mask > 0.5
    assert np.abs(matched[sel].mean(0) - original[sel].mean(0)).max() < 3
    assert np.abs(tinted[sel].mean(0) - original[sel].mean(0)).max() > 15
    out = image.copy()
    paste_faces(out, [FacePaste(tinted, original, affines[0])], color_match=True)
    assert _psnr(out, image) > 35


def test_parsing_mask_without_facexlib_is_a_clear_error(frame_and_faces):
    try:
        import facexlib  # noqa: F401

        pytest.skip("facexlib is installed")
    except ImportError:
        pass
    image, affines = frame_and_faces
    crop = warp_face(image, affines[0], S)
    with pytest.raises(VidgpenError, match="facexlib"):
        paste_faces(image.copy(), [FacePaste(crop, crop, affines[0])], mask="parsing")


def test_feather_mask_scales_with_size_and_is_zero_at_the_border():
    small, big = feather_mask(128), feather_mask(512)
    assert big[0].max() == 0 and big[:, -1].max() == 0 and big.max() == 1.0
    resized = cv2.resize(small, (512, 512), interpolation=cv2.INTER_LINEAR)
    assert np.abs(resized - big).mean() < 0.02
    assert feather_mask(512, "ffhq") is feather_mask(512, "ffhq")  # cached


def test_grain_puts_the_originals_fine_detail_back():
    rng = np.random.default_rng(3)
    smooth = cv2.GaussianBlur(rng.integers(60, 200, (S, S, 3)).astype(np.float32), (0, 0), 12)
    grainy = np.clip(smooth + rng.normal(0, 10, smooth.shape), 0, 255).astype(np.uint8)
    clean = np.clip(smooth, 0, 255).astype(np.uint8)  # what GPEN returns: no grain
    affine = np.array([[2.0, 0, 0], [0, 2.0, 0]])  # crop at 2× the frame's pixel scale

    def fine_detail(img):
        img = img.astype(np.float32)
        return float((img - cv2.GaussianBlur(img, (0, 0), 3)).std())

    assert np.array_equal(restore_grain(clean, grainy, affine, 0.0), clean)
    half, full = (fine_detail(restore_grain(clean, grainy, affine, a)) for a in (0.5, 1.0))
    assert fine_detail(clean) < half < full <= fine_detail(grainy) * 1.05
    assert full > 0.8 * fine_detail(grainy)


def _still_face_flicker(crop: np.ndarray, side: int) -> float:
    """One fixed restored crop pasted on a ``side``-pixel photo moving along a known path; the
    flicker of the result in the photo's coordinates (what a steady face would show)."""
    from face_clips import similarity, smooth_path
    from flicker_measure import flicker, inner_face, to_photo

    from vidgpen.faces.align import compose_affine, invert_affine
    from vidgpen.faces.names import TEMPLATES

    photo_to_crop = face_affine(TEMPLATES["ffhq"] * side, crop.shape[0])  # an FFHQ photo is FFHQ-aligned
    path = smooth_path(side * 1.2, side, dx=20, dy=8, angle=4, zoom=0.05, period=40)
    frames, motions = [], []
    for t in range(16):
        motion = similarity((side, side), *path(t))  # photo → frame
        canvas = np.full((2 * side, int(2.4 * side), 3), 128, np.uint8)
        paste_back(canvas, [crop], [compose_affine(photo_to_crop, invert_affine(motion))])
        frames.append(canvas)
        motions.append(motion)
    return flicker(to_photo(frames, np.stack(motions), side), inner_face(side))


def test_a_crop_far_larger_than_its_face_on_screen_does_not_alias():
    """GPEN-2048 on a 160-pixel face: pasted straight, its fine detail aliased into 2.16 levels of
    flicker against 1.21 for a 512 crop; shrunk to screen size first, 0.71 against 0.67."""
    photo = cv2.imread(str(FACES / "ffhq_00003.png"))[:, :, ::-1]
    sharp = cv2.warpAffine(photo, face_affine(template_points("ffhq", 1024), 1024), (1024, 1024))
    crops = {side: cv2.resize(sharp, (side, side), interpolation=cv2.INTER_AREA if side < 1024 else cv2.INTER_CUBIC)
             for side in (512, 2048)}
    flickers = {side: _still_face_flicker(crop, 160) for side, crop in crops.items()}
    assert flickers[2048] < 1.2 * flickers[512]
    assert flickers[2048] < 1.0


def test_a_resized_crop_keeps_its_place_in_the_frame():
    from vidgpen.faces.align import resized_affine

    photo = cv2.imread(str(FACES / "ffhq_00003.png"))[:, :, ::-1]
    affine = face_affine(template_points("ffhq", 1024) * 0.3 + 40, 512)  # a 300-pixel face in a 400-pixel frame
    crop = warp_face(cv2.resize(photo, (400, 400), interpolation=cv2.INTER_AREA), affine, 512)
    big = cv2.resize(crop, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    frame_size = (400, 400)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    reference = cv2.warpAffine(crop, affine, frame_size, flags=flags).astype(np.float64)
    placed = cv2.warpAffine(big, resized_affine(affine, 2.0), frame_size, flags=flags).astype(np.float64)
    naive = cv2.warpAffine(big, affine * 2.0, frame_size, flags=flags).astype(np.float64)
    inside = cv2.warpAffine(np.ones((512, 512), np.float32), affine, frame_size, flags=flags) > 0.99
    assert np.abs(placed - reference)[inside].mean() < 0.5 * np.abs(naive - reference)[inside].mean()
