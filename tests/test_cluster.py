"""One long video across a Ray cluster: a head with no CPUs and two 1-CPU worker nodes on
this machine (Ray's own ``ray.cluster_utils.Cluster``, all on 127.0.0.1, no dashboard).

The clip is 5 s at 10 fps in 1-second segments (4 of them: the last one takes the
remainder). Every result is compared byte for byte with a local ``--resume 1`` run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import FACES, REPO
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import decoded_frames, packet_digests, write_video

from vidgpen import RestoreConfig
from vidgpen.api import run_restore
from vidgpen.batch import MANIFEST_NAME, BatchOptions, run_batch
from vidgpen.cluster.restore import RayOptions
from vidgpen.errors import InputError
from vidgpen.pipeline.segments import parts_folder, run_resumable

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")
pytestmark = pytest.mark.slow

SECONDS, FPS = 5, 10
# Node death is noticed after 3 missed health checks 0.5 s apart, not the default 15 s.
HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_timeout_ms": 500,
          "health_check_failure_threshold": 3}
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cluster")
    face = load_face(FACES / "ffhq_00003.png", 72)
    clip = make_clip([(face, smooth_path(80, 60, dx=16, dy=6, period=20))], SECONDS * FPS, (160, 120), codec=None)
    return {"video": write_video(root / "clip.mp4", clip.frames, fps=FPS, audio="aac"),
            "weights": make_gpen_checkpoint(root / "tiny-gpen.pth", size=64)}


@pytest.fixture(scope="module")
def config(media) -> RestoreConfig:
    # float32 and batch 1, as in test_resume; FFV1 because libx264 here does not give the same
    # packets twice for the same frames (its threads), while FFV1 is lossless and repeatable
    return RestoreConfig(weights=str(media["weights"]), batch_size=1, dtype="float32", codec="ffv1")


@pytest.fixture(scope="module")
def reference(media, config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "local.mkv"
    run_resumable(config, media["video"], out, 1.0)
    return out


@pytest.fixture(scope="module")
def cluster():
    """Ray's test cluster: a head that runs nothing and two 1-CPU worker nodes."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    head = {"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False, "_system_config": HEALTH}
    made = cluster_utils.Cluster(initialize_head=True, head_node_args=head)
    try:
        for _ in range(2):
            made.add_node(**NODE)
        yield made
    finally:
        made.shutdown()


@pytest.fixture(autouse=True)
def _two_workers_alive(request):
    """Every test that uses the cluster starts on its two worker nodes, as the cluster's own
    table sees them: a node taken away by another test (in any order, `pytest -p randomly`)
    counts as alive there until three health checks have missed it."""
    if "cluster" in request.fixturenames:
        _wait_for_nodes(request.getfixturevalue("cluster"), 2)


_LISTENING = """
import json, psutil
from vidgpen.cluster.session import missing_paths, ray_session
with ray_session(None) as ray:
    assert ray.get(ray.remote(num_cpus=0)(missing_paths).remote({}, [])) is None  # a worker is up
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.children(recursive=True))}
    print(json.dumps(sorted({c.laddr.ip for c in psutil.net_connections("inet")
                             if c.status == psutil.CONN_LISTEN and c.pid in ours})))
"""


def test_ray_started_here_listens_on_loopback_only():
    """Ray turns 127.0.0.1 into the outward address unless in its local-only mode: checked on the
    sockets. In its own process: a local ray.init switches the process to token auth for good."""
    done = subprocess.run([sys.executable, "-c", _LISTENING], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"})
    assert done.returncode == 0, done.stderr
    listening = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening


def _worker_nodes(cluster) -> set[str]:
    return {node.node_id for node in cluster.worker_nodes}


def _same_output(out: Path, reference: Path) -> None:
    """Equal byte for byte: every video packet (so every frame) and every audio packet, with their times."""
    assert packet_digests(out, "video") == packet_digests(reference, "video")
    assert packet_digests(out) == packet_digests(reference)  # audio
    assert len(packet_digests(out, "video")) == SECONDS * FPS


def _ray_restore(cluster, config, media, out: Path, **callbacks):
    return run_restore(config, media["video"], out, resume_segments=1.0,
                       ray=RayOptions(address=cluster.address, jobs=2), **callbacks)


def test_segments_spread_over_both_nodes_equal_the_local_run(cluster, media, config, reference, tmp_path):
    frames: list[int] = []
    report = _ray_restore(cluster, config, media, tmp_path / "out.mkv", on_progress=lambda n, _: frames.append(n))
    _same_output(tmp_path / "out.mkv", reference)
    assert not parts_folder(tmp_path / "out.mkv").exists()
    segments = report.segments
    assert [s["index"] for s in segments] == [0, 1, 2, 3] and sum(s["frames"] for s in segments) == SECONDS * FPS
    assert {s["node"] for s in segments} == _worker_nodes(cluster)  # both worker nodes, never the head
    assert all(s["attempts"] == 1 and s["seconds"] > 0 and s["worker"] for s in segments)
    assert frames == sorted(frames) and frames[-1] == SECONDS * FPS  # counted across workers
    assert len(frames) > len(segments)  # while segments run, not only as they end


def test_a_missing_input_on_one_node_is_named_before_any_work(cluster, media, config, tmp_path):
    """A node started in its own mount namespace, with an empty tmpfs over the input's folder."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("hiding a folder from one node needs `unshare -m` and root (a private mount namespace)")
    folder = tmp_path / "library"
    folder.mkdir()
    video = Path(shutil.copy(media["video"], folder / "clip.mp4"))
    code = ("import sys, time, ray._private.node as n, ray._private.parameter as p;"
            "node = n.Node(p.RayParams(node_ip_address='127.0.0.1', gcs_address=sys.argv[1], num_cpus=1,"
            " include_log_monitor=False, node_manager_port=0, min_worker_port=0, max_worker_port=0,"
            " object_store_memory=150 << 20), head=False, shutdown_at_exit=True, spawn_reaper=True);"
            "print(node.node_id, flush=True); time.sleep(600)")
    hidden = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs hidden {folder} && exec {sys.executable} -c \"$0\" \"$1\"",
         code, cluster.gcs_address], stdout=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        node_id = hidden.stdout.readline().strip()
        assert node_id, "the hidden node did not start"
        _wait_for_nodes(cluster, 3)
        out = tmp_path / "out.mkv"
        with pytest.raises(InputError) as error:
            run_restore(config, video, out, resume_segments=1.0, ray=RayOptions(address=cluster.address))
        assert str(error.value).startswith(f"{video}: not found on Ray node 127.0.0.1 ({node_id[:12]})")
        assert not out.exists() and not parts_folder(out).exists()
    finally:
        os.killpg(hidden.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            hidden.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(hidden.pid, signal.SIGKILL)
    _wait_for_nodes(cluster, 2)


def _wait_for_nodes(cluster, count: int, timeout: float = 60.0) -> None:
    """Until ``count`` worker nodes are alive in the cluster's own table."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [n for n in cluster.global_state.node_table() if n["Alive"] and n["Resources"].get("CPU")]
        if len(alive) == count:
            return
        assert time.monotonic() < deadline, f"{len(alive)} worker nodes alive, expected {count}"
        time.sleep(0.2)


def _segment_workers(cluster) -> list[psutil.Process]:
    """The SegmentWorker actor processes of this cluster (children of its raylets)."""
    found = []
    for node in [cluster.head_node, *cluster.worker_nodes]:
        for info in node.all_processes.get("raylet", []):
            with contextlib.suppress(psutil.NoSuchProcess):
                found += [p for p in psutil.Process(info.process.pid).children(recursive=True)
                          if "SegmentWorker" in " ".join(p.cmdline())]
    return found


def test_stopping_the_driver_leaves_finished_parts_only_and_a_rerun_finishes(cluster, media, config, reference,
                                                                            tmp_path):
    """SIGTERM, which takes the same path as Ctrl-C (vidgpen.interrupt) once Ray's own handler is undone."""
    out = tmp_path / "out.mkv"
    command = [sys.executable, "-m", "vidgpen", "restore", str(media["video"]), "-o", str(out), "--engine", "ray",
               "--ray-address", cluster.address, "--resume", "1", "--weights", str(media["weights"]),
               "--batch-size", "1", "--dtype", "float32", "--codec", "ffv1", "-q"]
    log = tmp_path / "driver.log"
    with log.open("w") as sink:
        driver = subprocess.Popen(command, stdout=sink, stderr=sink, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            deadline = time.monotonic() + 240
            while not list(parts_folder(out).glob("part-*[0-9].mkv")):  # a segment is finished
                assert driver.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            driver.send_signal(signal.SIGTERM)
            code = driver.wait(timeout=120)
        finally:
            if driver.poll() is None:
                driver.kill()
    assert code == 143, log.read_text()
    assert not out.exists()
    left = sorted(p.name for p in parts_folder(out).iterdir())
    assert left and all(name == "state.json" or ".partial" not in name for name in left), left
    deadline = time.monotonic() + 60
    while _segment_workers(cluster):  # the workers go with their driver
        assert time.monotonic() < deadline, "SegmentWorker processes outlived the driver"
        time.sleep(0.2)

    report = _ray_restore(cluster, config, media, out)
    finished = [name for name in left if name.startswith("part-")]
    assert [s["index"] for s in report.segments if s["reused"]] == [int(n[5:10]) for n in finished]
    _same_output(out, reference)


def test_a_batch_splits_the_long_file_over_both_nodes_and_keeps_short_ones_whole(cluster, media, config,
                                                                                reference, tmp_path):
    library, out = tmp_path / "library", tmp_path / "out"
    library.mkdir()
    shutil.copy(media["video"], library / "film.mp4")
    short = [f"clip{i}.mp4" for i in range(3)]
    for i, name in enumerate(short):  # 0.8 s each: under one segment
        face = load_face(FACES / f"ffhq_0000{i + 1}.png", 64)
        clip = make_clip([(face, smooth_path(80, 60, dx=10, dy=4, period=8))], 8, (160, 120), seed=i, codec=None)
        write_video(library / name, clip.frames, fps=FPS, audio="aac")
    options = BatchOptions(engine="ray", ray_address=cluster.address, jobs=2, resume_segments=1.0, output_suffix=".mkv")
    summary = run_batch(library, out, config, options)
    assert (summary.done, summary.failed) == (4, 0)
    records = {r.input: r for r in summary.results}
    film = records["film.mp4"]
    assert [s["index"] for s in film.segments] == [0, 1, 2, 3]
    assert {s["node"] for s in film.segments} == _worker_nodes(cluster)  # the film on both nodes at once
    assert film.frames == SECONDS * FPS
    _same_output(out / "film.mkv", reference)
    assert all(records[name].segments == [] and records[name].frames == 8 for name in short)  # whole
    manifest = json.loads((out / MANIFEST_NAME).read_text())["files"]
    assert sorted(r["input"] for r in manifest) == sorted(["film.mp4", *short])  # one record per file
    assert not list(out.rglob("*.vidgpen-parts")) and not list(out.rglob("*.partial.*"))


def test_a_segment_failing_on_bad_input_is_not_retried(cluster, media, config, tmp_path):
    """A Matroska file cut short keeps the whole duration in its header: the segments past the
    cut have no frames, which a worker finds only when it gets there (InputError), once."""
    library, out = tmp_path / "library", tmp_path / "out"
    library.mkdir()
    video = write_video(library / "cut.mkv", [f.to_ndarray(format="rgb24") for f in decoded_frames(media["video"])],
                        fps=FPS)
    video.write_bytes(video.read_bytes()[: video.stat().st_size * 2 // 5])
    options = BatchOptions(engine="ray", ray_address=cluster.address, jobs=2, retries=3, resume_segments=1.0,
                           output_suffix=".mkv")
    summary = run_batch(library, out, config, options)
    [record] = summary.results
    assert (record.status, record.error_type, record.attempts) == ("failed", "InputError", 1)
    assert record.error == f"{video}: no video frames to write (nothing decodable in the span asked for)"
    assert not list(out.rglob("*.partial.*")) and not (out / "cut.mkv").exists()


def test_a_node_lost_mid_segment_is_retried_elsewhere(cluster, media, config, reference, tmp_path):
    """It takes a node away and puts a new one in (the next test waits until the cluster's
    table has the new one alive and the old one dead)."""
    out = tmp_path / "out.mkv"
    folder = parts_folder(out)
    removed: list[str] = []

    def remove_a_busy_node(frames: int, faces: int) -> None:
        if not removed and len(list(folder.glob("*.partial.*"))) == 2:  # both workers are mid-segment
            node = sorted(cluster.worker_nodes, key=lambda n: n.node_id)[-1]
            removed.append(node.node_id)
            cluster.remove_node(node)

    report = _ray_restore(cluster, config, media, out, on_progress=remove_a_busy_node)
    try:
        assert removed, "the two workers were never busy at the same time"
        _same_output(out, reference)
        retried = [s for s in report.segments if s["attempts"] == 2]
        assert len(retried) == 1 and retried[0]["node"] != removed[0]
        assert retried[0]["failures"][0].startswith(f"{removed[0]}: ")
        assert all(s["attempts"] == 1 for s in report.segments if s not in retried)
    finally:
        cluster.add_node(**NODE)  # back to two worker nodes for whatever runs next
