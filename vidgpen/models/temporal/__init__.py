"""Temporal fusion for ``--deflicker``: per-track state inside GPEN (:mod:`.fusion`) and the
restore stage's side of it (:mod:`.deflicker`)."""
