"""The I/O stages' option names, importable without PyAV: config checks settings against them."""

DECODERS = ("pyav", "decord")
DEINTERLACERS = ("bwdif", "yadif", "auto", "ivtc")  # vidgpen.io.fields
DEINTERLACE_RATES = ("frame", "field")
ENCODER_BACKENDS = ("pyav", "ffmpeg")  # vidgpen.io.backends
