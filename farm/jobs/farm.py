"""``Farm``: the one object a script (or the ``farm`` command) drives a render farm through.

It holds the Settings (data dir, database URL, models, Ray address) and opens the database the way every
caller should: for a write, creating and migrating it as needed; for a read, never (a read that finds no
database says which one it looked for). Heavy parts (the planner, Ray, the edit library) are imported
by the methods that need them, so ``farm status`` stays quick.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from farm import defaults
from farm.catalog import Quality
from farm.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from farm.db.records import EditInfo, EventRecord, JobDetail, JobSummary
    from farm.db.session import Database
    from farm.db.states import ShotState
    from farm.engine.messages import JobOutcome, Observer
    from farm.engine.policy import EngineOptions
    from farm.jobs.edit import JobEdit
    from farm.jobs.run import RenderedJob
    from farm.jobs.submit import Submission
    from farm.plan import Plan
    from farm.shotlist.load import ValidationReport


def open_farm(settings: Settings | None = None, **overrides: Any) -> Farm:
    """A Farm for ``settings``, or for the settings the environment gives, with ``overrides`` applied.

    ``overrides`` are ``resolve_settings``'s keywords (``data_dir``, ``database_url``, ``models_dir``,
    ``ray_address``, ``max_shot_seconds``), taking precedence over ``FARM_*`` variables.

    Example::

        from farm import jobs

        with jobs.open_farm(data_dir="/tmp/farm-demo") as farm:
            print(farm.settings.database_url)
    """
    if settings is not None and overrides:
        raise TypeError("give settings or overrides, not both")
    return Farm(settings or resolve_settings(**overrides))


class Farm:
    """A render farm: its database, artifact store and edits (under the data dir), and its Ray cluster."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None
        self._writable = False

    # ---- the database ---------------------------------------------------------------------------

    def database(self, *, write: bool) -> Database:
        """The farm's database, opened for writing (created and migrated as needed) or for reading only."""
        from farm.db.session import open_database

        if self._db is not None and (self._writable or not write):
            return self._db
        if self._db is not None:
            self._db.dispose()
        self._db = open_database(self.settings.database_url, read_only=not write)
        self._writable = write
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def __enter__(self) -> Farm:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # ---- shot lists ---------------------------------------------------------------------------------

    def validate(self, path: Path | str) -> ValidationReport:
        """Every problem of the shot list at ``path`` (located like a compiler's), and the ShotList if valid.

        Example::

            report = farm.validate("shots/demo/episode.yaml")
            assert report.ok, [finding.format() for finding in report.findings]
        """
        from farm.catalog import ModelCatalog
        from farm.shotlist.load import validate_shot_list

        catalog = ModelCatalog.for_settings(self.settings)
        return validate_shot_list(Path(path), catalog=catalog, max_shot_seconds=self.settings.max_shot_seconds)

    def plan(self, path: Path | str, *, quality: Quality | str | None = None) -> Plan:
        """The render tasks the shot list at ``path`` becomes (frames, audio slice, model, cache key), without
        submitting anything. ShotListError (with every finding) if it is invalid.

        Example::

            plan = farm.plan("shots/demo/episode.yaml")
            print(len(plan.tasks), "shots,", plan.total_frames, "frames")
        """
        from farm.jobs.submit import plan_file

        return plan_file(self.settings, Path(path), quality=_quality(quality))[1]

    # ---- jobs: writes -------------------------------------------------------------------------------

    def submit(self, path: Path | str, *, quality: Quality | str | None = None, priority: int = 0) -> Submission:
        """Validate, plan and record a queued job; nothing renders yet (``render`` drives it).

        ``quality`` renders every shot at that tier whatever the shot list says; a higher ``priority`` runs
        first when jobs share a cluster.

        Example::

            submission = farm.submit("shots/demo/episode.yaml", quality="preview")
            print("job", submission.job_id, "has", len(submission.plan.tasks), "shots")
        """
        from farm.jobs.submit import submit_shot_list

        db = self.database(write=True)
        return submit_shot_list(db, self.settings, Path(path), quality=_quality(quality), priority=priority)

    def render(
        self,
        job_id: int,
        *,
        options: EngineOptions | None = None,
        observer: Observer | None = None,
        loudness_lufs: float = defaults.LOUDNESS_LUFS,
    ) -> RenderedJob:
        """Drive job ``job_id`` to its edit in this process: render its shots on Ray, assemble and check the
        edit, and retake what the checks ask for. Resumes a job wherever it stands.

        ``observer`` hears every shot start, progress and end (an ``EngineEvent``).

        Example::

            rendered = farm.render(submission.job_id)
            print(rendered.outcome.state, rendered.edit.verdict, rendered.edit.outcome.assembly.path)
        """
        from farm.jobs.run import render_job

        db = self.database(write=True)
        return render_job(db, self.settings, job_id, options=options, observer=observer, loudness_lufs=loudness_lufs)

    def drive(
        self, job_id: int, *, options: EngineOptions | None = None, observer: Observer | None = None
    ) -> JobOutcome:
        """Render job ``job_id``'s queued shots and stop before its edit (the job is then ``assembling``).

        Example::

            outcome = farm.drive(job_id)
            print(outcome.rendered, "rendered,", outcome.cached, "from the cache")
        """
        from farm.jobs.run import drive_job

        return drive_job(self.database(write=True), self.settings, job_id, options=options, observer=observer)

    def assemble(self, job_id: int, *, loudness_lufs: float = defaults.LOUDNESS_LUFS) -> JobEdit:
        """A new edit version of a job whose shots are all done: edit.mp4, edit.otio, edit.edl, the report.

        When a check's policy asks for retakes, the shots are re-keyed and queued (the job is then
        ``retaking``, and ``render`` renders them).

        Example::

            edit = farm.assemble(job_id, loudness_lufs=-14)
            print(f"v{edit.version}: continuity {edit.verdict}")
        """
        from farm.jobs.edit import assemble_job
        from farm.jobs.retake import apply_retakes
        from farm.jobs.run import hold_lease

        db = self.database(write=True)
        by = self.settings.user
        with hold_lease(db, job_id, by=by):  # a live driver keeps its job; a dead one's lease is taken over
            edit = assemble_job(db, self.settings, job_id, loudness_lufs=loudness_lufs, by=by)
            if edit.outcome.retakes.retakes:
                apply_retakes(db, self.settings, job_id, edit.outcome.retakes.retakes, by=by)
        return edit

    def cancel(self, job_id: int) -> int:
        """Cancel a job: its queued shots at once (returns how many), running ones as its driver notices.

        Example::

            farm.cancel(job_id)
        """
        from farm.db.jobs import cancel_job

        return cancel_job(self.database(write=True), job_id, by=self.settings.user)

    def retry(self, job_id: int, *, shots: Sequence[str] | None = None) -> int:
        """Queue a job's failed and cancelled shots again (or exactly ``shots``, done ones included: a retake
        by hand); returns how many. ``render`` then renders them.

        Example::

            farm.retry(job_id, shots=["sc01_020"])
            farm.render(job_id)
        """
        from farm.db.jobs import retry_job

        named = list(shots) if shots is not None else None
        return retry_job(self.database(write=True), job_id, by=self.settings.user, shot_ids=named)

    def start_driver(self, job_id: int, *, dashboard: str | None = None) -> str:
        """Drive a submitted job in the background and return at once; says where the driver runs.

        Without ``dashboard`` the driver is a detached process on this machine (its log in the data dir's
        logs); with the address of a Ray head's dashboard (``http://head:8265``) it runs as a Ray job there.

        Example::

            print(farm.start_driver(submission.job_id))
        """
        from farm.jobs.detach import start_detached_driver, submit_to_ray_jobs

        if dashboard:
            return f"Ray job {submit_to_ray_jobs(self.settings, job_id, dashboard)}"
        log = self.settings.logs_dir / f"job-{job_id}.log"
        return f"driver pid {start_detached_driver(self.settings, job_id, log)}, log {log}"

    # ---- jobs: reads ----------------------------------------------------------------------------------

    def jobs(self, *, limit: int = 20) -> tuple[JobSummary, ...]:
        """The most recent jobs, newest first, with their shot counts, GPU time and ETA.

        Example::

            for job in farm.jobs(limit=5):
                print(job.id, job.state, f"{job.shots.fraction_done:.0%}")
        """
        from farm.db.queries import job_summaries

        return job_summaries(self.database(write=False), limit=limit)

    def status(
        self, job_id: int, *, shot_states: Iterable[ShotState] | None = None, all_shots_up_to: int = 0
    ) -> JobDetail:
        """One job by scene and by shot: counts, failures, the latest edit, and the shots asked for (every
        shot, or those in ``shot_states``; a job of at most ``all_shots_up_to`` shots is listed whole).

        Example::

            detail = farm.status(job_id)
            print(detail.job.state, [shot.shot_id for shot in detail.failures])
        """
        from farm.db.queries import job_detail

        db = self.database(write=False)
        return job_detail(db, job_id, shot_states=shot_states, all_shots_up_to=all_shots_up_to)

    def events(self, job_id: int, *, limit: int | None = None) -> tuple[EventRecord, ...]:
        """The job's audit log, oldest first (the last ``limit`` events if given).

        Example::

            for event in farm.events(job_id, limit=3):
                print(event.at, event.changed_by, event.kind, event.message)
        """
        from farm.db.queries import job_events

        return job_events(self.database(write=False), job_id, limit=limit)

    def latest_edit(self, job_id: int) -> EditInfo | None:
        """The job's newest edit version (None before its first): what a script waiting on a job waits for.

        Example::

            edit = farm.latest_edit(job_id)
            print(edit.verdict if edit else "no edit yet")
        """
        from farm.db.queries import latest_edit

        return latest_edit(self.database(write=False), job_id)


def _quality(quality: Quality | str | None) -> Quality | None:
    return Quality(quality) if quality is not None else None
