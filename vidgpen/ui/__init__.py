"""``vidgpen ui``: a local web UI on Gradio (the ``vidgpen[ui]`` extra).

``settings`` turns the screen's values into the CLI's flags, ``preview`` restores one frame
with the pipeline, ``jobs`` and ``work`` queue runs and batches, ``screens`` are the
handlers, ``app`` the layout and ``server`` starts it offline. Nothing here imports Gradio
at package import: only ``app`` and ``server.serve`` do.
"""
