"""Input snapshots: copies taken at submit survive edits to the originals, once per content, and a job's
render and edit read them (or, for a job without copies, re-check the originals)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import wave
from pathlib import Path

import numpy as np
import pytest
import ray
from sqlalchemy import select, update

from farm.db.queries import job_events, latest_edit, shots_of_job
from farm.db.session import Database, open_database
from farm.db.states import JobState
from farm.db.tables import Shot
from farm.digests import file_sha256
from farm.errors import MediaError
from farm.jobs.edit import assemble_job, job_edits_dir
from farm.jobs.run import drive_job
from farm.jobs.submit import submit_shot_list
from farm.media.audio import decode_audio
from farm.media.image import load_rgb
from farm.media.snapshots import SnapshotStore
from farm.plan import ShotTask
from farm.settings import resolve_settings
from tests.engine_models import read_log, write_manifest
from tests.shotlists import make_project
from tests.test_engine import SIX_SHOTS, start_cluster
from tests.test_job_edit import SMALL, rendered_job, settings_for


def _stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and ".staging" not in path.parts]


def test_overwriting_the_original_leaves_the_snapshot(tmp_path: Path) -> None:
    portrait = tmp_path / "Anna.PNG"
    portrait.write_bytes(b"original portrait")
    store = SnapshotStore(tmp_path / "inputs")
    snapshot = store.put(portrait)
    portrait.write_bytes(b"saved over at 2 a.m.")
    stored = store.path_of(snapshot)
    assert stored.read_bytes() == b"original portrait"
    assert snapshot.sha256 == file_sha256(stored)
    assert snapshot.relative == f"{snapshot.sha256[:2]}/{snapshot.sha256}.png"
    assert not Path(snapshot.relative).is_absolute()


def test_the_same_content_is_stored_once(tmp_path: Path) -> None:
    first = tmp_path / "a.wav"
    second = tmp_path / "b.wav"
    first.write_bytes(b"dialogue")
    second.write_bytes(b"dialogue")
    store = SnapshotStore(tmp_path / "inputs")
    assert store.put(first) == store.put(second) == store.put(first)
    assert len(_stored_files(store.root)) == 1
    assert list((store.root / ".staging").iterdir()) == []


def test_a_tampered_snapshot_is_refused_by_name(tmp_path: Path) -> None:
    dialogue = tmp_path / "scene.wav"
    dialogue.write_bytes(b"lines")
    store = SnapshotStore(tmp_path / "inputs")
    snapshot = store.put(dialogue)
    (store.root / snapshot.relative).write_bytes(b"silence")
    with pytest.raises(MediaError, match=snapshot.sha256[:2] + "/" + snapshot.sha256):
        store.path_of(snapshot)
    (store.root / snapshot.relative).unlink()
    with pytest.raises(MediaError, match="missing"):
        store.path_of(snapshot)


def test_a_missing_source_is_a_located_error(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "inputs")
    with pytest.raises(MediaError, match=r"nowhere\.png"):
        store.put(tmp_path / "nowhere.png")
    assert _stored_files(store.root) == []


def test_snapshots_honour_the_umask(tmp_path: Path) -> None:
    portrait = tmp_path / "p.png"
    portrait.write_bytes(b"pixels")
    previous = os.umask(0o027)
    try:
        snapshot = SnapshotStore(tmp_path / "inputs").put(portrait)
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "inputs" / snapshot.relative).stat().st_mode)
    assert mode == 0o640


# ---- jobs read the copies their submit took ---------------------------------------------------------


def _silence(track: Path) -> None:
    """Save silence over a WAV track, as long as it was (an artist's mistake at 2 a.m.)."""
    with wave.open(str(track), "rb") as reader:
        params = reader.getparams()
    with wave.open(str(track), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(b"\0" * params.sampwidth * params.nframes * params.nchannels)


def _louder_between(track: Path, start_seconds: float, end_seconds: float) -> None:
    """Double the samples of ``track`` between two times, leaving the rest byte for byte as it was."""
    with wave.open(str(track), "rb") as reader:
        params = reader.getparams()
        samples = np.frombuffer(reader.readframes(params.nframes), "<i2").copy()
    first, last = int(start_seconds * params.framerate), int(end_seconds * params.framerate)
    samples[first:last] = np.clip(samples[first:last].astype(np.int32) * 2, -32768, 32767).astype("<i2")
    with wave.open(str(track), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(samples.tobytes())


def _specs(db: Database, job_id: int) -> dict[str, ShotTask]:
    return {row.shot_id: ShotTask.from_json(row.spec) for row in shots_of_job(db, job_id)}


def test_a_submit_copies_each_input_once_and_a_resubmit_writes_nothing(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    shot_list = make_project(tmp_path / "p", SMALL)
    first = submit_shot_list(database, settings, shot_list).job_id
    stored = _stored_files(settings.inputs_dir)
    assert len(stored) == 3  # two portraits and one dialogue track, whatever the number of shots
    media = shot_list.parent / "media"
    for task in _specs(database, first).values():
        copies = {copy.original: copy.snapshot for copy in task.inputs}
        assert set(copies) == {task.reference_image, task.audio.path}
        assert copies[task.reference_image].sha256 == task.reference_sha256
        assert copies[task.audio.path].sha256 == file_sha256(media / "sc01_dialogue.wav")
    written = {path: path.stat().st_mtime_ns for path in stored}
    second = submit_shot_list(database, settings, shot_list).job_id
    assert {path: path.stat().st_mtime_ns for path in _stored_files(settings.inputs_dir)} == written
    assert _specs(database, second) == _specs(database, first)


def test_resubmitting_after_edits_rekeys_exactly_the_shots_they_change(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    shot_list = make_project(tmp_path / "p", SMALL)
    media = shot_list.parent / "media"
    before = _specs(database, submit_shot_list(database, settings, shot_list).job_id)
    shutil.copy(media / "marcus.jpg", media / "walter.jpg")  # b is walter's only shot
    portrait = _specs(database, submit_shot_list(database, settings, shot_list).job_id)
    assert {shot for shot in before if portrait[shot].cache_key != before[shot].cache_key} == {"b"}
    _louder_between(media / "sc01_dialogue.wav", 2.5, 4.4)  # inside b's slice (2.36 s to 4.56 s) only
    dialogue = _specs(database, submit_shot_list(database, settings, shot_list).job_id)
    assert {shot for shot in before if dialogue[shot].cache_key != portrait[shot].cache_key} == {"b"}
    assert dialogue["a"].inputs != before["a"].inputs  # a's track is another file now, its samples are not
    assert dialogue["a"].cache_key == before["a"].cache_key
    assert len(_stored_files(settings.inputs_dir)) == 4  # walter.jpg now holds marcus.jpg: stored once


def test_the_edit_of_a_job_lays_the_submitted_dialogue_after_the_track_is_replaced_with_silence(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    media = tmp_path / "p" / "media"
    _silence(media / "sc01_dialogue.wav")
    shutil.copy(media / "walter.jpg", media / "marcus.jpg")
    edit = assemble_job(database, settings, job, by="test")
    audio = decode_audio(edit.files.video)
    assert np.abs(audio).max() > 1000  # the lines, not the silence saved over them


def test_assembling_a_job_without_copies_refuses_a_dialogue_replaced_since_the_render(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    _forget_copies(database, job)  # as a job submitted before inputs were copied
    track = tmp_path / "p" / "media" / "sc01_dialogue.wav"
    _silence(track)
    with pytest.raises(MediaError, match=r"sc01_dialogue\.wav: the dialogue \(.*\) of shot a changed since"):
        assemble_job(database, settings, job, by="test")
    assert latest_edit(database, job) is None
    assert not any(job_edits_dir(settings, job).glob("v*"))


def test_assembly_refuses_a_copy_altered_in_the_store(database: Database, database_url: str, tmp_path: Path) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    copy = next(c for c in _specs(database, job)["a"].inputs if c.original.suffix == ".wav")
    (settings.inputs_dir / copy.snapshot.relative).write_bytes(b"RIFF")
    with pytest.raises(MediaError, match=copy.snapshot.sha256):
        assemble_job(database, settings, job, by="test")
    assert latest_edit(database, job) is None


def _forget_copies(db: Database, job_id: int) -> None:
    with db.write() as connection:
        for shot_pk, spec in connection.execute(select(Shot.c.id, Shot.c.spec).where(Shot.c.job_id == job_id)).all():
            stripped = {name: value for name, value in spec.items() if name != "inputs"}
            connection.execute(update(Shot).where(Shot.c.id == shot_pk).values(spec=stripped))


@pytest.mark.ray
def test_a_job_renders_its_submitted_inputs_after_the_originals_are_saved_over(tmp_path: Path) -> None:
    cluster, _ = start_cluster(1)
    log = tmp_path / "renders.log"
    write_manifest(tmp_path / "models", "pattern", log=str(log))
    settings = resolve_settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'farm.db'}",
        models_dir=tmp_path / "models",
        ray_address=cluster.address,
    )
    db = open_database(settings.database_url, data_dir=settings.data_dir)
    try:
        shot_list = make_project(tmp_path / "project", SIX_SHOTS)
        media = shot_list.parent / "media"
        portraits = {name: _pixels(media / f"{name}.jpg") for name in ("marcus", "walter")}
        job = submit_shot_list(db, settings, shot_list).job_id
        shutil.copy(media / "marcus.jpg", media / "walter.jpg")
        _silence(media / "sc01_dialogue.wav")
        ray.init(address=cluster.address, log_to_driver=False)
        outcome = drive_job(db, settings, job)
        assert outcome.state is JobState.ASSEMBLING
        specs = _specs(db, job)
        starts = [entry for entry in read_log(log) if entry["event"] == "start"]
        assert sorted(entry["shot"] for entry in starts) == sorted(specs)
        for entry in starts:
            task = specs[entry["shot"]]
            assert entry["portrait"] == portraits[task.character_id]
            assert entry["audio"] == task.audio.sha256
        assert all(job_events_free_of(db, job, "changed since"))
    finally:
        ray.shutdown()
        cluster.shutdown()
        db.dispose()


def _pixels(path: Path) -> str:
    return hashlib.sha256(np.ascontiguousarray(load_rgb(path)).tobytes()).hexdigest()


def job_events_free_of(db: Database, job_id: int, text: str) -> list[bool]:
    return [text not in (event.message or "") for event in job_events(db, job_id)]
