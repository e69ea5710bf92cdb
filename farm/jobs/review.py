"""A producer's review of a job's newest edit: approve it, or send some of its shots back with a comment.

A shot sent back renders again with a new seed (so a new take, not the cached one), and the shots that
continue it follow, since their keys chain; the job waits for the farm and its next edit version waits
for review in turn. The decision, comment and who made it are on the edit and in the event log.
"""

from __future__ import annotations

from collections.abc import Sequence

from farm.db.edits import review_edit
from farm.db.errors import UnknownShot
from farm.db.kinds import Review
from farm.db.queries import latest_edit, shots_of_job
from farm.db.records import EditInfo
from farm.db.session import Database
from farm.db.states import IllegalTransition
from farm.edit.retakes import Retake, RetakeMode, retake_seed
from farm.errors import InvalidValue
from farm.jobs.retake import rekeyed_shots
from farm.plan import ShotTask
from farm.settings import Settings


def review_job_edit(
    db: Database,
    settings: Settings,
    job_id: int,
    review: Review,
    *,
    comment: str = "",
    shots: Sequence[str] = (),
    version: int | None = None,
    by: str,
) -> EditInfo:
    """Record ``review`` of the job's edit ``version`` (default: its newest); a retake queues ``shots`` (and
    the shots continuing them) again with new seeds. Returns the reviewed edit."""
    if review is Review.APPROVED and shots:
        raise InvalidValue("shots", "an approval names no shots; send shots back with a retake instead")
    if review is Review.RETAKE and shots and not comment.strip():
        raise InvalidValue("comment", "a retake needs a comment that says what to change (--comment)")
    newest = latest_edit(db, job_id)
    if newest is None:
        raise IllegalTransition(f"job {job_id} has no edit yet; review it once `farm status {job_id}` shows one")
    tasks = {row.shot_id: ShotTask.from_json(row.spec) for row in shots_of_job(db, job_id)}
    unknown = sorted(set(shots) - set(tasks))
    if unknown:
        raise UnknownShot(f"job {job_id} has no shot {', '.join(unknown)}; its shots are {', '.join(sorted(tasks))}")
    reason = f"sent back by {by}: {comment.strip()}"
    retakes = [
        Retake(
            shot_id=shot_id,
            attempt=1,
            seed=retake_seed(tasks[shot_id].seed, 1),
            mode=RetakeMode.NEW_SEED,
            continues=tasks[shot_id].continues,
            checks=("review",),
            reason=reason,
        )
        for shot_id in shots
    ]
    rekeyed = [shot for _, shot in rekeyed_shots(db, settings, job_id, retakes)] if retakes else []
    return review_edit(
        db,
        job_id,
        newest.version if version is None else version,
        review,
        comment=comment.strip(),
        by=by,
        retakes=rekeyed,
    )
