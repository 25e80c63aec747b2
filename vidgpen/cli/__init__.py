"""The ``vidgpen`` command line: one module per sub-command, exit codes users can script on.

Exit codes: 0 done, 2 bad input or usage (one ``error: ...`` line, no traceback unless
``-v``), 1 failure while processing, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM,
129 by SIGHUP.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from vidgpen.errors import VidgpenError
from vidgpen.interrupt import exit_code, stop_signals
from vidgpen.models.runtime.memory import keep_freed_memory
from vidgpen.plugins import load_plugins

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one ``error:`` line instead of the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    from vidgpen.cli import batch, inspect, models, presets, restore, ui

    parser = _Parser(prog="vidgpen", description="Restore faces in videos with GPEN: tracked, smoothed, streaming.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging; tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    # -v/-q are accepted after the sub-command too (`vidgpen restore IN -o OUT -q`).
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    subcommands = [
        ("restore", "restore every face in a video", restore),
        ("batch", "restore every video of a library folder, resumable, locally or on Ray", batch),
        ("inspect", "detect, track and align faces without restoring (no weights needed)", inspect),
        ("models", "list, locate, download and verify model weights", models),
        ("presets", "list presets or show one merged over the defaults", presets),
        ("ui", "a local web UI: preview a restored frame, run and watch jobs (vidgpen[ui] extra)", ui),
    ]
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}
    for name, text, module in subcommands:
        module.add_arguments(sub.add_parser(name, help=text, parents=[common]))
        handlers[name] = module.run

    parser.set_defaults(_handlers=handlers)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    keep_freed_memory()  # before any thread starts, so every thread shares the one tuned heap
    try:
        with stop_signals():
            load_plugins()  # before any setting is checked: a plug-in may add a detector or a model
            return args._handlers[args.command](args)
    except VidgpenError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:  # a failure while processing: one line unless -v
        if args.verbose:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
