"""Start the UI's server: offline Gradio on a free port, the job queue, the browser tab."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

# Set before Gradio is imported: it reads them at import. Nothing the UI does calls out:
# no analytics or version checks, no Hugging Face hub, no server-side rendering (a Node
# process), and the theme's fonts are the ones Gradio ships (tests/test_ui_browser.py
# fails on any request that leaves 127.0.0.1).
OFFLINE = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_SSR_MODE": "False",
    "GRADIO_MCP_SERVER": "False",
    "GRADIO_RUN_HISTORY": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def offline_environment(state_dir: Path) -> None:
    os.environ.update(OFFLINE)
    os.environ["GRADIO_TEMP_DIR"] = str(state_dir / "uploads")  # kept, so a queued upload outlives a restart


def free_port(host: str) -> int:
    """A port the OS says is free now (Gradio's own search starts at 7860 and walks up)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve(args: argparse.Namespace, login: tuple[str, str] | None) -> None:
    """Build the app from the parsed ``vidgpen ui`` flags and serve it until interrupted."""
    state_dir = args.state_dir.expanduser().resolve()
    outputs = args.outputs.expanduser().resolve()
    for folder in (state_dir / "uploads", outputs):
        folder.mkdir(parents=True, exist_ok=True)
    offline_environment(state_dir)

    from vidgpen.cli.args import config_from_args
    from vidgpen.ui.app import build_app, theme
    from vidgpen.ui.jobs import JobQueue
    from vidgpen.ui.settings import EDITED
    from vidgpen.ui.work import run_job

    initial = config_from_args(args)  # the settings flags given to `vidgpen ui`: bad ones fail here
    queue = JobQueue(state_dir, run_job)
    app = build_app(queue, args.preset, {key: getattr(initial, key) for key in EDITED}, outputs, args.suffix)
    port = args.port or free_port(args.host)
    print(f"vidgpen ui: http://{args.host}:{port}/", flush=True)
    app.launch(server_name=args.host, server_port=port, inbrowser=not args.no_browser, auth=_auth(login),
               share=False, quiet=True, allowed_paths=[str(outputs)], footer_links=[], ssr_mode=False,
               mcp_server=False, pwa=False, enable_monitoring=False, theme=theme(), show_error=True)


def _auth(login: tuple[str, str] | None):
    """Gradio's auth: USER:PASS as given, or a token as the password with any user name."""
    if login is None or login[0]:
        return login
    token = login[1]
    return lambda _user, password: password == token
