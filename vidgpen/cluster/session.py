"""Start or join Ray for vidgpen, and check that every node sees the files at the same path."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vidgpen.errors import InputError, OutputError, VidgpenError

RAY_HINT = "install it with: pip install 'vidgpen[ray]'"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_CHECK_TIMEOUT_S = 120.0  # a node's first task starts a Python worker: seconds on a busy machine


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise VidgpenError(f"--engine ray: Ray is not installed; {RAY_HINT}") from None
    return ray


def on_loopback(address: str | None) -> bool:
    """No address (Ray started here) or a head on this machine's loopback address."""
    return address is None or address.rpartition(":")[0] in LOOPBACK_HOSTS


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray for one run: the caller's connection if there is one, else join ``address``, else
    start Ray on this machine (``address="local"``: never a cluster some other program left
    running), with no dashboard; what this call started or joined it leaves at the end."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if on_loopback(address):
        _local_only(ray)
    with _signal_handlers_kept():
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Ray's core worker installs its own SIGTERM handler, which ends the driver at once
    (exit 15, workers' files left half-written); put back the Python handlers, so SIGTERM
    stops a run as Ctrl-C does (:mod:`vidgpen.interrupt`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def _local_only(ray: Any) -> None:
    """Keep every Ray process on 127.0.0.1.

    ``ray.init`` turns a loopback node address into this machine's outward one
    (``resolve_ip_for_localhost``), so even ``_node_ip_address="127.0.0.1"`` left the GCS,
    the raylet and the workers listening on every interface (Ray 2.60, checked with psutil;
    tests/test_cluster.py checks it stays so). Ray's local-only mode, the one it runs on
    macOS and Windows, keeps them on loopback: the variable reaches the processes Ray
    starts, the constant this one (it is read when Ray is imported).
    """
    os.environ[_LOCAL_ONLY_ENV] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def worker_nodes(ray: Any, resource: str) -> list[dict[str, Any]]:
    """The live nodes that can host a worker (they have ``resource``: CPU or GPU)."""
    return [n for n in ray.nodes() if n["Alive"] and n["Resources"].get(resource, 0) > 0]


def check_shared_paths(ray: Any, nodes: list[dict[str, Any]], files: dict[str, int], folders: list[str]) -> None:
    """Before any work: every node must see each input (with the driver's size) and each
    output folder (writable) at the same path; otherwise one error naming node and path."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    look = ray.remote(num_cpus=0, max_retries=0)(missing_paths)
    refs = [look.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(files, folders) for n in nodes]
    for node, problem in zip(nodes, ray.get(refs, timeout=_CHECK_TIMEOUT_S)):
        if problem is not None:
            kind, path, why = problem
            error = InputError if kind == "input" else OutputError
            raise error(f"{path}: {why} on Ray node {node['NodeManagerAddress']} ({node['NodeID'][:12]}); every "
                        "node must see the input and output folders at the same path (shared storage, e.g. NFS)")


def missing_paths(files: dict[str, int], folders: list[str]) -> tuple[str, str, str] | None:
    """Run on a node: the first input or output folder it cannot use, as (kind, path, why)."""
    for path, size in files.items():
        if not os.path.isfile(path):
            return "input", path, "not found"
        if os.path.getsize(path) != size:
            return "input", path, f"another file ({os.path.getsize(path)} bytes, the driver's has {size})"
    for folder in folders:
        if not Path(folder).is_dir():
            return "output", folder, "no such folder"
        if not os.access(folder, os.W_OK):
            return "output", folder, "not writable"
    return None
