"""The output pixel format: ``--pix-fmt auto`` and the formats the writer can patch.

Delivery codecs (x264, x265, VP9, AV1, NVENC) get what every player decodes: yuv420p, or
yuv420p10le for a >8-bit source when the codec encodes it. Archival and intermediate
codecs (FFV1, ProRes, HuffYUV/FFVHuff, DNxHD) keep the source's format, so a 4:2:2 or
10-bit capture keeps its chroma and depth (always converting to yuv420p cost a 4:2:2
HuffYUV and a 10-bit ProRes capture min PSNR 41.7 and 44.2 dB at strength 0).
"""

from __future__ import annotations

import re

import av

from vidgpen.io.frames import VideoInfo

AUTO = "auto"
ARCHIVAL_CODECS = ("ffv1", "prores_ks", "prores", "huffyuv", "ffvhuff", "dnxhd")
# Planar YUV or gray, little-endian, no alpha: the writer patches these plane by plane.
_PATCHABLE = re.compile(r"^(yuv(420|422|444|411|410|440)p|gray)((9|10|12|14|16)le)?$")


def patchable(pix_fmt: str) -> bool:
    """Whether the writer can encode ``pix_fmt`` (and pass untouched pixels through in it)."""
    return bool(_PATCHABLE.match(pix_fmt))


def depth(pix_fmt: str) -> int:
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def plain(pix_fmt: str) -> str:
    """The limited/full-range-neutral name: yuvj420p (JPEG's full range) is yuv420p with a
    range tag, which the writer carries separately; alpha is not kept."""
    return pix_fmt.replace("yuvj", "yuv").replace("yuva", "yuv")


def _encodable(codec: str) -> set[str] | None:
    if codec not in av.codecs_available:
        return None
    formats = av.Codec(codec, "w").video_formats
    return {f.name for f in formats} if formats else None


def auto_pix_fmt(codec: str, info: VideoInfo) -> str:
    """What ``--pix-fmt auto`` means for ``codec`` and this source (see the module doc)."""
    supported = _encodable(codec)
    deep = info.bit_depth > 8
    if codec not in ARCHIVAL_CODECS:  # delivery: x264, x265, VP9, AV1, NVENC
        wide = "yuv420p10le"
        return wide if deep and (supported is None or wide in supported) else "yuv420p"
    source = plain(info.pix_fmt)
    if patchable(source) and (supported is None or source in supported):
        return source
    return _nearest(source, info.bit_depth, supported or set())


def _nearest(source: str, bits: int, supported: set[str]) -> str:
    """The encodable patchable format that loses nothing: at least the source's depth and
    chroma resolution, the least data among those (e.g. 4:2:0 8-bit → ProRes yuv422p10le)."""
    src_w, src_h = _subsampling(source) if patchable(source) else (0, 0)
    fits = [f for f in supported if patchable(f) and not f.startswith("gray")]
    keep = [f for f in fits if depth(f) >= bits and _subsampling(f)[0] <= src_w and _subsampling(f)[1] <= src_h]
    pool = keep or fits
    if not pool:
        return "yuv444p10le" if bits > 8 else "yuv444p"
    return min(pool, key=lambda f: (depth(f), -sum(_subsampling(f)), f))


def _subsampling(pix_fmt: str) -> tuple[int, int]:
    """log2 of the chroma planes' horizontal and vertical subsampling."""
    fmt = av.VideoFormat(pix_fmt, 64, 64)
    chroma = [c for c in fmt.components if c.plane > 0] or list(fmt.components)
    return ((64 // chroma[0].width).bit_length() - 1, (64 // chroma[0].height).bit_length() - 1)
