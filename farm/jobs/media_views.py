"""What the dashboard shows of a job's media: a shot's last frame, an edit's files, an edit's loudness.

Each is found from the database (the shot's current artifact, the edit version's folder) and never from a
path a browser sent: a file name is looked up inside its edit's folder and refused if it would leave it.
A shot's thumbnail is made once per artifact (its cache key names it) and kept in the data dir's cache.
"""

from __future__ import annotations

from pathlib import Path

from farm import files
from farm.db.edits import edit_versions
from farm.db.errors import UnknownFile, UnknownJob
from farm.db.kinds import ArtifactKind
from farm.db.queries import find_artifact, shots_of_job
from farm.db.records import EditInfo
from farm.db.session import Database
from farm.db.states import ShotState
from farm.edit.loudness import LoudnessPoint, loudness_curve
from farm.media.ffmpeg import last_frame_jpeg, run
from farm.settings import Settings

THUMBNAIL_WIDTH = 192


def shot_thumbnail(db: Database, settings: Settings, job_id: int, shot_id: str) -> Path:
    """A JPEG of the last frame the shot's current take rendered; UnknownFile while it has none."""
    row = next(iter(shots_of_job(db, job_id, only=shot_id)), None)
    if row is None:
        raise UnknownFile(f"job {job_id} has no shot {shot_id}")
    artifact = find_artifact(db, row.cache_key, ArtifactKind.SHOT_VIDEO) if row.state is ShotState.DONE else None
    if artifact is None or not Path(artifact.path).is_file():
        raise UnknownFile(f"shot {shot_id} of job {job_id} has no rendered video yet ({row.state})")
    cached = settings.data_dir / "cache" / "thumbnails" / f"{row.cache_key}.jpg"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = files.temporary_path(cached)
        try:
            run(last_frame_jpeg(Path(artifact.path), partial, width=THUMBNAIL_WIDTH), f"{shot_id}: thumbnail")
            files.publish(partial, cached, fsync=False)
        finally:
            partial.unlink(missing_ok=True)
    return cached


def edit_version(db: Database, job_id: int, version: int) -> EditInfo:
    for edit in edit_versions(db, job_id):
        if edit.version == version:
            return edit
    raise UnknownFile(f"job {job_id} has no edit v{version}; `farm status {job_id}` shows its edits")


def edit_file(db: Database, job_id: int, version: int, name: str) -> Path:
    """A file of edit ``version`` (``edit.mp4``, ``report.html``, a report thumbnail), inside its folder only."""
    edit = edit_version(db, job_id, version)
    folder = Path(edit.video_path).parent.resolve()
    path = (folder / name).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise UnknownFile(f"edit v{version} of job {job_id} has no file {name!r}")
    return path


def edit_loudness(db: Database, job_id: int, version: int) -> tuple[LoudnessPoint, ...]:
    edit = edit_version(db, job_id, version)
    if not Path(edit.video_path).is_file():
        raise UnknownJob(f"edit v{version} of job {job_id}: its video {edit.video_path} is gone")
    return loudness_curve(Path(edit.video_path))
