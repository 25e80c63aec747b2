"""Make ``samples/astronaut.mp4``: the README's quickstart clip.

A public-domain face (NASA's portrait of astronaut Eileen Collins, as shipped in
scikit-image's ``data.astronaut()``) drifts and zooms across a 640×360 frame for four
seconds, degraded the way old home video is: soft focus, sensor noise, blocky JPEG,
with a grayscale middle section, plus a stereo AAC audio track (a chord with a slow
tremolo) so audio pass-through can be heard and checked.

Run: ``pip install scikit-image && python samples/make_sample.py``.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 25, 4
SAMPLE_RATE = 44100


def face_frames(rng: np.random.Generator) -> list[np.ndarray]:
    portrait = data.astronaut()[:300, 60:360]  # head and shoulders
    background = cv2.GaussianBlur(cv2.resize(data.astronaut(), (WIDTH, HEIGHT)), (0, 0), 25)
    frames = []
    n = FPS * SECONDS
    for i in range(n):
        t = i / (n - 1)
        scale = 0.85 + 0.2 * np.sin(np.pi * t)  # slow zoom in and out
        angle = 6.0 * np.sin(2 * np.pi * t)  # gentle head tilt
        centre = (WIDTH * (0.35 + 0.3 * t), HEIGHT * (0.5 + 0.05 * np.sin(3 * np.pi * t)))
        matrix = cv2.getRotationMatrix2D((150.0, 150.0), angle, scale)
        matrix[:, 2] += np.array(centre) - 150.0
        frame = background.copy()
        cv2.warpAffine(portrait, matrix, (WIDTH, HEIGHT), dst=frame, borderMode=cv2.BORDER_TRANSPARENT)
        frames.append(degrade(frame, grayscale=0.4 <= t < 0.65, rng=rng))
    return frames


def degrade(frame: np.ndarray, grayscale: bool, rng: np.random.Generator) -> np.ndarray:
    small = cv2.resize(frame, (WIDTH // 3, HEIGHT // 3), interpolation=cv2.INTER_AREA)
    frame = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    frame = cv2.GaussianBlur(frame, (0, 0), 1.2)
    frame = np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 35])
    frame = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]
    if grayscale:
        frame = np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return np.ascontiguousarray(frame)


def audio_track() -> np.ndarray:
    t = np.arange(SAMPLE_RATE * SECONDS) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    tremolo = 0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)
    left, right = chord * tremolo * 0.3, chord * (1.6 - tremolo) * 0.2
    return np.stack([left, right]).astype(np.float32)


def write(path: Path, frames: list[np.ndarray], audio: np.ndarray) -> None:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"crf": "26", "preset": "slow"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        step = 1024
        for start in range(0, audio.shape[1], step):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start:start + step]), format="fltp",
                                               layout="stereo")
            chunk.sample_rate, chunk.pts, chunk.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("astronaut.mp4")))
    args = parser.parse_args()
    write(Path(args.output), face_frames(np.random.default_rng(7)), audio_track())
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
