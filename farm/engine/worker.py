"""RenderWorker: a Ray actor that loads one model once and renders many shots into the artifact store.

The actor is threaded: while one shot renders (holding the slot lock), the next call's inputs are
already being transferred and prepared, and the driver can ask for progress or cancel a render. Frames
stream from the model into an ffmpeg encoder, so memory does not grow with the shot; the encoder is
started before the slot is taken and finished after it is given back, so the model starts the next shot
while ffmpeg encodes the end of the last (``encode_after_render`` and ``gpu_idle_before`` in the
attempt's timings say how long each took).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from farm import defaults
from farm.avatar.base import Continuation, FrameSink, RenderRequest, Speaker
from farm.avatar.registry import create_model
from farm.catalog import ModelManifest
from farm.db.kinds import ArtifactKind
from farm.digests import file_sha256
from farm.engine import attempt_log
from farm.engine.artifacts import ArtifactStore
from farm.engine.faults import as_farm_error
from farm.engine.messages import RenderAssignment, RenderOutcome, WorkerIdentity
from farm.engine.takes import SegmentAudio, TakeResult, array_segments, render_take
from farm.errors import RenderCancelled
from farm.media.audio import mix_speakers
from farm.media.ffmpeg import DEFAULT_ENCODE
from farm.media.video import ShotVideoWriter
from farm.plan import ShotTask

PROGRESS_INTERVAL_SECONDS = 0.25


class RenderWorker:
    def __init__(self, manifest: ModelManifest, artifacts_root: str, name: str) -> None:
        import ray

        self.manifest = manifest
        self.store = ArtifactStore(Path(artifacts_root))
        context = ray.get_runtime_context()
        device = _device_for(ray.get_gpu_ids())
        attempt_log.install()
        started = time.perf_counter()
        self.model = create_model(manifest)
        self.model.load(device)
        self.load_seconds = time.perf_counter() - started
        self.identity_info = WorkerIdentity(
            name=name,
            node_id=context.get_node_id(),
            node_ip=ray.util.get_node_ip_address(),
            device=device,
            gpu_type=_gpu_type(device),
            load_seconds=self.load_seconds,
        )
        self._slot = threading.Lock()
        self._state_lock = threading.Lock()
        self._progress: dict[int, tuple[float, str]] = {}
        self._cancelled: set[int] = set()
        self.busy_seconds = 0.0
        self._released_at: float | None = None
        """When the last shot's model gave the slot back: the next shot's ``gpu_idle_before`` counts from it."""

    def identity(self) -> WorkerIdentity:
        return self.identity_info

    def stats(self) -> dict[str, float]:
        return {"load_seconds": self.load_seconds, "busy_seconds": self.busy_seconds, "pid": float(os.getpid())}

    def progress(self) -> dict[int, tuple[float, str]]:
        with self._state_lock:
            return dict(self._progress)

    def cancel(self, render_id: int) -> None:
        with self._state_lock:
            self._cancelled.add(render_id)

    def render(
        self,
        assignment: RenderAssignment,
        reference_image: np.ndarray,
        audio: np.ndarray | list[Any],
        continuation_frames: np.ndarray | None,
        second_image: np.ndarray | None = None,
    ) -> RenderOutcome:
        """Render one attempt into the artifact store, its output captured in the attempt's log; raises on
        failure (the scheduler classifies the exception)."""
        task = assignment.task
        header = (
            f"shot {task.shot_id} (render {assignment.render_id}) on {self.identity_info.name}, "
            f"node {self.identity_info.node_ip}, {self.identity_info.device}; model {self.manifest.name}"
        )
        with attempt_log.capture(assignment.log_path, header):
            outcome = self._render(assignment, reference_image, audio, continuation_frames, second_image)
            for warning in outcome.warnings:
                print(f"warning: {warning}")
            return outcome

    def _render(
        self,
        assignment: RenderAssignment,
        reference_image: np.ndarray,
        audio: np.ndarray | list[Any],
        continuation_frames: np.ndarray | None,
        second_image: np.ndarray | None,
    ) -> RenderOutcome:
        arrived = time.perf_counter()
        request = _request_for(assignment, reference_image, audio, continuation_frames, second_image)
        task = assignment.task
        video_path = self.store.path_for(task.cache_key, ArtifactKind.SHOT_VIDEO)
        try:
            # The encoder starts before the slot is taken and finishes after it is given back: the next
            # shot's model runs while ffmpeg encodes the end of this one (issue 19: encoding off the GPU's
            # critical path).
            pieces = _segment_audio(audio, task) if len(task.segments) > 1 else None
            with self._video_writer(task, video_path, audio, pieces) as sink:
                with self._slot:
                    self._check_cancelled(assignment.render_id)
                    started = time.perf_counter()
                    idle = None if self._released_at is None else started - self._released_at
                    self._set_progress(assignment.render_id, 0.0, "start")
                    encoding = _EncodeClock()
                    try:
                        progress = self._progress_callback(assignment.render_id)
                        if pieces is not None:
                            result = self._render_take(assignment, request, encoding.timed(sink), pieces)
                        else:
                            result = self.model.render(request, encoding.timed(sink), progress)
                    finally:
                        rendered = self._released_at = time.perf_counter()
                        model_seconds = rendered - started
                        self.busy_seconds += model_seconds
                        self._forget(assignment.render_id)
            encoded = time.perf_counter()
        except Exception as exc:
            mapped = as_farm_error(exc, f"shot {task.shot_id}", storage=self.store.root)
            if mapped is exc:
                raise
            raise mapped from exc
        last_frames_path = self.store.save_last_frames(task.cache_key, result.last_frames)
        finished = time.perf_counter()
        return RenderOutcome(
            cache_key=task.cache_key,
            video_path=str(video_path),
            video_bytes=video_path.stat().st_size,
            video_sha256=file_sha256(video_path),
            last_frames_path=str(last_frames_path),
            last_frames_bytes=last_frames_path.stat().st_size,
            last_frames_sha256=file_sha256(last_frames_path),
            frames=result.frames_written,
            duration=float(task.duration),
            worker=self.identity_info.name,
            model_seconds=model_seconds,
            timings={
                "waited_for_slot": started - arrived,
                "render": model_seconds,
                "encode": encoding.seconds + (encoded - rendered),
                "encode_after_render": encoded - rendered,
                "finalise": finished - started - model_seconds,
                **({"gpu_idle_before": idle} if idle is not None else {}),
                **{f"model.{key}": value for key, value in result.timings.items()},
            },
            warnings=tuple(result.warnings),
            levers=dict(result.levers),
        )

    def _video_writer(
        self, task: ShotTask, video_path: Path, audio: np.ndarray | list[Any], pieces: SegmentAudio | None
    ) -> ShotVideoWriter:
        """The shot's encoder: its dialogue muxed in (a long take's in the segments' ``pieces``), x264 on the
        cores the manifest gives it, and a file already published kept (the store never replaces one)."""
        sound = (
            {"audio_chunks": (pieces(index) for index in range(len(task.segments)))}
            if pieces is not None
            else {"audio": mix_speakers(audio)}
        )
        return ShotVideoWriter(
            video_path,
            width=task.width,
            height=task.height,
            fps=task.fps,
            frames=task.frames,
            audio_rate=defaults.MODEL_SAMPLE_RATE,
            settings=replace(DEFAULT_ENCODE, threads=self.manifest.resources.encode_threads),
            keep_existing=True,
            **sound,
        )

    def _render_take(
        self, assignment: RenderAssignment, request: RenderRequest, sink: FrameSink, audio: SegmentAudio
    ) -> TakeResult:
        """A long take, segment by segment (farm.engine.takes): each segment's frames stream into the one
        video file, whose audio is the segments' pieces."""
        task = assignment.task
        result = render_take(
            self.model,
            request,
            task.segments,
            task.reanchor_every,
            audio,
            sink,
            self._progress_callback(assignment.render_id),
        )
        print(
            f"take of {len(task.segments)} segments; seams at frames {', '.join(map(str, result.seams))}; "
            f"re-anchored segments {', '.join(str(index + 1) for index in result.reanchored) or 'none'}"
        )
        return result

    def _progress_callback(self, render_id: int):
        last_check = [0.0]

        def progress(fraction: float, phase: str) -> None:
            now = time.monotonic()
            if now - last_check[0] < PROGRESS_INTERVAL_SECONDS and fraction < 1.0:
                return
            last_check[0] = now
            self._set_progress(render_id, fraction, phase)
            self._check_cancelled(render_id)

        return progress

    def _set_progress(self, render_id: int, fraction: float, phase: str) -> None:
        with self._state_lock:
            self._progress[render_id] = (max(0.0, min(1.0, fraction)), phase)

    def _check_cancelled(self, render_id: int) -> None:
        with self._state_lock:
            if render_id in self._cancelled:
                raise RenderCancelled(f"render {render_id} was cancelled")

    def _forget(self, render_id: int) -> None:
        with self._state_lock:
            self._progress.pop(render_id, None)
            self._cancelled.discard(render_id)


class _EncodeClock:
    """Seconds the model spent handing frames to the encoder (waiting on its queue when ffmpeg falls behind);
    with the encoding left after the model (``encode_after_render``), the attempt's ``encode`` stage beside
    the model's own (``model.*``)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, sink: FrameSink) -> FrameSink:
        clock = self

        class Timed:
            def write(self, frames: np.ndarray) -> None:
                started = time.perf_counter()
                sink.write(frames)
                clock.seconds += time.perf_counter() - started

        return Timed()


def _device_for(gpu_ids: list) -> str:
    if not gpu_ids:
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


GPU_TYPE_VARIABLE = "FARM_GPU_TYPE"
"""Names the node's GPU type for the cost model where the driver cannot ask the device (fake GPU nodes)."""


def _gpu_type(device: str) -> str:
    """The GPU type the cost model keys this worker's attempts on: the node's ``FARM_GPU_TYPE`` if set, else
    the CUDA device's name, else ``cpu``."""
    named = os.environ.get(GPU_TYPE_VARIABLE, "").strip()
    if named:
        return named
    if device == "cuda":
        import torch

        return str(torch.cuda.get_device_name())
    return "cpu"


def _segment_audio(audio: Any, task: ShotTask) -> SegmentAudio:
    """A long take's audio, one segment at a time: pieces in the object store are fetched only when their
    segment renders (the stager ships a take that way); an array is served in views."""
    if isinstance(audio, np.ndarray):
        return array_segments(audio, task.segments, task.fps)
    import ray

    pieces = list(audio)
    return lambda index: ray.get(pieces[index]) if isinstance(pieces[index], ray.ObjectRef) else pieces[index]


def _request_for(
    assignment: RenderAssignment,
    reference_image: np.ndarray,
    audio: Any,
    continuation: np.ndarray | None,
    second_image: np.ndarray | None = None,
) -> RenderRequest:
    """The model's request; a two-shot's carries each speaker (portrait, own audio, region) and the mix."""
    task = assignment.task
    speakers: tuple[Speaker, ...] = ()
    if task.two_shot is not None and second_image is not None and audio.ndim == 2:
        portraits = (reference_image, second_image)
        speakers = tuple(
            Speaker(planned.character_id, portrait, samples.astype(np.float32) / 32768.0, planned.region)
            for planned, portrait, samples in zip(task.two_shot.speakers, portraits, audio, strict=True)
        )
    # A take's segments get their audio one at a time (farm.engine.takes); the whole request carries none.
    samples = mix_speakers(audio) if isinstance(audio, np.ndarray) and len(task.segments) < 2 else np.zeros(0, np.int16)
    return RenderRequest(
        shot_id=task.shot_id,
        reference_image=reference_image,
        audio=samples.astype(np.float32) / 32768.0,
        sample_rate=defaults.MODEL_SAMPLE_RATE,
        prompt=task.prompt,
        negative_prompt=task.negative_prompt,
        camera=task.camera,
        fps=task.fps,
        width=task.width,
        height=task.height,
        frames=task.frames,
        seed=task.seed,
        steps=task.steps,
        text_guidance=task.text_guidance,
        audio_guidance=task.audio_guidance,
        continuation=Continuation(continuation) if continuation is not None else None,
        framing=task.framing,
        params=assignment.params,
        speakers=speakers,
        layout=task.two_shot.layout.value if speakers and task.two_shot is not None else "",
    )
