"""Synthetic and real-image shots for the edit tests: known colours, tones, clicks, faces and moves.

Every shot is written with the engine's own ShotVideoWriter, so what the tests assemble is what a
render produces; the demo's portraits are animated with the camera moves of farm.avatar.camera (the
camera reference the models use), which gives real faces moving in frame without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from farm.avatar.camera import render_camera_video
from farm.catalog import ModelCatalog
from farm.edit.timeline import EditShot
from farm.jobs.edit import edit_shots
from farm.media.audio import AudioSlice, cut_audio, mix_speakers, write_wav
from farm.media.image import load_rgb
from farm.media.video import ShotVideoWriter
from farm.plan import ShotTask, plan_shot_list
from farm.shotlist.load import load_shot_list
from farm.shotlist.types import CameraSpec, OutputSpec, ShotList
from tests.shotlists import REPO

FPS = Fraction(25)
RATE = 16_000
SAMPLES_PER_FRAME = RATE // 25
CATALOG = ModelCatalog(REPO / "models")


def tone(seconds: float, frequency: float = 220.0, amplitude: float = 0.3, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def write_track(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, samples, rate)
    return path


def solid_frames(frames: int, colour: tuple[int, int, int], width: int = 160, height: int = 96) -> np.ndarray:
    """A flat colour with a moving bar, so consecutive frames differ like real video does."""
    video = np.empty((frames, height, width, 3), np.uint8)
    video[:] = colour
    for index in range(frames):
        x = (index * 3) % (width - 8)
        video[index, height // 3 : height // 3 + 12, x : x + 8] = (255 - colour[0], 255 - colour[1], 128)
    return video


def write_frames(
    path: Path,
    frames: Iterable[np.ndarray],
    count: int,
    *,
    width: int,
    height: int,
    fps: Fraction = FPS,
    audio: np.ndarray | None = None,
    crf: int | None = None,
) -> Path:
    from farm.media.video import EncodeSettings

    settings = EncodeSettings() if crf is None else EncodeSettings(crf=crf)
    with ShotVideoWriter(path, width=width, height=height, fps=fps, frames=count, audio=audio, settings=settings) as w:
        for frame in frames:
            w.write(frame)
    return path


def edit_shot(
    shot_id: str,
    video: Path,
    frames: int,
    track: Path,
    start_sample: int,
    *,
    scene: str = "sc01",
    character: str = "c",
    person: str = "",
    reference: Path | None = None,
    fps: Fraction = FPS,
    seed: int = 0,
) -> EditShot:
    count = round(Fraction(frames) / fps * RATE)
    return EditShot(
        shot_id=shot_id,
        scene_id=scene,
        character_id=character,
        order=0,
        video=video,
        cache_key=f"key-{shot_id}",
        frames=frames,
        fps=fps,
        audio=AudioSlice(track.stem, track, start_sample, start_sample + count, "test"),
        person_id=person,
        reference_image=reference,
        seed=seed,
    )


def synthetic_edit(
    root: Path,
    lengths: list[int],
    colours: list[tuple[int, int, int]] | None = None,
    *,
    track_samples: np.ndarray | None = None,
    starts: list[int] | None = None,
    width: int = 160,
    height: int = 96,
    frame_maker: Callable[[int, int], np.ndarray] | None = None,
) -> list[EditShot]:
    """Shots of ``lengths`` frames cut back to back (or at ``starts``) from one track."""
    total = sum(lengths) * SAMPLES_PER_FRAME
    track = write_track(root / "dialogue.wav", tone(total / RATE + 1.0) if track_samples is None else track_samples)
    shots = []
    position = 0
    for index, frames in enumerate(lengths):
        start = starts[index] if starts else position
        colour = colours[index] if colours else (40 + 60 * (index % 3), 90, 160)
        video = frame_maker(index, frames) if frame_maker else solid_frames(frames, colour, width, height)
        path = write_frames(root / f"shot{index:02d}.mp4", [video], frames, width=width, height=height)
        shots.append(edit_shot(f"s{index:02d}", path, frames, track, start))
        position = start + frames * SAMPLES_PER_FRAME
    return shots


def portrait_frames(image: np.ndarray, camera: CameraSpec, frames: int, width: int, height: int) -> np.ndarray:
    return np.stack(list(render_camera_video(image, camera, frames, width, height)))


def warm_shift(image: np.ndarray, red: float = 1.25, blue: float = 0.7, gain: float = 1.1) -> np.ndarray:
    """A colour-graded copy: warmer and brighter (what a cut to a mis-graded shot looks like)."""
    shifted = image.astype(np.float64) * gain
    shifted[..., 0] *= red
    shifted[..., 2] *= blue
    return np.clip(shifted, 0, 255).astype(np.uint8)


def two_shot_still(task: ShotTask, width: int, height: int) -> np.ndarray:
    """A two-shot's speakers framed into their regions (farm.avatar.two_shot), as one still."""
    from farm.avatar.base import Speaker
    from farm.avatar.two_shot import compose_reference

    assert task.two_shot is not None
    speakers = tuple(
        Speaker(s.character_id, load_rgb(s.reference_image), np.zeros(1, np.float32), s.region)
        for s in task.two_shot.speakers
    )
    return compose_reference(speakers, task.two_shot.layout.value, width, height)[0]


def render_shot_list_as_camera_moves(
    shot_list_path: Path, out_dir: Path, *, scale: float = 0.5
) -> tuple[ShotList, OutputSpec, list[EditShot]]:
    """Every shot of a shot list "rendered" as its portrait under its camera move, at ``scale`` size.

    Stands in for previz in tests: real faces, real moves, the planned frame counts and audio slices.
    """
    shot_list = load_shot_list(shot_list_path, catalog=CATALOG)
    plan = plan_shot_list(shot_list, CATALOG)
    width = int(shot_list.output.width * scale) // 2 * 2
    height = int(shot_list.output.height * scale) // 2 * 2
    output = OutputSpec(shot_list.output.fps, width, height)
    videos = {}
    for task in plan.tasks:
        if task.two_shot is not None:  # both portraits laid out as the models lay them out
            frames = np.repeat(two_shot_still(task, width * 2, height * 2)[None], task.frames, axis=0)
            frames = np.stack([np.asarray(Image.fromarray(f).resize((width, height))) for f in frames])
        else:
            image = load_rgb(task.reference_image)
            image = np.asarray(Image.fromarray(image).resize((width * 2, height * 2)))
            frames = portrait_frames(image, task.camera, task.frames, width, height)
        slices = [task.audio] if task.two_shot is None else [speaker.audio for speaker in task.two_shot.speakers]
        audio = mix_speakers(np.stack([cut_audio(piece.path, piece.sample_range) for piece in slices]))
        videos[task.shot_id] = write_frames(
            out_dir / f"{task.shot_id}.mp4", [frames], task.frames, width=width, height=height, audio=audio
        )
    persons = {cid: character.person_id for cid, character in shot_list.characters.items()}
    return shot_list, output, edit_shots(plan.tasks, videos, persons=persons)
