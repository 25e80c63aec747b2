"""Identity: how well a clean photo finds its person in degraded footage, and what it costs.

    python bench/identity.py                               # all of ../shared/video
    python bench/identity.py --sheet bench/persons-sheet.png

Each video of ../shared/video is one person. Their reference photo is the clean frame 0;
their footage is three other moments (at 30%, 55% and 80% of the video, ``--frames`` each),
scaled to 35% and encoded at crf 30, run through the real face stage (detect, track,
register, smooth, then the persons stage: dlib's ResNet on each track's best detections).
Reference photos of other people: every face of ../shared/faces (FFHQ, selfies, the 1927
Solvay group photo, one reference per face found).

Pairs, by Euclidean distance between embeddings:

* photo → track, same person: a video's photo against each of its own tracks;
* photo → track, different people: every other photo against each track;
* track → track (linking tracks into persons): tracks of one video, and of different videos.

Tracks whose faces stay under vidgpen's ``MIN_FACE`` are listed apart (vidgpen makes each
such track a person of its own and never matches it to a photo); the rates are over the rest.

Printed: the pairs' counts and distance percentiles; for thresholds in a grid the true match
rate (same-person pairs within it) and the false match rate (different-person pairs within
it); the threshold chosen (lowest total error rate over both kinds of pair, ties to the lower
one); the cost per track (seconds embedding and linking a track, and detection per frame
for scale). ``--sheet``: the contact sheet of one clip made of several people's shots, as
``vidgpen inspect --people`` writes it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from people_clips import VIDEO, as_frames, clean_frame, decoded, degraded, write_clip  # noqa: E402

from vidgpen.config import RestoreConfig  # noqa: E402
from vidgpen.faces.analyze import make_analyzer  # noqa: E402
from vidgpen.faces.detect import make_detector  # noqa: E402
from vidgpen.faces.identity import MATCH_DISTANCE, MIN_FACE, distance, embed, faces_in_photo, photo_detectors  # noqa: E402
from vidgpen.faces.inspect import contact_sheet  # noqa: E402
from vidgpen.faces.settings import FaceStageSettings  # noqa: E402
from vidgpen.pipeline.people import make_identity  # noqa: E402

FACES = REPO.parent / "shared" / "faces"
MOMENTS = (0.30, 0.55, 0.80)


def frame_count(name: str) -> int:
    import av

    with av.open(str(VIDEO / f"{name}.mp4")) as container:
        return container.streams.video[0].frames


def tracks_of(images: list[np.ndarray], folder: Path, label: str) -> tuple[list[tuple[np.ndarray, float]], float, int, float]:
    """Each person's (first track's embedding, largest face px), the persons stage's seconds
    and tracks, and the detector's seconds per frame. Every track is embedded here, also
    those under vidgpen's MIN_FACE, to measure them."""
    clip = decoded(write_clip(folder / f"{label}.mp4", images, fps=25))
    identity = make_identity(RestoreConfig(), always=True)
    identity.book.min_face = 0.0
    analyzer = make_analyzer(FaceStageSettings(), identity=identity)
    sizes: dict[str, float] = {}
    for frame in as_frames(clip, 25):
        _sizes(analyzer.push(frame), sizes)
    _sizes(analyzer.flush(), sizes)
    found = [(p.gallery[0], sizes[p.id]) for p in identity.book.persons.values()]
    return found, identity.seconds, identity.tracks, analyzer.times.seconds["detect"] / max(analyzer.frames, 1)


def _sizes(items: list, sizes: dict[str, float]) -> None:
    for item in items:
        for face in item.faces:
            sizes[face.person] = max(sizes.get(face.person, 0.0), float(max(face.box[2:] - face.box[:2])))


def photo_embeddings() -> list[tuple[str, np.ndarray]]:
    """One embedding per face of every image of ../shared/faces, found as vidgpen finds them in photos."""
    detectors = photo_detectors("retinaface-onnx")
    out = []
    for path in sorted(FACES.iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        for n, det in enumerate(faces_in_photo(rgb, detectors, 20)):
            out.append((f"{path.stem}#{n}", embed(rgb, det.box)))
    return out


def rates(same: np.ndarray, different: np.ndarray, threshold: float) -> tuple[float, float]:
    return float((same <= threshold).mean()), float((different <= threshold).mean())


def choose(*pairs: np.ndarray) -> float:
    """The threshold with the lowest sum of error rates over both kinds of pair (same, different,
    same, different), ties to the lower one: a wrong match restores a stranger, a miss only splits."""
    grid = np.round(np.arange(0.30, 0.71, 0.01), 2)
    errors = [sum(1 - rates(s, d, t)[0] + rates(s, d, t)[1] for s, d in zip(pairs[::2], pairs[1::2])) for t in grid]
    return float(grid[int(np.argmin(errors))])


def report(title: str, same: list[float], different: list[float]) -> tuple[np.ndarray, np.ndarray]:
    s, d = np.array(same), np.array(different)
    print(f"\n{title}: {len(s)} same-person pairs, {len(d)} different-person pairs")
    print(f"  same      distance p50 {np.median(s):.3f}  p95 {np.percentile(s, 95):.3f}  max {s.max():.3f}")
    print(f"  different distance min {d.min():.3f}  p1 {np.percentile(d, 1):.3f}  p50 {np.median(d):.3f}")
    return s, d


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=12, help="frames per moment of footage")
    parser.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG here")
    args = parser.parse_args()
    detector = make_detector("retinaface-onnx")
    names = sorted(p.stem for p in VIDEO.glob("*.mp4"))
    photos = {n: embed(clean_frame(n), max(detector.detect(clean_frame(n)), key=lambda d: d.size).box) for n in names}
    others = photo_embeddings()
    found: dict[str, list[tuple[np.ndarray, float]]] = {}
    seconds = detect_per_frame = 0.0
    counted = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            total = frame_count(name)
            found[name] = []
            for m in MOMENTS:
                start = min(int(total * m), total - args.frames)
                tracks, s, n, det = tracks_of(degraded(name, start, args.frames), Path(tmp), f"{name}-{m}")
                found[name] += tracks
                seconds, counted, detect_per_frame = seconds + s, counted + n, max(detect_per_frame, det)
        if args.sheet:
            square = [n for n in names if clean_frame(n).shape[0] == clean_frame(n).shape[1]]
            embeddings_sheet([degraded(n, 40, 6) for n in square[:6]], Path(tmp), args.sheet)
    print(f"{sum(map(len, found.values()))} tracks in {len(names)} videos × {len(MOMENTS)} moments; "
          f"reference photos: {len(names)} video frames, {len(others)} faces of ../shared/faces")
    small = [(n, size, distance(photos[n], e)) for n in names for e, size in found[n] if size < MIN_FACE]
    for n, size, d in small:
        print(f"  under MIN_FACE {MIN_FACE:.0f} px: {n}, {size:.0f} px, {d:.3f} from its own photo (a person of its own)")
    tracks = {n: [e for e, size in found[n] if size >= MIN_FACE] for n in names}
    same = [distance(photos[n], t) for n in names for t in tracks[n]]
    different = [(distance(photos[m], t), f"{m} photo ~ {n} track") for n in names for t in tracks[n] for m in names if m != n]
    different += [(distance(e, t), f"{label} ~ {n} track") for n in names for t in tracks[n] for label, e in others]
    ps, pd = report("photo → track", same, [d for d, _ in different])
    link_same = [distance(a, b) for n in names for i, a in enumerate(tracks[n]) for b in tracks[n][i + 1:]]
    link_diff = [(distance(a, b), f"{n} track ~ {m} track") for i, n in enumerate(names) for m in names[i + 1:]
                 for a in tracks[n] for b in tracks[m]]
    ls, ld = report("track → track", link_same, [d for d, _ in link_diff])
    print("\nthreshold   photo→track TMR  FMR     track→track TMR  FMR")
    for t in (0.40, 0.45, 0.50, 0.55, 0.60):
        (a, b), (c, d) = rates(ps, pd, t), rates(ls, ld, t)
        print(f"  {t:.2f}        {a:7.1%}  {b:6.2%}          {c:7.1%}  {d:6.2%}")
    chosen = choose(ps, pd, ls, ld)
    (a, b), (c, d) = rates(ps, pd, chosen), rates(ls, ld, chosen)
    print(f"\nchosen threshold {chosen:.2f} (vidgpen uses {MATCH_DISTANCE:.2f}): photo→track TMR {a:.1%} FMR {b:.2%}; "
          f"track→track TMR {c:.1%} FMR {d:.2%}")
    wrong = sorted((d, label) for d, label in different + link_diff if d <= chosen)
    print("different people within it: " + "; ".join(f"{label} {d:.3f}" for d, label in wrong))
    print(f"cost: {seconds / max(counted, 1):.2f} s per track (embedding its best detections and linking it); "
          f"detection {detect_per_frame * 1000:.0f} ms per frame for scale")
    return 0


def embeddings_sheet(shots: list[list[np.ndarray]], folder: Path, path: Path) -> None:
    """A clip of several people's square shots (the first comes back at the end) → its contact sheet."""
    side = shots[0][0].shape[0]
    images = [cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for shot in shots + [shots[0]] for f in shot]
    clip = decoded(write_clip(folder / "sheet.mp4", images, fps=25))
    identity = make_identity(RestoreConfig(), always=True)
    analyzer = make_analyzer(FaceStageSettings(), identity=identity)
    for frame in as_frames(clip, 25):
        analyzer.push(frame)
    analyzer.flush()
    cv2.imwrite(str(path), contact_sheet(identity.portraits)[:, :, ::-1])
    print(f"wrote {path}: {len(identity.portraits)} persons from {len(shots) + 1} shots")


if __name__ == "__main__":
    raise SystemExit(main())
