"""The Gradio page: one tab per way to try a model, laid out around ``Studio``'s handlers.

Every long event shows progress (``gr.Progress``, which also follows the decoding loop's tqdm bar),
has a Stop button (``cancels=`` ends it in the page, ``Studio.stop`` ends the work behind it), and
shares one concurrency limit with the others. A handler's error reaches the page as the one-line
message the CLI prints (``gr.Error``), never as a stack trace.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from audiolm.runs import user_error
from audiolm.tasks.inference import CaptionRequest, ContinueRequest, SpeechRequest
from audiolm.ui import codecs
from audiolm.ui.handlers import Studio
from audiolm.ui.models import SAMPLER_KEYS, devices, run_sampling

log = logging.getLogger("audiolm")
JOBS = "jobs"  # the concurrency group every model or codec event belongs to
CACHE_CLEANUP = (3600, 86_400)  # every hour, delete the uploads and outputs Gradio keeps that are over a day old
# Sampler controls: key -> (label, minimum, maximum, step); the ranges Sampler accepts.
SAMPLER_SLIDERS = {
    "temperature": ("temperature (0 = greedy)", 0.0, 2.0, 0.05),
    "top_k": ("top-k (0 = off)", 0, 1000, 1),
    "top_p": ("top-p", 0.01, 1.0, 0.01),
    "min_p": ("min-p (0 = off)", 0.0, 0.99, 0.01),
    "repetition_penalty": ("repetition penalty (1 = off)", 0.5, 3.0, 0.05),
    "repetition_decay": ("repetition decay (0 = flat)", 0.0, 2.0, 0.05),
    "cfg_scale": ("CFG scale (1 = off)", 0.0, 10.0, 0.1),
    "cfg_rescale": ("CFG rescale", 0.0, 1.0, 0.05),
}
UNGUIDED = tuple(k for k in SAMPLER_KEYS if not k.startswith("cfg_"))  # the audio LM has no condition to guide by


def page_message(exc: BaseException) -> str:
    """The one line the page shows for ``exc``: the user's error as the CLI prints it; anything else by
    name, with its stack trace in the server log only."""
    found = user_error(exc) or (exc if isinstance(exc, ValueError) else None)
    if found is None:
        log.error("web UI job failed", exc_info=exc)
        return f"{type(exc).__name__}: {exc} (a fault in audiolm, not in what was given; the server log has details)"
    return " ".join(str(found).split())


def in_page(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Raise ``fn``'s errors as ``gr.Error`` with ``page_message`` (escaped: the modal renders HTML)."""

    @functools.wraps(fn)  # keeps the signature Gradio reads for gr.Request / gr.Progress
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - every error becomes one line in the page
            raise gr.Error(html.escape(page_message(exc)), print_exception=False) from None

    return wrapped


def sampler_sliders(keys: tuple[str, ...]) -> dict[str, gr.Slider]:
    """One slider per ``Sampler`` key; the loaded run's settings become their values."""
    defaults = run_sampling(None)  # until a run is loaded: Sampler's own defaults
    sliders = {}
    for k in keys:
        label, low, high, step = SAMPLER_SLIDERS[k]
        sliders[k] = gr.Slider(low, high, value=defaults[k], step=step, label=label)
    return sliders


def sampler_settings(arguments: dict[str, Any]) -> dict[str, Any]:
    """The ``Sampler`` settings among a handler's arguments (its ``locals()``)."""
    return {k: v for k, v in arguments.items() if k in SAMPLER_KEYS}


def session(request: gr.Request | None) -> str:
    return (request.session_hash if request is not None else None) or ""


def build_app(studio: Studio) -> gr.Blocks:
    """The page around ``studio``'s handlers."""
    limit = studio.settings.concurrency
    jobs = {"concurrency_limit": limit, "concurrency_id": JOBS}
    root = studio.settings.runs_root
    upload = {"sources": ["upload"], "type": "filepath"}
    progress_bar = gr.Progress(track_tqdm=True)  # also follows tqdm bars (the decoding loop's); patches tqdm

    with gr.Blocks(title="audiolm", delete_cache=CACHE_CLEANUP) as demo:
        gr.Markdown(f"# audiolm\nRuns and exports under `{root}`; clips of at most {studio.max_seconds:g} s.")
        with gr.Tab("Model"):
            with gr.Row():
                run = gr.Dropdown(studio.runs(), label=f"run or export under {root}", elem_id="run", scale=4)
                device = gr.Radio(devices(), value="cpu", label="device")
            with gr.Row():
                refresh = gr.Button("Refresh the list")
                load = gr.Button("Load", variant="primary", elem_id="load")
            info = gr.Markdown(elem_id="info")

        with gr.Tab("Text to speech"):
            tts_status = gr.Markdown(elem_id="tts-status")
            text_box = gr.Textbox("Hello there. How are you today?", label="text", lines=3, elem_id="tts-text")
            reference = gr.Audio(
                label="reference voice", sources=["upload", "microphone"], type="filepath", elem_id="tts-ref"
            )
            with gr.Accordion("sampling", open=False):
                tts_sampling = sampler_sliders(SAMPLER_KEYS)
                with gr.Row():
                    max_seconds = gr.Slider(0.5, 60, value=20, step=0.5, label="max seconds per sentence")
                    steps = gr.Slider(1, 128, value=16, step=1, label="demasking steps (parallel TTS)", visible=False)
                    tts_seed = gr.Number(0, precision=0, label="seed")
                rolling = gr.Checkbox(False, label="rolling context (each sentence prompts the next)")
            judge_tts = gr.Checkbox(True, label="judge the speech (speech fraction, DNSMOS, ASR, speaker similarity)")
            with gr.Row():
                speak_button = gr.Button("Speak", variant="primary", elem_id="tts-go")
                stop_tts = gr.Button("Stop", elem_id="tts-stop")
            tts_audio = gr.Audio(label="speech", elem_id="tts-out")
            tts_image = gr.Image(label="spectrogram")
            tts_scores = gr.Markdown(elem_id="tts-scores")

        with gr.Tab("Continue audio"):
            lm_status = gr.Markdown(elem_id="lm-status")
            prompt_clip = gr.Audio(label="prompt (none: unconditional)", elem_id="lm-prompt", **upload)
            seconds = gr.Slider(0.2, 30, value=4, step=0.1, label="seconds to generate")
            with gr.Accordion("sampling", open=False):
                lm_sampling = sampler_sliders(UNGUIDED)
                lm_seed = gr.Number(0, precision=0, label="seed")
            with gr.Row():
                go_lm = gr.Button("Continue", variant="primary", elem_id="lm-go")
                stop_lm = gr.Button("Stop", elem_id="lm-stop")
            lm_audio = gr.Audio(label="prompt + continuation", elem_id="lm-out")
            lm_image = gr.Image(label="spectrogram (dashed line: where the prompt ends)")
            lm_summary = gr.Markdown(elem_id="lm-summary")

        with gr.Tab("Caption"):
            cap_status = gr.Markdown(elem_id="cap-status")
            cap_clip = gr.Audio(label="clip", elem_id="cap-clip", **upload)
            with gr.Row():
                beams = gr.Slider(1, 8, value=1, step=1, label="beams (1 = greedy)")
                max_tokens = gr.Slider(1, 256, value=64, step=1, label="max new tokens")
            with gr.Row():
                go_cap = gr.Button("Caption", variant="primary", elem_id="cap-go")
                stop_cap = gr.Button("Stop", elem_id="cap-stop")
            caption_box = gr.Textbox(label="caption", elem_id="cap-out")

        with gr.Tab("Codec"):
            codec_clip = gr.Audio(label="clip", elem_id="codec-clip", **upload)
            with gr.Row():
                codec_name = gr.Dropdown([codecs.RUN_CODEC, *codecs.codec_configs()], value="mulaw", label="codec")
                levels = gr.Slider(1, 32, value=1, step=1, label="n_q (levels decoded: mulaw has 1, melvq 4)")
                judge_codec = gr.Checkbox(True, label="judge (STOI, PESQ, DNSMOS)")
            with gr.Row():
                go_codec = gr.Button("Round trip", variant="primary", elem_id="codec-go")
                stop_codec = gr.Button("Stop", elem_id="codec-stop")
            codec_audio = gr.Audio(label="round trip", elem_id="codec-out")
            codec_table = gr.Markdown(elem_id="codec-table")

        # -- events -------------------------------------------------------------------------------
        statuses = {tts_status: SpeechRequest, lm_status: ContinueRequest, cap_status: CaptionRequest}

        # Handlers' parameter names are the API's (gradio_client: predict(text=..., api_name="/speak")).
        @in_page
        def load_run(run: str, device: str, progress: gr.Progress = progress_bar) -> list[Any]:
            loaded = studio.load(run, device, progress)
            lines = [studio.slot.mismatch(r) or f"ready: {run}" for r in statuses.values()]
            values = [gr.update(value=loaded.sampling[k]) for k in (*tts_sampling, *lm_sampling)]
            steps_update = gr.update(visible=loaded.steps is not None, value=loaded.steps or 16)
            return [loaded.info, *lines, *values, steps_update]

        sliders = [*tts_sampling.values(), *lm_sampling.values()]
        load.click(load_run, [run, device], [info, *statuses, *sliders, steps], api_name="load", **jobs)
        refresh.click(lambda: gr.update(choices=studio.runs()), None, run, api_name="runs", queue=False)

        @in_page
        def speak(
            text,
            reference,
            temperature,
            top_k,
            top_p,
            min_p,
            repetition_penalty,
            repetition_decay,
            cfg_scale,
            cfg_rescale,
            max_seconds,
            steps,
            rolling_context,
            judge,
            seed,
            request: gr.Request,
            progress: gr.Progress = progress_bar,
        ):
            sampling = sampler_settings(locals())
            settings = (max_seconds, steps, rolling_context, judge, seed)
            return studio.speak(text, reference, sampling, *settings, session(request), progress)

        inputs = [text_box, reference, *tts_sampling.values(), max_seconds, steps, rolling, judge_tts, tts_seed]
        tts_event = speak_button.click(speak, inputs, [tts_audio, tts_image, tts_scores], api_name="speak", **jobs)

        @in_page
        def continue_audio(
            prompt,
            seconds,
            temperature,
            top_k,
            top_p,
            min_p,
            repetition_penalty,
            repetition_decay,
            seed,
            request: gr.Request,
            progress: gr.Progress = progress_bar,
        ):
            sampling = sampler_settings(locals())
            return studio.continue_audio(prompt, seconds, sampling, seed, session(request), progress)

        inputs = [prompt_clip, seconds, *lm_sampling.values(), lm_seed]
        outputs = [lm_audio, lm_image, lm_summary]
        lm_event = go_lm.click(continue_audio, inputs, outputs, api_name="continue_audio", **jobs)

        @in_page
        def caption(clip, num_beams, max_new_tokens, request: gr.Request, progress: gr.Progress = progress_bar):
            return studio.caption(clip, num_beams, max_new_tokens, session(request), progress)

        inputs = [cap_clip, beams, max_tokens]
        cap_event = go_cap.click(caption, inputs, caption_box, api_name="caption", **jobs)

        @in_page
        def codec(clip, codec, n_q, device, judge, request: gr.Request, progress: gr.Progress = progress_bar):
            return studio.codec_round_trip(clip, codec, n_q, device, judge, session(request), progress)

        inputs = [codec_clip, codec_name, levels, device, judge_codec]
        codec_event = go_codec.click(codec, inputs, [codec_audio, codec_table], api_name="codec", **jobs)

        def stop(request: gr.Request) -> None:
            studio.stop(session(request))

        stops = {stop_tts: tts_event, stop_lm: lm_event, stop_cap: cap_event, stop_codec: codec_event}
        for button, event in stops.items():
            button.click(stop, None, None, cancels=[event], queue=False, api_visibility="undocumented")
    return demo


def launch(studio: Studio, host: str, port: int, share: bool, **kwargs: Any) -> gr.Blocks:
    """Build the page and serve it (``kwargs`` go to ``Blocks.launch``, e.g. ``prevent_thread_lock``)."""
    demo = build_app(studio)
    demo.queue(default_concurrency_limit=studio.settings.concurrency)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=f"{int(studio.settings.max_upload_mb * 1024)}kb",
        **kwargs,
    )
    return demo
