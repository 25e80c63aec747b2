"""The I/O stages' option names, importable without PyAV: config checks settings against them."""

ENCODER_BACKENDS = ("pyav", "ffmpeg")  # vidgpen.io.backends
