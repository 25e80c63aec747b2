"""The streaming restore pipeline: decode → analyze → align → restore → paste → encode.

``runner`` owns the threads and bounded channels, ``stages`` the steps between them,
``outputs`` the encode stage, ``run`` the ``Pipeline`` that wires them, ``segments`` the
resumable (segmented) run, ``report`` what a run did.
"""

from vidgpen.pipeline.report import RunReport
from vidgpen.pipeline.run import Pipeline

__all__ = ["Pipeline", "RunReport"]
