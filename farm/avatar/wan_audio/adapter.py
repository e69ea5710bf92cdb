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

from farm.avatar.base import FrameSink, ProgressCallback, RenderRequest, RenderResult, check_request
from farm.avatar.camera import camera_prompt_phrase, render_camera_video
from farm.catalog import ModelManifest
from farm.errors import ManifestError, RenderError
from farm.shotlist.types import CameraMove

from .render_params import RenderParams, RenderParamsError

DENOISE_SHARE = 0.9
"""Progress fraction given to denoising; decoding gets the rest."""


class WanAudioModel:
    """Audio-driven talking avatar (StableAvatar design): portrait + speech + prompt + camera -> frames."""

    code_version: ClassVar[str] = "wan-audio-1"

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
        self._pipeline: Any = None
        self._device = "cpu"
        self._params: RenderParams | None = None
        self._scheduler_shift = 1.0
        self._device_warning = ""

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
        from .loading import load_pipeline

        weights = self.manifest.weights
        if weights is None or not (weights / "model_index.json").is_file():
            raise ManifestError(
                f"{self.manifest.source}: weights for model '{self.manifest.name}' not found at {weights}; "
                "convert StableAvatar's checkpoint with `farm model convert`, or build a tiny test model with "
                "`farm model create-tiny` (see models/README.md)"
            )
        self._pipeline = None
        gc.collect()
        self._pipeline = load_pipeline(weights, self._device, params.levers)
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
            progress(DENOISE_SHARE * done / total, "denoise")

        def on_frames(chunk: np.ndarray) -> None:
            nonlocal written
            sink.write(chunk)
            last_frames.extend(chunk)
            written += len(chunk)
            progress(DENOISE_SHARE + (1 - DENOISE_SHARE) * written / request.frames, "decode")

        step_cache_paused = self._pause_step_cache_if_long(request, params, warnings)
        try:
            self._run(request, params, on_step, on_frames)
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
        keep = self.manifest.continuation_frames
        return RenderResult(
            frames_written=written,
            last_frames=np.stack(list(last_frames)[-keep:])
            if keep
            else np.zeros((0, request.height, request.width, 3), np.uint8),
            timings=timings,
            warnings=tuple(warnings),
        )

    def _run(self, request: RenderRequest, params: RenderParams, on_step: Any, on_frames: Any) -> None:
        import torch

        pipeline = self._pipeline
        shift = params.flow_shift if params.flow_shift is not None else self._scheduler_shift
        if pipeline.scheduler.config.shift != shift:
            pipeline.scheduler = pipeline.scheduler.from_config(pipeline.scheduler.config, shift=shift)
        generator = torch.Generator(device="cpu").manual_seed(request.seed)
        pipeline(
            image=request.reference_image,
            audio=request.audio,
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
            camera_video=self._camera_video(request),
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

    def _camera_video(self, request: RenderRequest) -> Any:
        if request.camera.move is CameraMove.STATIC or request.camera.intensity <= 0:
            return None
        return render_camera_video(
            request.reference_image, request.camera, request.frames, request.width, request.height, request.seed
        )

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


def _with_camera_phrase(request: RenderRequest) -> str:
    phrase = camera_prompt_phrase(request.camera)
    prompt = request.prompt.strip().rstrip(".")
    return f"{prompt}, {phrase}" if prompt else phrase
