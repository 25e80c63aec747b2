"""Planning: what a run will do, worked out once from the user's settings, the probed input and
the machine (:mod:`.run_plan`), and which restorer each face gets (:mod:`.choice`)."""
