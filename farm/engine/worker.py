"""RenderWorker: a Ray actor that loads one model once and renders many shots into the artifact store.

The actor is threaded: while one shot renders (holding the slot lock), the next call's inputs are
already being transferred and prepared, and the driver can ask for progress or cancel a render. Frames
stream from the model into an ffmpeg encoder, so memory does not grow with the shot.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from farm import defaults
from farm.avatar.base import Continuation, RenderRequest
from farm.avatar.registry import create_model
from farm.catalog import ModelManifest
from farm.db.kinds import ArtifactKind
from farm.digests import file_sha256
from farm.engine.artifacts import ArtifactStore
from farm.engine.faults import as_farm_error
from farm.engine.messages import RenderAssignment, RenderOutcome, WorkerIdentity
from farm.errors import RenderCancelled
from farm.media.video import ShotVideoWriter

PROGRESS_INTERVAL_SECONDS = 0.25


class RenderWorker:
    def __init__(self, manifest: ModelManifest, artifacts_root: str, name: str) -> None:
        import ray

        self.manifest = manifest
        self.store = ArtifactStore(Path(artifacts_root))
        context = ray.get_runtime_context()
        self.identity_info = WorkerIdentity(
            name=name,
            node_id=context.get_node_id(),
            node_ip=ray.util.get_node_ip_address(),
            device=_device_for(ray.get_gpu_ids()),
        )
        started = time.perf_counter()
        self.model = create_model(manifest)
        self.model.load(self.identity_info.device)
        self.load_seconds = time.perf_counter() - started
        self._slot = threading.Lock()
        self._state_lock = threading.Lock()
        self._progress: dict[int, tuple[float, str]] = {}
        self._cancelled: set[int] = set()
        self.busy_seconds = 0.0

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
        audio: np.ndarray,
        continuation_frames: np.ndarray | None,
    ) -> RenderOutcome:
        """Render one attempt; raises on failure (the driver classifies the exception)."""
        arrived = time.perf_counter()
        request = _request_for(assignment, reference_image, audio, continuation_frames)
        task = assignment.task
        video_path = self.store.path_for(task.cache_key, ArtifactKind.SHOT_VIDEO)
        with self._slot:
            self._check_cancelled(assignment.render_id)
            started = time.perf_counter()
            self._set_progress(assignment.render_id, 0.0, "start")
            try:
                with ShotVideoWriter(
                    video_path,
                    width=task.width,
                    height=task.height,
                    fps=task.fps,
                    frames=task.frames,
                    audio=audio,
                    audio_rate=defaults.MODEL_SAMPLE_RATE,
                ) as sink:
                    result = self.model.render(request, sink, self._progress_callback(assignment.render_id))
            except Exception as exc:
                mapped = as_farm_error(exc, f"shot {task.shot_id}")
                if mapped is exc:
                    raise
                raise mapped from exc
            finally:
                model_seconds = time.perf_counter() - started
                self.busy_seconds += model_seconds
                self._forget(assignment.render_id)
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
                "finalise": finished - started - model_seconds,
                **{f"model.{key}": value for key, value in result.timings.items()},
            },
            warnings=tuple(result.warnings),
        )

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


def _device_for(gpu_ids: list) -> str:
    if not gpu_ids:
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _request_for(
    assignment: RenderAssignment, reference_image: np.ndarray, audio: np.ndarray, continuation: np.ndarray | None
) -> RenderRequest:
    task = assignment.task
    return RenderRequest(
        shot_id=task.shot_id,
        reference_image=reference_image,
        audio=audio.astype(np.float32) / 32768.0,
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
        params=assignment.params,
    )
