"""``vidgpen ui``: the local web UI (the ``vidgpen[ui]`` extra), on 127.0.0.1 unless told otherwise.

Only the flags are read here; Gradio and the pipeline are imported once the binding is
known to be allowed, so ``vidgpen --help`` and a refused ``--host`` stay fast.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from vidgpen.cli.args import add_config_arguments
from vidgpen.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only); any other needs --auth "
                        "or --token")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--auth", default=None, metavar="USER:PASS", help="log-in required to use the UI")
    parser.add_argument("--token", default=None,
                        help="a secret required to use the UI (entered as the password, with any user name)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    parser.add_argument("--state-dir", type=Path, default=Path.home() / ".vidgpen-ui",
                        help="where the job queue and uploads are kept (default ~/.vidgpen-ui)")
    parser.add_argument("--outputs", type=Path, default=Path.cwd() / "restored",
                        help="folder for restored videos; files there can be played and downloaded in the UI "
                        "(default ./restored)")
    parser.add_argument("--suffix", default=".mp4", choices=(".mp4", ".mkv", ".mov", ".webm"),
                        help="output container the Settings screen starts with (default: %(default)s)")
    add_config_arguments(parser)  # the settings the Settings screen starts with


def check_binding(host: str, auth: str | None, token: str | None) -> tuple[str, str] | None:
    """The (user, password) the server requires; refuse listening beyond loopback without one."""
    if auth is not None and ":" not in auth:
        raise ConfigError(f"--auth {auth!r}: expected USER:PASS")
    if auth is None and token is None and not _loopback(host):
        raise ConfigError(f"--host {host}: listening beyond this machine needs --auth USER:PASS or --token TOKEN "
                          "(anyone on the network could otherwise read and write files as you)")
    if auth is not None:
        user, _, password = auth.partition(":")
        return user, password
    return ("", token) if token is not None else None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def run(args: argparse.Namespace) -> int:
    login = check_binding(args.host, args.auth, args.token)
    from vidgpen.ui.server import serve  # Gradio, torch: only now

    serve(args, login)
    return 0
