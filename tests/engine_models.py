"""Small real avatar models for engine tests, plugged in through a manifest's ``adapter: module:Class``.

They render real frames through the real worker, encoder and artifact store; their behaviour (speed,
load time, failures) is set by the manifest's render parameters, and every render they finish or
start is appended to a log file so tests can count what ran where.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from farm.avatar.base import FrameSink, ProgressCallback, RenderRequest, RenderResult, check_request
from farm.catalog import ModelManifest
from farm.errors import OutOfMemoryError
from farm.media.audio import samples_digest

CHUNK = 8
SPEED_VARIABLE = "FARM_TEST_SPEED"
"""A fake GPU node's speed: ``seconds_per_frame`` is divided by it there (the node's environment sets it)."""


class PatternModel:
    """Frames of a colour derived from the shot's prompt, seed and the frame it continues from, with the
    frame number as a bar.

    Render parameters: ``seconds_per_frame`` (at speed 1: a node whose ``FARM_TEST_SPEED`` is 3 sleeps a third
    of it), ``load_seconds``, ``log`` (a file to append events to),
    ``fail_first`` (fail the first N attempts of every shot, or of those in ``fail_shots``),
    ``fail_on_env`` (fail when this environment variable is set on the node), ``needs_low_memory``
    (raise OutOfMemoryError unless ``low_memory``), ``hang_shots`` (hang the first ``hang_first`` attempts of
    these shots without reporting progress).
    """

    code_version: ClassVar[str] = "pattern-2"
    pixel_inputs: ClassVar[frozenset[str]] = frozenset({"prompt", "seed", "width", "height", "frames", "continuation"})

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
        self.params = manifest.render_params

    def load(self, device: str) -> None:
        time.sleep(float(self.params.get("load_seconds", 0.0)))
        self._log("load", device=device)

    def render(self, request: RenderRequest, sink: FrameSink, progress: ProgressCallback) -> RenderResult:
        check_request(request, self.manifest)
        params = {**self.params, **request.params}
        self._log("start", shot=request.shot_id, **_input_digests(request))
        attempt = self._count_attempt(request.shot_id, params)
        targeted = request.shot_id in params.get("fail_shots", [request.shot_id])
        if targeted and attempt <= int(params.get("fail_first", 0)):
            raise RuntimeError(f"injected failure {attempt} of shot {request.shot_id}")
        bad_env = params.get("fail_on_env")
        if bad_env and os.environ.get(bad_env):
            raise RuntimeError(f"this node is bad ({bad_env} is set)")
        if request.shot_id in params.get("hang_shots", []) and attempt <= int(params.get("hang_first", 1)):
            progress(0.0, "hanging")
            time.sleep(3600)  # a render that stops reporting progress: the scheduler must kill it
        if params.get("needs_low_memory") and not params.get("low_memory"):
            raise OutOfMemoryError("CUDA out of memory (injected)")
        recipe = hashlib.sha256(f"{request.prompt}:{request.seed}".encode())
        if request.continuation is not None and len(request.continuation.last_frames):
            recipe.update(np.ascontiguousarray(request.continuation.last_frames[-1]).tobytes())
        colour = np.frombuffer(recipe.digest()[:3], np.uint8)
        delay = float(params.get("seconds_per_frame", 0.0)) / float(os.environ.get(SPEED_VARIABLE) or 1.0)
        keep = self.manifest.continuation_frames
        last = np.zeros((0, request.height, request.width, 3), np.uint8)
        for start in range(0, request.frames, CHUNK):
            count = min(CHUNK, request.frames - start)
            frames = np.empty((count, request.height, request.width, 3), np.uint8)
            frames[:] = colour
            for offset in range(count):
                bar = min(request.width, (start + offset) % request.width + 1)
                frames[offset, : request.height // 8, :bar] = 255
            if delay:
                time.sleep(delay * count)
            sink.write(frames)
            last = np.concatenate([last, frames])[-keep:] if keep else last
            progress((start + count) / request.frames, "render")
        self._log("finish", shot=request.shot_id)
        speed = float(os.environ.get(SPEED_VARIABLE) or 1.0)
        return RenderResult(frames_written=request.frames, last_frames=last, timings={}, levers={"speed": speed})

    def _count_attempt(self, shot_id: str, params: dict[str, Any]) -> int:
        log = params.get("log")
        if not log:
            return 1
        counter = Path(log).with_suffix(f".{shot_id}.attempts")
        with counter.open("a") as handle:
            handle.write("x")
        return counter.stat().st_size

    def _log(self, event: str, **fields: Any) -> None:
        log = self.params.get("log")
        if log:
            node = os.environ.get("FARM_TEST_NODE", "?")
            record = {"event": event, "model": self.manifest.name, "pid": os.getpid(), "node": node, **fields}
            with open(log, "a") as handle:
                handle.write(json.dumps(record) + "\n")


def _input_digests(request: RenderRequest) -> dict[str, str]:
    """What the render was given, for tests to compare with what was submitted: the portrait's pixels
    and the audio as the int16 samples the plan hashed."""
    samples = np.round(np.asarray(request.audio, np.float64) * 32768.0).astype(np.int16)
    return {
        "portrait": hashlib.sha256(np.ascontiguousarray(request.reference_image).tobytes()).hexdigest(),
        "audio": samples_digest(samples),
    }


def write_manifest(
    models_dir: Path,
    name: str,
    *,
    gpus: float = 1.0,
    cpus: float = 1.0,
    quality: str = "final",
    stuck: dict[str, float] | None = None,
    **params: Any,
) -> Path:
    """A manifest for PatternModel in ``models_dir`` (plus the repo's previz, so validation can name it)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "name": name,
        "adapter": "tests.engine_models:PatternModel",
        "quality": quality,
        "resources": {"gpus": gpus, "cpus": cpus},
        "defaults": {"steps": 1},
        "render": params,
        "low_memory": {"low_memory": True},
    }
    if stuck is not None:
        manifest["stuck"] = stuck
    path = models_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
