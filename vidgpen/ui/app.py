"""The Gradio app: Open, Preview, Settings, Run and Batch screens wired to vidgpen.ui.screens.

Layout only; what each button does is in :mod:`vidgpen.ui.screens`, which calls the
CLI's and the API's entry points. Element ids (``elem_id``) are what the browser tests and
the README's screenshots find things by.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from vidgpen.config import DEINTERLACE, list_presets
from vidgpen.io.writer import CODECS, CONTAINERS
from vidgpen.ui import screens
from vidgpen.ui.jobs import JobQueue
from vidgpen.weights.registry import REGISTRY

_NO_PRESET = "(none)"
_POLL_S = 1.0  # how often the Run and Batch screens refresh while open


def theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts: its own would be fetched from the web."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def _model_names() -> list[str]:
    return ["auto", *(name for name, spec in REGISTRY.items() if spec.kind.startswith("gpen"))]


def _settings_panel(values: dict[str, Any], preset: str | None, suffix: str) -> tuple[gr.Dropdown, dict[str, gr.Component],
                                                                            gr.Dropdown]:
    """The Settings screen's fields, keyed by RestoreConfig field, plus the preset and the container."""
    preset_box = gr.Dropdown([_NO_PRESET, *list_presets()], value=preset or _NO_PRESET, label="preset",
                             elem_id="settings-preset")
    with gr.Row():
        fields: dict[str, gr.Component] = {
            "model": gr.Dropdown(_model_names(), value=values["model"], label="model", elem_id="settings-model"),
            "weights": gr.Textbox(values["weights"] or "", label="weights file (wins over model)",
                                  elem_id="settings-weights"),
            "device": gr.Textbox(values["device"], label="device", elem_id="settings-device"),
        }
    with gr.Row():
        for key, text in (("strength", "strength"), ("deflicker", "deflicker"), ("grain", "grain")):
            fields[key] = gr.Slider(0, 1, value=values[key], step=0.05, label=text, elem_id=f"settings-{key}")
    with gr.Row():
        fields["color_match"] = gr.Checkbox(values["color_match"], label="colour match", elem_id="settings-color")
        fields["faces"] = gr.Textbox(values["faces"], label="faces: all | largest | person ids (p1,p3) | track ids",
                                     elem_id="settings-faces")
        fields["deinterlace"] = gr.Dropdown(list(DEINTERLACE), value=values["deinterlace"], label="deinterlace",
                                            elem_id="settings-deinterlace")
    with gr.Row():
        container = gr.Dropdown(list(CONTAINERS), value=suffix, label="container", elem_id="settings-container")
        fields["codec"] = gr.Dropdown(list(CODECS), value=values["codec"], label="codec", elem_id="settings-codec")
        fields["crf"] = gr.Number(values["crf"], precision=0, label="quality (crf)", elem_id="settings-crf")
        fields["encoder_preset"] = gr.Textbox(values["encoder_preset"], label="encoder preset",
                                              elem_id="settings-encoder-preset")
        fields["batch_size"] = gr.Number(values["batch_size"], precision=0, minimum=1, label="batch size",
                                         elem_id="settings-batch-size")
    return preset_box, fields, container


def _open_and_preview_tabs(c: dict[str, Any]) -> None:
    with gr.Tab("Open", elem_id="tab-open"):
        with gr.Row():
            c["path"] = gr.Textbox(label="video on this machine (path)", elem_id="open-path", scale=3)
            c["upload"] = gr.File(label="or upload one", type="filepath", elem_id="open-upload", scale=2)
        c["open_button"] = gr.Button("Open", variant="primary", elem_id="open-button")
        c["open_status"] = gr.Markdown(elem_id="open-status")
        c["streams"] = gr.Dataframe(headers=["", "source", "restore"], label="streams", elem_id="open-streams")
        c["tracks"] = gr.Dataframe(headers=list(screens.TRACK_COLUMNS), label="faces by track", elem_id="open-tracks")
        with gr.Row():
            c["persons"] = gr.Dataframe(headers=list(screens.PERSON_COLUMNS), label="persons", elem_id="open-persons")
            c["sheet"] = gr.Image(label="who is in it (ids for Settings → faces)", format="png", interactive=False,
                                  elem_id="open-people")
    with gr.Tab("Preview", elem_id="tab-preview"):
        c["frame"] = gr.Slider(0, 1, value=0, step=1, label="frame", elem_id="preview-frame")
        c["source"] = gr.Image(label="frame", format="png", interactive=False, elem_id="preview-source", height=360)
        c["preview_button"] = gr.Button("Preview this frame", variant="primary", elem_id="preview-button")
        c["preview_status"] = gr.Markdown(elem_id="preview-status")
        with gr.Row():
            c["compare"] = gr.ImageSlider(label="before | after (drag)", format="png", elem_id="preview-compare")
            c["zoom"] = gr.ImageSlider(label="the face, zoomed", format="png", elem_id="preview-zoom")


def _settings_tab(c: dict[str, Any], values: dict[str, Any], preset: str | None, suffix: str) -> None:
    with gr.Tab("Settings", elem_id="tab-settings"):
        c["preset"], c["fields"], c["container"] = _settings_panel(values, preset, suffix)
        c["settings_error"] = gr.Markdown(elem_id="settings-error")
        c["command"] = gr.Textbox(label="the same run on the command line", elem_id="settings-command",
                                  interactive=False, lines=2)
        c["toml"] = gr.Textbox(label="the same settings as a config file (--config FILE)", elem_id="settings-toml",
                               interactive=False, lines=6)


def _run_and_batch_tabs(c: dict[str, Any]) -> None:
    with gr.Tab("Run", elem_id="tab-run"):
        with gr.Row():
            c["output"] = gr.Textbox(label="output file", elem_id="run-output", scale=3)
            c["segments"] = gr.Number(60, label="resume segments (s)", minimum=1, elem_id="run-segments")
            c["overwrite"] = gr.Checkbox(False, label="overwrite", elem_id="run-overwrite")
        with gr.Row():
            c["start"] = gr.Button("Start", variant="primary", elem_id="run-start")
            c["cancel"] = gr.Button("Cancel", variant="stop", elem_id="run-cancel")
        c["run_status"] = gr.HTML(elem_id="run-status")
        c["stages"] = gr.Dataframe(headers=["stage", "seconds"], label="time per stage", elem_id="run-stages")
        with gr.Row():
            c["result"] = gr.Video(label="result", elem_id="run-result", interactive=False)
            c["download"] = gr.File(label="download", elem_id="run-download", interactive=False)
        c["before_after"] = gr.Video(label="before | after", elem_id="run-before-after", interactive=False)
    with gr.Tab("Batch", elem_id="tab-batch"):
        with gr.Row():
            c["library"] = gr.Textbox(label="library folder", elem_id="batch-library")
            c["library_out"] = gr.Textbox(label="output folder", elem_id="batch-output")
        with gr.Row():
            c["plan"] = gr.Button("Plan (dry run)", elem_id="batch-plan")
            c["batch"] = gr.Button("Start batch", variant="primary", elem_id="batch-start")
            c["retry"] = gr.Button("Retry failed", elem_id="batch-retry")
        c["batch_status"] = gr.Markdown(elem_id="batch-status")
        c["files"] = gr.HTML(elem_id="batch-files")


class _Wiring:
    """The events: each screen's inputs (the settings always among them) to a Screens handler."""

    def __init__(self, c: dict[str, Any], work: screens.Screens) -> None:
        self.c, self.work = c, work
        self.keys = list(c["fields"])
        self.settings = [c["preset"], *c["fields"].values()]

    def argv(self, preset_name: str, *field_values: Any) -> list[str]:
        chosen = None if preset_name == _NO_PRESET else preset_name
        return screens.argv_of(chosen, dict(zip(self.keys, field_values)))

    def settings_events(self) -> tuple[list[Any], list[Any], Any]:
        c, work = self.c, self.work

        def describe(inp: str, out: str, seg: float, over: bool, *settings: Any) -> tuple[str, str, str]:
            return work.describe(inp, out, seg, over, self.argv(*settings))

        described = [c["settings_error"], c["command"], c["toml"]]
        inputs = [c["opened"], c["output"], c["segments"], c["overwrite"], *self.settings]
        for box in [*self.settings, c["output"], c["segments"], c["overwrite"], c["opened"]]:
            box.change(describe, inputs, described)
        c["preset"].change(lambda name: work.preset_values(None if name == _NO_PRESET else name, self.keys),
                           c["preset"], list(c["fields"].values()))
        c["container"].change(screens.with_suffix, [c["output"], c["container"]], c["output"])
        return inputs, described, describe

    def open_and_preview_events(self) -> None:
        c, work, argv = self.c, self.work, self.argv

        def open_video(typed: str, uploaded: str | None, suffix: str, *settings: Any) -> tuple[Any, ...]:
            return work.open(typed, uploaded, suffix, argv(*settings))

        opened = [c["opened"], c["open_status"], c["streams"], c["tracks"], c["persons"], c["sheet"], c["frame"],
                  c["output"], c["person_ids"]]
        for event in (c["open_button"].click, c["upload"].upload):
            event(open_video, [c["path"], c["upload"], c["container"], *self.settings], opened)
        c["frame"].release(lambda inp, index, *s: work.frame(inp, index, argv(*s)),
                           [c["opened"], c["frame"], *self.settings], c["source"])
        def pick_person(faces: str, ids: list[str], sheet: Any, evt: gr.SelectData) -> str:
            return work.pick_person(faces, ids, sheet, *evt.index)  # (x, y) in the sheet's pixels

        faces = c["fields"]["faces"]
        c["sheet"].select(pick_person, [faces, c["person_ids"], c["sheet"]], faces)
        c["preview_button"].click(lambda inp, index, suffix, *s: work.preview(inp, index, suffix, argv(*s)),
                                  [c["opened"], c["frame"], c["container"], *self.settings],
                                  [c["compare"], c["zoom"], c["preview_status"]])

    def run_and_batch_events(self, run_inputs: list[Any]) -> list[Any]:
        c, work, argv = self.c, self.work, self.argv
        c["start"].click(lambda inp, out, seg, over, *s: work.start(inp, out, seg, over, argv(*s)), run_inputs,
                         c["run_status"])
        c["cancel"].click(work.cancel, None, c["run_status"])
        batch_inputs = [c["library"], c["library_out"], c["segments"], *self.settings]
        c["plan"].click(lambda lib, out, seg, *s: work.batch_plan(lib, out, argv(*s)), batch_inputs,
                        [c["files"], c["batch_status"]])
        c["batch"].click(lambda lib, out, seg, *s: work.batch_start(lib, out, seg, argv(*s), retry=False),
                         batch_inputs, c["batch_status"])
        c["retry"].click(lambda lib, out, seg, *s: work.batch_start(lib, out, seg, argv(*s), retry=True),
                         batch_inputs, c["batch_status"])
        return [c["run_status"], c["stages"], c["result"], c["download"], c["before_after"], c["shown"]]


def build_app(queue: JobQueue, preset: str | None, values: dict[str, Any], outputs: Path,
              suffix: str = ".mp4") -> gr.Blocks:
    """The whole UI; ``values`` are the Settings screen's initial values (``vidgpen ui``'s flags)."""
    work = screens.Screens(queue, outputs)
    c: dict[str, Any] = {}
    with gr.Blocks(title="vidgpen", analytics_enabled=False) as app:
        c["opened"] = gr.State("")  # the video the screens work on
        c["shown"] = gr.State(None)  # the (job, status) whose result the Run screen shows
        c["person_ids"] = gr.State([])  # the people on the Open screen's sheet
        gr.Markdown("## vidgpen: restore faces in videos with GPEN")
        _open_and_preview_tabs(c)
        _settings_tab(c, values, preset, suffix)
        _run_and_batch_tabs(c)
        wiring = _Wiring(c, work)
        run_inputs, described, describe = wiring.settings_events()
        wiring.open_and_preview_events()
        run_outputs = wiring.run_and_batch_events(run_inputs)
        timer = gr.Timer(_POLL_S)
        timer.tick(work.run_state, c["shown"], run_outputs)
        timer.tick(work.batch_state, [c["library"], c["library_out"]], [c["files"], c["batch_status"]])
        app.load(work.run_state, c["shown"], run_outputs)  # a reload (or a new tab) reattaches to the job
        app.load(describe, run_inputs, described)
    return app
