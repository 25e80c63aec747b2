"""The I/O stages' option names, importable without PyAV: config checks settings against them."""

DECODERS = ("pyav", "decord")
DEINTERLACERS = ("bwdif", "yadif", "auto")
ENCODER_BACKENDS = ("pyav", "ffmpeg")  # vidgpen.io.backends
