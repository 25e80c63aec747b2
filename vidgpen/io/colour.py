"""Colour tags (range, matrix, primaries, transfer) as FFmpeg's names.

VideoInfo carries the names ffprobe prints ("tv", "bt709", ...) so they read well in
reports and presets; PyAV exchanges FFmpeg's integer enums. "Unspecified" maps to None.
"""

from __future__ import annotations

from av.video.reformatter import ColorRange, Colorspace

# Integer values of FFmpeg's AVColorRange / AVColorSpace / AVColorPrimaries /
# AVColorTransferCharacteristic (libavutil/pixfmt.h) and their av_color_*_name() names.
RANGES = {1: "tv", 2: "pc"}
SPACES = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
    13: "chroma-derived-c", 14: "ictcp",
}
PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}
TRANSFERS = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}


def tag_name(table: dict[int, str], value: int | None) -> str | None:
    """FFmpeg's name for an enum value; None when unspecified or unknown to the table."""
    return table.get(value) if value else None


def tag_value(table: dict[int, str], name: str | None) -> int | None:
    """Inverse of :func:`tag_name`; None (leave the encoder's default) when unknown."""
    if name is None:
        return None
    return next((value for value, known in table.items() if known == name), None)


def swscale_matrix(space: str | None) -> Colorspace:
    """The RGB<->YUV matrix swscale should use for a stream tagged ``space``.

    Untagged SD and HD video alike is treated as BT.601, as FFmpeg does, so a frame
    converted back matches what the decoder's RGB conversion assumed.
    """
    if space == "bt709":
        return Colorspace.ITU709
    if space in ("bt2020nc", "bt2020c"):
        return Colorspace.BT2020
    if space == "smpte240m":
        return Colorspace.SMPTE240M
    if space == "fcc":
        return Colorspace.FCC
    return Colorspace.ITU601


def swscale_range(color_range: str | None) -> ColorRange:
    """Limited ("tv") range unless the stream says full ("pc"), as FFmpeg assumes."""
    return ColorRange.JPEG if color_range == "pc" else ColorRange.MPEG
