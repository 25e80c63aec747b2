"""The face stages' option names, importable without OpenCV or ONNX Runtime: config checks
settings against them, so ``import vidgpen.config`` stays light."""

DETECTORS = ("retinaface-onnx", "retinaface", "retinaface-mobilenet", "dlib")
MASKS = ("feather", "parsing")
TEMPLATES = ("gpen", "ffhq")  # the keys of vidgpen.faces.align.TEMPLATES
