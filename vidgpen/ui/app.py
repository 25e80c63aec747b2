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
from vidgpen.models.registry import REGISTRY
from vidgpen.ui import screens
from vidgpen.ui.jobs import JobQueue

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
        fields["faces"] = gr.Textbox(values["faces"], label="faces: all | largest | track ids",
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


def build_app(queue: JobQueue, preset: str | None, values: dict[str, Any], outputs: Path,
              suffix: str = ".mp4") -> gr.Blocks:
    """The whole UI; ``values`` are the Settings screen's initial values (``vidgpen ui``'s flags)."""
    work = screens.Screens(queue, outputs)
    with gr.Blocks(title="vidgpen", analytics_enabled=False) as app:
        opened = gr.State("")  # the video the screens work on
        gr.Markdown("## vidgpen: restore faces in videos with GPEN")
        with gr.Tab("Open", elem_id="tab-open"):
            with gr.Row():
                path = gr.Textbox(label="video on this machine (path)", elem_id="open-path", scale=3)
                upload = gr.File(label="or upload one", type="filepath", elem_id="open-upload", scale=2)
            open_button = gr.Button("Open", variant="primary", elem_id="open-button")
            open_status = gr.Markdown(elem_id="open-status")
            streams = gr.Dataframe(headers=["", "source", "restore"], label="streams", elem_id="open-streams")
            tracks = gr.Dataframe(headers=list(screens.TRACK_COLUMNS), label="faces by track",
                                  elem_id="open-tracks")
        with gr.Tab("Preview", elem_id="tab-preview"):
            frame = gr.Slider(0, 1, value=0, step=1, label="frame", elem_id="preview-frame")
            source = gr.Image(label="frame", format="png", interactive=False, elem_id="preview-source", height=360)
            preview_button = gr.Button("Preview this frame", variant="primary", elem_id="preview-button")
            preview_status = gr.Markdown(elem_id="preview-status")
            with gr.Row():
                compare = gr.ImageSlider(label="before | after (drag)", format="png", elem_id="preview-compare")
                zoom = gr.ImageSlider(label="the face, zoomed", format="png", elem_id="preview-zoom")
        with gr.Tab("Settings", elem_id="tab-settings"):
            preset_box, fields, container = _settings_panel(values, preset, suffix)
            settings_error = gr.Markdown(elem_id="settings-error")
            command = gr.Textbox(label="the same run on the command line", elem_id="settings-command",
                                 interactive=False, lines=2)
            toml = gr.Textbox(label="the same settings as a config file (--config FILE)", elem_id="settings-toml",
                              interactive=False, lines=6)
        with gr.Tab("Run", elem_id="tab-run"):
            with gr.Row():
                output = gr.Textbox(label="output file", elem_id="run-output", scale=3)
                segments = gr.Number(60, label="resume segments (s)", minimum=1, elem_id="run-segments")
                overwrite = gr.Checkbox(False, label="overwrite", elem_id="run-overwrite")
            with gr.Row():
                start_button = gr.Button("Start", variant="primary", elem_id="run-start")
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="run-cancel")
            run_status = gr.HTML(elem_id="run-status")
            stages = gr.Dataframe(headers=["stage", "seconds"], label="time per stage", elem_id="run-stages")
            with gr.Row():
                result = gr.Video(label="result", elem_id="run-result", interactive=False)
                download = gr.File(label="download", elem_id="run-download", interactive=False)
        with gr.Tab("Batch", elem_id="tab-batch"):
            with gr.Row():
                library = gr.Textbox(label="library folder", elem_id="batch-library")
                library_out = gr.Textbox(label="output folder", elem_id="batch-output")
            with gr.Row():
                plan_button = gr.Button("Plan (dry run)", elem_id="batch-plan")
                batch_button = gr.Button("Start batch", variant="primary", elem_id="batch-start")
                retry_button = gr.Button("Retry failed", elem_id="batch-retry")
            batch_status = gr.Markdown(elem_id="batch-status")
            files = gr.HTML(elem_id="batch-files")

        settings_inputs = [preset_box, *fields.values()]
        keys = list(fields)

        def argv(preset_name: str, *field_values: Any) -> list[str]:
            chosen = None if preset_name == _NO_PRESET else preset_name
            return screens.argv_of(chosen, dict(zip(keys, field_values)))

        def describe(inp: str, out: str, seg: float, over: bool, *settings: Any) -> tuple[str, str, str]:
            return work.describe(inp, out, seg, over, argv(*settings))

        described = [settings_error, command, toml]
        describe_inputs = [opened, output, segments, overwrite, *settings_inputs]
        for box in [*settings_inputs, output, segments, overwrite, opened]:
            box.change(describe, describe_inputs, described)
        preset_box.change(lambda name: work.preset_values(None if name == _NO_PRESET else name, keys),
                          preset_box, list(fields.values()))
        container.change(screens.with_suffix, [output, container], output)

        def open_video(typed: str, uploaded: str | None, suffix: str, *settings: Any) -> tuple[Any, ...]:
            return work.open(typed, uploaded, suffix, argv(*settings))

        opened_outputs = [opened, open_status, streams, tracks, frame, output]
        open_button.click(open_video, [path, upload, container, *settings_inputs], opened_outputs)
        upload.upload(open_video, [path, upload, container, *settings_inputs], opened_outputs)
        frame.release(lambda inp, index, *s: work.frame(inp, index, argv(*s)), [opened, frame, *settings_inputs],
                      source)
        preview_button.click(lambda inp, index, *s: work.preview(inp, index, argv(*s)),
                             [opened, frame, *settings_inputs], [compare, zoom, preview_status])

        start_button.click(lambda inp, out, seg, over, *s: work.start(inp, out, seg, over, argv(*s)),
                           describe_inputs, run_status)
        cancel_button.click(work.cancel, None, run_status)
        shown = gr.State(None)  # the (job, status) whose result the Run screen shows
        run_outputs = [run_status, stages, result, download, shown]
        plan_button.click(lambda lib, out, *s: work.batch_plan(lib, out, argv(*s)),
                          [library, library_out, *settings_inputs], [files, batch_status])
        batch_button.click(lambda lib, out, seg, *s: work.batch_start(lib, out, seg, argv(*s), retry=False),
                           [library, library_out, segments, *settings_inputs], batch_status)
        retry_button.click(lambda lib, out, seg, *s: work.batch_start(lib, out, seg, argv(*s), retry=True),
                           [library, library_out, segments, *settings_inputs], batch_status)

        timer = gr.Timer(_POLL_S)
        timer.tick(work.run_state, shown, run_outputs)
        timer.tick(work.batch_state, [library, library_out], [files, batch_status])
        app.load(work.run_state, shown, run_outputs)  # a reload (or a new tab) reattaches to the job
        app.load(describe, describe_inputs, described)
    return app
