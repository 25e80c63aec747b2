"""Exception types the CLI maps to exit codes.

Anything derived from :class:`VidgpenError` is the user's to fix (a bad file, a bad
option, missing weights): the CLI prints its message as one ``error: ...`` line and exits
with code 2. Every message names the file it is about, so it stands on its own.
Other exceptions are failures while processing (exit code 1).
"""

from __future__ import annotations


class VidgpenError(Exception):
    """Bad input or usage; the message is one line naming the file and the problem."""


class InputError(VidgpenError):
    """An input media file cannot be used (missing, empty, not media, no video stream)."""


class OutputError(VidgpenError):
    """The output cannot be written (it is the input, exists, or its folder is unwritable)."""


class WeightsError(VidgpenError):
    """A model checkpoint is missing, corrupt, or not of a layout vidgpen knows."""


class ConfigError(VidgpenError):
    """A preset, config file or option has an unknown key or a bad value."""


class RunCancelled(BaseException):
    """A run stopped by its caller (a batch that stops, a UI's cancel button) through the ``cancel``
    event it handed in: not an error of the file, and a BaseException so that retry loops let it
    through. The run has removed its partial output, as for Ctrl-C."""


def first_line(error: BaseException | str, limit: int = 200) -> str:
    """The gist of a library's error for a one-line message.

    decord and ONNX Runtime append multi-line C++ backtraces, pickle and FFmpeg errors can
    span lines: keep the first line, or the type's name when the error says nothing.
    """
    text = str(error).strip()
    if not text:
        return type(error).__name__ if isinstance(error, BaseException) else "no details"
    return text.splitlines()[0][:limit]
