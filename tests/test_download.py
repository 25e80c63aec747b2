"""Downloads from a real HTTP server on 127.0.0.1: verified before the rename, sources tried in order."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gpen_checkpoints import make_gpen_checkpoint

from vidgpen.errors import WeightsError
from vidgpen.models.network.loader import load_gpen
from vidgpen.weights import registry
from vidgpen.weights.download import reachable

REFUSED = "http://127.0.0.1:9/GPEN-BFR-512.pth"  # discard port: refused at once, no DNS


class _Files(BaseHTTPRequestHandler):
    """Serves ``files`` by path; under /cut/ it announces the whole length but sends half and hangs up."""

    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        cut = self.path.startswith("/cut/")
        data = self.files.get(self.path.removeprefix("/cut"))
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data[: len(data) // 2] if cut else data)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    good = make_gpen_checkpoint(tmp_path_factory.mktemp("upstream") / "GPEN-BFR-512.pth", size=32).read_bytes()
    _Files.files = {"/good.pth": good, "/other.pth": good[:-100] + bytes(100)}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "good": good}
    httpd.shutdown()
    thread.join()


def _serve_as(monkeypatch, *sources: str, **changes) -> registry.ModelSpec:
    spec = dataclasses.replace(registry.REGISTRY["gpen-bfr-512"], sources=sources, **changes)
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    return spec


def _folder_listing() -> list[str]:
    return sorted(p.name for p in registry.weights_dir().iterdir())


def test_good_file_is_verified_and_renamed_into_place(monkeypatch, server):
    _serve_as(monkeypatch, f"{server['url']}/good.pth", sha256=hashlib.sha256(server["good"]).hexdigest(),
              file_bytes=len(server["good"]))
    path = registry.download("gpen-bfr-512")
    assert path.read_bytes() == server["good"] and _folder_listing() == ["GPEN-BFR-512.pth"]
    assert load_gpen("gpen-bfr-512").out_size == 32
    assert registry.verify("gpen-bfr-512") == hashlib.sha256(server["good"]).hexdigest()


def test_truncated_download_is_not_saved(monkeypatch, server):
    url = f"{server['url']}/cut/good.pth"
    _serve_as(monkeypatch, url)  # no hash pinned: the announced length alone catches it
    with pytest.raises(WeightsError) as info:
        registry.download("gpen-bfr-512")
    half = len(server["good"]) // 2
    assert f"{url} (truncated: {half} " in str(info.value) and "\n" not in str(info.value)
    assert _folder_listing() == []  # neither the file nor a .part


def test_wrong_hash_falls_back_to_the_next_source(monkeypatch, server, caplog):
    digest = hashlib.sha256(server["good"]).hexdigest()
    wrong = hashlib.sha256(_Files.files["/other.pth"]).hexdigest()
    _serve_as(monkeypatch, f"{server['url']}/other.pth", f"{server['url']}/good.pth", sha256=digest)
    with caplog.at_level(logging.WARNING, logger="vidgpen.weights.download"):
        path = registry.download("gpen-bfr-512")
    assert path.read_bytes() == server["good"] and _folder_listing() == ["GPEN-BFR-512.pth"]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "/other.pth" in warning and wrong in warning and digest in warning  # names both hashes


def test_every_source_failing_is_one_error_naming_each_url(monkeypatch, server):
    missing, cut = f"{server['url']}/missing.pth", f"{server['url']}/cut/good.pth"
    spec = _serve_as(monkeypatch, missing, cut, REFUSED)
    target = registry.path_of("gpen-bfr-512")
    with pytest.raises(WeightsError) as info:
        load_gpen("gpen-bfr-512")
    message = str(info.value)
    assert message.startswith(f"{target}: gpen-bfr-512 weights missing (download failed from every source: ")
    assert f"{missing} (Not Found)" in message and f"{cut} (truncated" in message and f"{REFUSED} (" in message
    assert "\n" not in message and _folder_listing() == []
    with pytest.raises(WeightsError, match="no source reachable: .*missing.pth.*127.0.0.1:9"):
        reachable(dataclasses.replace(spec, sources=(missing, REFUSED)), target)
    assert reachable(spec, target) == cut  # HEAD answers there (the body is what is cut)
