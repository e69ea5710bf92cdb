"""wan_audio: the final-quality model, WanAudioPipeline behind farm's AvatarModel contract.

One instance per worker: ``load`` reads the pipeline once (``from_pretrained``, no network), ``render``
turns a RenderRequest into frames written to the sink as the VAE decodes them. torch and diffusers are
imported inside the methods, so planning (which only reads ``code_version``) stays cheap.
"""

from __future__ import annotations

import collections
import gc
import time
from typing import Any, ClassVar

import numpy as np

from farm.avatar.base import (
    RENDER_INPUTS,
    FrameSink,
    ProgressCallback,
    RenderRequest,
    RenderResult,
    check_request,
    face_anchor,
    framed_reference,
)
from farm.avatar.camera import (
    camera_prompt_phrase,
    camera_trajectory,
    prepare_source,
    render_camera_video,
    render_window,
)
from farm.avatar.two_shot import compose_reference
from farm.catalog import ModelManifest
from farm.errors import ManifestError, RenderError
from farm.settings import SHIPPED_MODELS_DIR
from farm.shotlist.types import CameraMove

from .render_params import RenderParams, RenderParamsError

DENOISE_SHARE = 0.9
"""Progress fraction given to denoising; decoding gets the rest."""


class WanAudioModel:
    """Audio-driven talking avatar (StableAvatar design): portrait + speech + prompt + camera -> frames."""

    code_version: ClassVar[str] = "wan-audio-2"
    pixel_inputs: ClassVar[frozenset[str]] = RENDER_INPUTS
    """Everything: the prompt and guidance steer the diffusion, the continuation conditions its first frames."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
        self._pipeline: Any = None
        self._device = "cpu"
        self._params: RenderParams | None = None
        self._scheduler_shift = 1.0
        self._device_warning = ""
        self._applied: dict[str, str | int | float | bool] = {}

    # ------------------------------------------------------------------------------------------ load

    def load(self, device: str) -> None:
        """Load once per worker. A CUDA device on a machine without CUDA (a test cluster whose nodes only
        pretend to have GPUs) falls back to the CPU, and every result says so in its warnings."""
        import torch

        self._device_warning = ""
        if device.startswith("cuda") and not torch.cuda.is_available():
            self._device_warning = f"{device} was requested but CUDA is not available here; rendered on the CPU"
            device = "cpu"
        self._device = device
        self._load(self._parse(self.manifest.render_params))

    def _load(self, params: RenderParams) -> None:
        from .loading import load_with_levers

        weights = self.manifest.weights
        if weights is None or not (weights / "model_index.json").is_file():
            raise ManifestError(
                f"{self.manifest.source}: weights for model '{self.manifest.name}' not found at {weights}; "
                "convert StableAvatar's checkpoint with `farm model convert`, or build a tiny test model with "
                f"`farm model create-tiny` (see {SHIPPED_MODELS_DIR / 'README.md'})"
            )
        self._pipeline = None
        gc.collect()
        loaded = load_with_levers(weights, self._device, params.levers)
        self._pipeline, self._applied = loaded.pipeline, dict(loaded.applied)
        self._scheduler_shift = self._pipeline.scheduler.config.shift
        self._params = params

    def _parse(self, raw: Any) -> RenderParams:
        try:
            return RenderParams.from_mapping(raw)
        except (RenderParamsError, TypeError) as exc:
            raise ManifestError(f"{self.manifest.source}: render parameters: {exc}") from exc

    # ---------------------------------------------------------------------------------------- render

    def render(self, request: RenderRequest, sink: FrameSink, progress: ProgressCallback) -> RenderResult:
        check_request(request, self.manifest)
        if self._pipeline is None:
            raise RenderError(f"shot {request.shot_id}: model '{self.manifest.name}' was not loaded")
        params = self._parse(request.params or self.manifest.render_params)
        if self._params is None or params.levers != self._params.levers:
            self._load(params)

        import torch

        warnings: list[str] = [self._device_warning] if self._device_warning else []
        started = time.perf_counter()
        clock: dict[str, float] = {}
        last_frames: collections.deque[np.ndarray] = collections.deque(maxlen=max(self.manifest.continuation_frames, 1))
        written = 0

        def on_step(done: int, total: int) -> None:
            clock["denoised"] = time.perf_counter()
            clock["steps_run"] = total
            progress(DENOISE_SHARE * done / total, "denoise")

        def on_frames(chunk: np.ndarray) -> None:
            nonlocal written
            sink.write(chunk)
            last_frames.extend(chunk)
            written += len(chunk)
            progress(DENOISE_SHARE + (1 - DENOISE_SHARE) * written / request.frames, "decode")

        step_cache_paused = self._pause_step_cache_if_long(request, params, warnings)
        people = self._people(request)
        warnings += people[3]
        try:
            self._run(request, params, on_step, on_frames, people)
        except torch.OutOfMemoryError:
            # The worker maps the error to farm's (farm.engine.faults.as_farm_error); this model's part is to
            # give the memory back, so the retry with the low-memory settings starts from an empty device.
            self._free_device_memory()
            raise
        except ValueError as exc:
            raise RenderError(f"shot {request.shot_id}: {exc}") from exc
        finally:
            if step_cache_paused:
                self._enable_step_cache(params)
        if written != request.frames:
            raise RenderError(f"shot {request.shot_id}: model wrote {written} frames, expected {request.frames}")
        finished = time.perf_counter()
        denoised = clock.get("denoised", finished)
        timings = {"denoise_s": denoised - started, "decode_s": finished - denoised, "total_s": finished - started}
        levers = self._levers_applied(request, params, int(clock.get("steps_run", 0)), step_cache_paused)
        timings.update(
            {f"seam_frame.{index}": float(frame) for index, frame in enumerate(self._seams(request, params))}
        )
        keep = self.manifest.continuation_frames
        return RenderResult(
            frames_written=written,
            last_frames=np.stack(list(last_frames)[-keep:])
            if keep
            else np.zeros((0, request.height, request.width, 3), np.uint8),
            timings=timings,
            warnings=tuple(warnings),
            levers=levers,
        )

    def _levers_applied(
        self, request: RenderRequest, params: RenderParams, steps_run: int, step_cache_paused: bool
    ) -> dict[str, str | int | float | bool]:
        """The load's levers plus this shot's: the steps that ran, the guidance passes per step (1 when both
        scales are 1: no CFG passes at all), the timestep shift, and whether the step cache sat this one out."""
        from .pipeline_wan_audio import guidance_branches

        applied = dict(self._applied)
        if step_cache_paused:
            applied["step_cache"] = "paused (too many windows)"
        return {
            **applied,
            "steps": request.steps,
            "steps_run": steps_run,
            "guidance_passes": len(guidance_branches(request.text_guidance, request.audio_guidance)),
            "flow_shift": float(self._pipeline.scheduler.config.shift),
        }

    def _run(self, request: RenderRequest, params: RenderParams, on_step: Any, on_frames: Any, people: Any) -> None:
        import torch

        pipeline = self._pipeline
        shift = params.flow_shift if params.flow_shift is not None else self._scheduler_shift
        if pipeline.scheduler.config.shift != shift:
            pipeline.scheduler = pipeline.scheduler.from_config(pipeline.scheduler.config, shift=shift)
        generator = torch.Generator(device="cpu").manual_seed(request.seed)
        reference, audio, regions, _ = people
        pipeline(
            image=reference,
            audio=audio,
            speaker_regions=regions,
            prompt=_with_camera_phrase(request),
            negative_prompt=request.negative_prompt,
            height=request.height,
            width=request.width,
            num_frames=request.frames,
            fps=float(request.fps),
            sample_rate=request.sample_rate,
            num_inference_steps=request.steps,
            text_guidance_scale=request.text_guidance,
            audio_guidance_scale=request.audio_guidance,
            generator=generator,
            continuation_frames=self._continuation(request),
            camera_video=self._camera_video(request, reference),
            camera_strength=params.camera_strength,
            window_latent_frames=params.window_latent_frames,
            overlap_latent_frames=params.overlap_latent_frames,
            blend=params.blend,
            guidance_batch=params.guidance_batch,
            decode_chunk_latents=params.decode_chunk_latents,
            frame_callback=on_frames,
            step_callback=on_step,
        )

    # ------------------------------------------------------------------------------------- helpers

    def _continuation(self, request: RenderRequest) -> np.ndarray | None:
        if request.continuation is None or len(request.continuation.last_frames) == 0:
            return None
        frames = np.asarray(request.continuation.last_frames)
        if frames.shape[1:3] != (request.height, request.width):
            from .pipeline_wan_audio import fit_image

            frames = np.stack([np.asarray(fit_image(f, request.width, request.height)) for f in frames])
        return frames

    def _people(self, request: RenderRequest) -> tuple[np.ndarray, Any, list[Any] | None, tuple[str, ...]]:
        """(reference, audio, speaker regions, framing warnings) for the pipeline. One speaker: the portrait
        and the shot's audio. A two-shot: one reference holding both people, each framed on their face in their region
        (farm.avatar.two_shot, the geometry previz uses too), one track per speaker, and their regions, so
        each speaker's audio reaches only their own region's tokens (MultiTalk-style routing)."""
        if not request.speakers:
            return framed_reference(request), request.audio, None, ()
        reference, warnings = compose_reference(request.speakers, request.layout, request.width, request.height)
        tracks = [speaker.audio for speaker in request.speakers]
        return reference, tracks, [speaker.region for speaker in request.speakers], warnings

    def _camera_video(self, request: RenderRequest, reference: np.ndarray) -> Any:
        if request.camera.move is CameraMove.STATIC or request.camera.intensity <= 0:
            return None
        if request.take_length > request.frames:
            return _segment_camera_video(request)
        return render_camera_video(
            reference,
            request.camera,
            request.frames,
            request.width,
            request.height,
            request.seed,
            face=None if request.speakers else face_anchor(request),
        )

    def _seams(self, request: RenderRequest, params: RenderParams) -> list[int]:
        """The shot's frames where two sliding windows were joined (none for a one-window shot)."""
        from .audio_encoding import latent_frames_for
        from .sliding_window import plan_windows, seam_frames

        prefix = self.manifest.continuation_frames if request.continuation is not None else 0
        windows = plan_windows(
            latent_frames_for(prefix + request.frames), params.window_latent_frames, params.overlap_latent_frames
        )
        return seam_frames(windows, prefix, request.frames)

    def _pause_step_cache_if_long(self, request: RenderRequest, params: RenderParams, warnings: list[str]) -> bool:
        levers = params.levers
        if levers.step_cache_threshold is None:
            return False
        from .audio_encoding import latent_frames_for
        from .sliding_window import plan_windows

        prefix = self.manifest.continuation_frames if request.continuation is not None else 0
        windows = plan_windows(
            latent_frames_for(prefix + request.frames), params.window_latent_frames, params.overlap_latent_frames
        )
        if len(windows) <= levers.step_cache_max_windows:
            return False
        self._pipeline.transformer.disable_cache()
        warnings.append(
            f"step cache off for this shot: {len(windows)} windows > step_cache_max_windows "
            f"{levers.step_cache_max_windows} (its memory grows with every window)"
        )
        return True

    def _enable_step_cache(self, params: RenderParams) -> None:
        from diffusers.hooks import FirstBlockCacheConfig

        self._pipeline.transformer.enable_cache(FirstBlockCacheConfig(threshold=params.levers.step_cache_threshold))

    def _free_device_memory(self) -> None:
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _segment_camera_video(request: RenderRequest) -> Any:
    """A segment of a long take sees its stretch of the whole take's camera move, so the move runs on
    across the seams instead of starting again in every segment."""
    source, framing = prepare_source(request.reference_image, request.width, request.height)
    windows = camera_trajectory(
        request.camera, request.take_length, aspect=request.width / request.height, seed=request.seed
    )[request.take_offset : request.take_offset + request.frames]
    return (render_window(source, framing, window, request.width, request.height) for window in windows)


def _with_camera_phrase(request: RenderRequest) -> str:
    phrase = camera_prompt_phrase(request.camera)
    prompt = request.prompt.strip().rstrip(".")
    return f"{prompt}, {phrase}" if prompt else phrase
