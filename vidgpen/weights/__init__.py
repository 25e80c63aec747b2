"""Weights files: what each known file is (:mod:`.spec`, :mod:`.registry`), where it is cached and
how it is fetched (:mod:`.download`). Faces (detectors, parsing masks) and models (restorers)
both take their files from here, so neither stage package depends on the other."""
