"""``Farm``: the one object a script (or the ``farm`` command) drives a render farm through.

It holds the Settings (data dir, database URL, models, Ray address) and opens the database the way every
caller should: for a write, creating and migrating it as needed; for a read, never (a read that finds no
database says which one it looked for). Heavy parts (the planner, Ray, the edit library) are imported
by the methods that need them, so ``farm status`` stays quick.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from farm import defaults
from farm.db.records import KEEP, Keep
from farm.errors import InvalidValue
from farm.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from farm.catalog import Quality
    from farm.db.jobs import NewJob
    from farm.db.kinds import Review, Role
    from farm.db.lease import ManagerInfo
    from farm.db.notifications import NotificationRecord
    from farm.db.records import (
        AttemptRecord,
        EditInfo,
        EventPage,
        EventRecord,
        Identity,
        JobDetail,
        JobSummary,
        ShowInfo,
        TokenInfo,
    )
    from farm.db.session import Database
    from farm.db.states import ShotState
    from farm.db.stats import FarmStats
    from farm.edit.loudness import LoudnessPoint
    from farm.engine.messages import JobOutcome, Observer, WorkerSnapshot
    from farm.engine.policy import EngineOptions
    from farm.jobs.bundle import BundleLimits
    from farm.jobs.conform import Conformed
    from farm.jobs.edit import JobEdit
    from farm.jobs.estimate import BudgetOutlook, PlanCost
    from farm.jobs.gc import GcSummary
    from farm.jobs.logs import AttemptLog
    from farm.jobs.manager import Manager, ManagerOptions
    from farm.jobs.run import RenderedJob
    from farm.jobs.submit import Submission
    from farm.plan import Plan
    from farm.shotlist.load import ValidationReport

E = TypeVar("E", bound=enum.Enum)


def open_farm(settings: Settings | None = None, **overrides: Any) -> Farm:
    """A Farm for ``settings``, or for the settings the environment gives, with ``overrides`` applied.

    ``overrides`` are ``resolve_settings``'s keywords (``data_dir``, ``database_url``, ``models_dir``,
    ``ray_address``, ``max_shot_seconds``, ``config``), taking precedence over ``FARM_*`` variables and the
    config file.

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
        self._new_work = threading.Event()
        """Set by every submit and retry through this object, so a manager serving it starts them at once."""
        self._manager: Manager | None = None
        """The manager ``serve`` runs, while it runs (its workers are what ``workers`` reports)."""

    # ---- the database ---------------------------------------------------------------------------

    def database(self, *, write: bool) -> Database:
        """The farm's database, opened for writing (created and migrated as needed) or for reading only."""
        from farm.db.retry import RetryPolicy
        from farm.db.session import open_database

        if self._db is not None and (self._writable or not write):
            return self._db
        if self._db is not None:
            self._db.dispose()
        retry = RetryPolicy(deadline_seconds=self.settings.database_retry_seconds)
        self._db = open_database(
            self.settings.database_url, read_only=not write, data_dir=self.settings.data_dir, retry=retry
        )
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
        return validate_shot_list(
            Path(path),
            catalog=catalog,
            max_shot_seconds=self.settings.max_shot_seconds,
            face_memo=self.settings.face_memo,
        )

    def plan(self, path: Path | str, *, quality: Quality | str | None = None) -> Plan:
        """The render tasks the shot list at ``path`` becomes (frames, audio slice, model, cache key), without
        submitting anything. ShotListError (with every finding) if it is invalid.

        Example::

            plan = farm.plan("shots/demo/episode.yaml")
            print(len(plan.tasks), "shots,", plan.total_frames, "frames")
        """
        from farm.jobs.planning import plan_file

        return plan_file(self.settings, Path(path), quality=_quality(quality))[1]

    def plan_cost(self, plan: Plan) -> PlanCost:
        """Which of ``plan``'s shots the artifact store already has, and the GPU-hours the rest will take at
        each model's measured seconds per frame (its manifest's rate where none was measured yet).

        Example::

            cost = farm.plan_cost(farm.plan("shots/demo/episode.yaml"))
            print(len(cost.cached), "cached;", f"{cost.gpu_hours:.2f} GPU-hours to render")
        """
        from farm.catalog import ModelCatalog
        from farm.db.errors import DatabaseMissing
        from farm.jobs.estimate import plan_cost

        db: Database | None = None
        if not self.settings.no_default_database:  # else nothing is recorded, and SQLAlchemy stays unloaded
            try:
                db = self.database(write=False)
            except DatabaseMissing:
                db = None
        return plan_cost(plan, db, ModelCatalog.for_settings(self.settings))

    def show_budget(self, show: str) -> BudgetOutlook | None:
        """Show ``show``'s GPU-hour budget against what it spent and what its queued shots will still spend at
        the learned costs (None: it has no budget).

        Example::

            outlook = farm.show_budget("Test Show")
            if outlook is not None and outlook.exceeds:
                print(outlook.describe())
        """
        from farm.catalog import ModelCatalog
        from farm.jobs.estimate import show_budget

        return show_budget(show, self.database(write=False), ModelCatalog.for_settings(self.settings))

    # ---- jobs: writes -------------------------------------------------------------------------------

    def submit(
        self,
        path: Path | str,
        *,
        quality: Quality | str | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        submitted_by: str | None = None,
    ) -> Submission:
        """Validate, plan and record a queued job; nothing renders yet (``render`` drives it).

        ``quality`` renders every shot at that tier whatever the shot list says; a higher ``priority`` runs
        first when jobs share a cluster. ``submitted_by`` (default: the settings' user) is whose job it is.
        With ``idempotency_key``, repeating a request returns its first job (``replayed``) and the same key
        with another request raises IdempotencyConflict.

        Example::

            submission = farm.submit("shots/demo/episode.yaml", quality="preview")
            print("job", submission.job_id, "has", len(submission.plan.tasks), "shots")
        """
        from farm.jobs.planning import plan_file

        # Without a key there is no earlier request to replay: the list is validated and planned before
        # the database layer is imported or opened, so a refused list creates no data dir and no database.
        planned = None if idempotency_key else plan_file(self.settings, Path(path), quality=_quality(quality))
        from farm.jobs.submit import submit_shot_list

        db = self.database(write=True)
        submission = submit_shot_list(
            db,
            self.settings,
            Path(path),
            quality=_quality(quality),
            priority=priority,
            submitted_by=submitted_by,
            idempotency_key=idempotency_key,
            planned=planned,
        )
        self._new_work.set()
        return submission

    def submit_bundle(
        self,
        bundle: IO[bytes],
        shot_list: str,
        *,
        quality: Quality | str | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        submitted_by: str | None = None,
        limits: BundleLimits | None = None,
    ) -> Submission:
        """Unpack a bundle (tar.gz or zip of a shot list's folder) into the data dir's uploads and submit the
        shot list ``shot_list`` inside it, as ``submit`` does. If the bundle or its shot list is refused, the
        unpacked folder is removed again: bad input leaves nothing behind.

        Example::

            with open("ep07.tar.gz", "rb") as bundle:
                submission = farm.submit_bundle(bundle, "ep07.yaml")
        """
        import shutil

        from farm.jobs.bundle import unpack_bundle

        unpacked = unpack_bundle(bundle, self.settings.data_dir / "uploads", limits=limits)
        try:
            path = unpacked.member(shot_list)
            return self.submit(
                path,
                quality=quality,
                priority=priority,
                idempotency_key=idempotency_key,
                submitted_by=submitted_by,
            )
        except BaseException:
            if unpacked.created:
                shutil.rmtree(unpacked.root, ignore_errors=True)
            raise

    def render(
        self,
        job_id: int,
        *,
        options: EngineOptions | None = None,
        observer: Observer | None = None,
        loudness_lufs: float = defaults.LOUDNESS_LUFS,
        just_submitted: bool = False,
    ) -> RenderedJob:
        """Drive job ``job_id`` to its edit in this process: render its shots on Ray, assemble and check the
        edit, and retake what the checks ask for. Resumes a job wherever it stands.

        ``observer`` hears every shot start, progress and end (an ``EngineEvent``). ``just_submitted``:
        the job was submitted for this render (``farm render FILE``), so if Ray cannot be joined it is
        cancelled with the reason instead of staying queued for a driver that never comes (a resumed
        job stays as it is, to be resumed again).

        Example::

            rendered = farm.render(submission.job_id)
            print(rendered.outcome.state, rendered.edit.verdict, rendered.edit.outcome.assembly.path)
        """
        from farm.db.queries import job_state
        from farm.db.states import JobState
        from farm.engine.cluster import RayUnreachable
        from farm.jobs.run import render_job

        db = self.database(write=True)
        try:
            return render_job(
                db, self.settings, job_id, options=options, observer=observer, loudness_lufs=loudness_lufs
            )
        except RayUnreachable as exc:
            if not just_submitted or job_state(db, job_id) is not JobState.QUEUED:
                raise
            self._give_up_on(job_id, str(exc))
            raise RayUnreachable(f"{exc}; job {job_id} is cancelled, submit the shot list again") from exc

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

    def assemble(
        self, job_id: int, *, loudness_lufs: float = defaults.LOUDNESS_LUFS, record_start: str | None = None
    ) -> JobEdit:
        """A new edit version of a job whose shots are all done: edit.mp4, edit.otio, edit.edl, edit.xml,
        edit.aaf, the shot-named media and the report. ``record_start``: the first frame's record timecode
        (default: the settings', 01:00:00:00 unless farm.toml says otherwise).

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
        # A live driver keeps its job; a dead one's lease is taken over (its renders' partial files removed).
        with hold_lease(db, job_id, artifacts_dir=self.settings.artifacts_dir, by=by):
            edit = assemble_job(
                db, self.settings, job_id, loudness_lufs=loudness_lufs, record_start=record_start, by=by
            )
            if edit.retakes:
                apply_retakes(db, self.settings, job_id, edit.retakes, by=by)
        return edit

    def conform(self, job_id: int, timeline: Path | str, *, output: Path | str | None = None) -> Conformed:
        """Bring an editor's re-cut of job ``job_id``'s edit back: a new version of its shot list (next to
        the original, ``ep01.conform-v2.yaml``, or at ``output``) whose shots' audio in/out and order follow
        ``timeline`` (``.otio``, ``.edl``, or FCP 7 ``.xml`` with otio-fcp-adapter installed). The original
        is never touched; ConformError (located at the clips and the shots) writes nothing. Rendering the
        new file re-renders only the shots listed in ``renders``.

        Example::

            conformed = farm.conform(job_id, "edits/job-1/v001/recut.otio")
            print(conformed.path, "renders", conformed.renders)
        """
        from farm.jobs.conform import conform_job

        return conform_job(
            self.database(write=False),
            self.settings,
            job_id,
            Path(timeline),
            output=Path(output) if output is not None else None,
        )

    def cancel(self, job_id: int, *, by: str | None = None) -> int:
        """Cancel a job: its queued shots at once (returns how many), running ones as its driver notices.
        ``by``: who cancels it, for the audit log (default: the settings' user).

        Example::

            farm.cancel(job_id)
        """
        from farm.db.jobs import cancel_job

        return cancel_job(self.database(write=True), job_id, by=by or self.settings.user)

    def retry(self, job_id: int, *, shots: Sequence[str] | None = None, by: str | None = None) -> int:
        """Queue a job's failed and cancelled shots again (or exactly ``shots``, done ones included: a retake
        by hand); returns how many. ``render`` then renders them.

        Example::

            farm.retry(job_id, shots=["sc01_020"])
            farm.render(job_id)
        """
        from farm.db.jobs import retry_job

        named = list(shots) if shots is not None else None
        queued = retry_job(self.database(write=True), job_id, by=by or self.settings.user, shot_ids=named)
        self._new_work.set()
        return queued

    def serve(
        self,
        *,
        stop: threading.Event | None = None,
        options: EngineOptions | None = None,
        manager: ManagerOptions | None = None,
        observer: Observer | None = None,
        api_url: str | None = None,
    ) -> None:
        """Manage the farm until ``stop`` is set: become its manager (or stand by while another one lives),
        then drive every queued job on Ray to its edit; ``farm serve`` runs this with the HTTP API beside it.

        A job submitted through this object (the API) starts at once; one submitted by another process
        within ``manager.poll_seconds``.

        Example::

            stop = threading.Event()
            threading.Thread(target=farm.serve, kwargs={"stop": stop}).start()
            farm.submit("shots/demo/episode.yaml")  # the manager renders it to its edit
        """
        from farm.jobs.manager import Manager

        db = self.database(write=True)
        runner = Manager(
            db, self.settings, engine=options, options=manager, observer=observer, api_url=api_url,
            new_work=self._new_work,
        )  # fmt: skip
        self._manager = runner
        try:
            runner.run(stop or threading.Event())
        finally:
            self._manager = None

    def workers(self) -> tuple[WorkerSnapshot, ...]:
        """The resident workers of the manager this object runs (``serve``), busy or idle, with their busy
        fraction; empty when it runs none (a standby, a laptop).

        Example::

            busy = [worker.name for worker in farm.workers() if worker.busy]
        """
        runner = self._manager
        scheduler = runner.scheduler if runner is not None else None
        return scheduler.worker_snapshots() if scheduler is not None else ()

    def stats(self) -> FarmStats:
        """The farm's totals from the database: shots by show, model and state, GPU time and frames by model,
        attempts by outcome, failures by class, retakes (what ``/metrics`` exports).

        Example::

            totals = farm.stats()
            print(sum(t.shots for t in totals.shots if t.state == "queued"), "shots queued")
        """
        from farm.db.stats import farm_stats

        return farm_stats(self.database(write=False))

    def manager(self) -> ManagerInfo | None:
        """The farm's manager of record (``ManagerInfo.alive`` says if it still runs), None if none ever ran.

        Example::

            manager = farm.manager()
            print(manager.holder if manager else "no farm serve has run")
        """
        from farm.db.lease import current_manager

        return current_manager(self.database(write=False))

    def set_priority(self, job_id: int, priority: int, *, by: str | None = None) -> int:
        """Give a job a new priority (higher runs first); returns the one it had. Logged as ``job.priority``.

        Example::

            farm.set_priority(job_id, 10)
        """
        from farm.db.jobs import set_priority

        return set_priority(self.database(write=True), job_id, priority, by=by or self.settings.user)

    def start_driver(self, job_id: int, *, dashboard: str | None = None) -> str:
        """Drive a submitted job in the background and return at once; says where the driver runs.

        Without ``dashboard`` the driver is a detached process on this machine (its log in the data dir's
        logs); with the address of a Ray head's dashboard (``http://head:8265``) it runs as a Ray job there.

        Example::

            print(farm.start_driver(submission.job_id))
        """
        from farm.jobs.detach import DriverNotStarted, start_detached_driver, submit_to_ray_jobs

        if dashboard:
            try:
                return f"Ray job {submit_to_ray_jobs(self.settings, job_id, dashboard)}"
            except DriverNotStarted as exc:
                self._give_up_on(job_id, str(exc))
                raise DriverNotStarted(f"{exc}; job {job_id} is cancelled, submit the shot list again") from exc
        log = self.settings.logs_dir / f"job-{job_id}.log"
        return f"driver pid {start_detached_driver(self.settings, job_id, log)}, log {log}"

    def check_target(self, *, dashboard: str | None = None) -> None:
        """Refuse at once (RayUnreachable, DriverNotStarted), before anything is recorded, a target this
        process cannot reach: the Ray head's dashboard with ``dashboard``, else the settings' Ray address
        (a local Ray, without one, needs no check). A submit that cannot reach its target writes no job.

        Example::

            farm.check_target(dashboard="http://head:8265")
        """
        if dashboard:
            from farm.jobs.detach import check_dashboard_reachable

            check_dashboard_reachable(dashboard)
        elif self.settings.ray_address:
            from farm.engine.cluster import check_reachable

            check_reachable(self.settings.ray_address)

    def _give_up_on(self, job_id: int, why: str) -> None:
        """A queued job whose driver could not be started is cancelled with its queued shots and the reason,
        in one transaction, so that nothing shows it queued for a driver that will never come."""
        from farm.db.jobs import abandon_unstarted_job

        abandon_unstarted_job(
            self.database(write=True), job_id, reason=f"its driver was not started: {why}", by=self.settings.user
        )

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

    def edits(self, job_id: int) -> tuple[EditInfo, ...]:
        """Every edit version of the job, oldest first: video, timeline and report paths, and its verdict.

        Example::

            for edit in farm.edits(job_id):
                print(f"v{edit.version}", edit.verdict, edit.video_path)
        """
        from farm.db.edits import edit_versions

        return edit_versions(self.database(write=False), job_id)

    def review(
        self,
        job_id: int,
        review: Review | str,
        *,
        comment: str = "",
        shots: Sequence[str] = (),
        version: int | None = None,
        by: str | None = None,
    ) -> EditInfo:
        """A producer's decision on the job's newest edit: ``approved``, or ``retake`` with a comment, sending
        ``shots`` back to render again with new seeds (the manager, or ``render``, then makes the next version).
        The job's ``producer_status`` follows from it. Returns the reviewed edit.

        Example::

            farm.review(job_id, "retake", shots=["sc01_020"], comment="too stiff, more energy")
            farm.review(job_id, "approved")
        """
        from farm.db.kinds import Review
        from farm.jobs.review import review_job_edit

        decision = _choice(Review, review, "review")
        edit = review_job_edit(
            self.database(write=True),
            self.settings,
            job_id,
            decision,
            comment=comment,
            shots=list(shots),
            version=version,
            by=by or self.settings.user,
        )
        if shots:
            self._new_work.set()
        return edit

    def submitted_job(self, job_id: int) -> NewJob:
        """The job as it was submitted: shot list, quality, submitter, priority (a quick read, no counts).

        Example::

            print(farm.submitted_job(job_id).submitted_by)
        """
        from farm.db.jobs import job_record

        return job_record(self.database(write=False), job_id)

    def events_since(self, job_id: int, *, after: int = 0, limit: int = 500) -> EventPage:
        """The job's events after event id ``after`` (oldest first, at most ``limit``) and its state now:
        what a live follower polls for.

        Example::

            page = farm.events_since(job_id, after=last_seen)
            last_seen = page.events[-1].id if page.events else last_seen
        """
        from farm.db.queries import events_since

        return events_since(self.database(write=False), job_id, after=after, limit=limit)

    def attempts(self, job_id: int, shot_id: str | None = None) -> tuple[AttemptRecord, ...]:
        """Every render attempt of the job's shots (or of ``shot_id``), in edit order then attempt order.

        Example::

            for attempt in farm.attempts(job_id, "sc01_020"):
                print(attempt.attempt_no, attempt.state, attempt.node, attempt.error_message)
        """
        from farm.db.attempts import shot_attempts

        return shot_attempts(self.database(write=False), job_id, shot_id=shot_id)

    def logs(
        self,
        job_id: int,
        shot_id: str | None = None,
        attempt: int | None = None,
        *,
        latest: bool = False,
        offset: int | None = None,
    ) -> tuple[AttemptLog, ...]:
        """The captured output of the job's attempts (of ``shot_id``; only attempt ``attempt``; ``latest``:
        only the attempt that started last): the end of each log, or from byte ``offset`` on. A log never
        recorded or whose file is gone says so in ``missing``.

        Example::

            for log in farm.logs(job_id, "sc01_020"):
                print(f"== {log.shot_id} attempt {log.attempt_no} ({log.state})")
                print(log.missing or log.text)
        """
        from farm.jobs.logs import attempt_logs

        db = self.database(write=False)
        return attempt_logs(db, job_id, shot_id=shot_id, attempt_no=attempt, latest=latest, offset=offset)

    # ---- housekeeping -------------------------------------------------------------------------------

    def gc(self, *, older_than_seconds: float | None = None, dry_run: bool = False) -> GcSummary:
        """Remove the artifacts (rows and files) no edit or live job references, recorded more than
        ``older_than_seconds`` ago (30 days by default); ``dry_run`` only counts them. Never what a done
        job's latest edit was made from, nor what a queued or running job needs (``farm.jobs.gc``).

        Example::

            summary = farm.gc(older_than_seconds=7 * 86400, dry_run=True)
            print(summary.artifacts, "artifacts,", summary.bytes, "bytes would be freed")
        """
        from farm.jobs.gc import collect_garbage

        age = defaults.GC_OLDER_THAN_SECONDS if older_than_seconds is None else older_than_seconds
        if dry_run:
            return collect_garbage(self.database(write=False), older_than_seconds=age, dry_run=True)
        return collect_garbage(self.database(write=True), older_than_seconds=age)

    # ---- shows: what each show gets of the farm ---------------------------------------------------------

    def shows(self) -> tuple[ShowInfo, ...]:
        """Every show (a shot list's project) with its share, GPU quota, GPU-hour budget and GPU hours used.

        Example::

            for show in farm.shows():
                print(show.name, show.share, show.gpu_quota, f"{show.gpu_hours_used:.1f} h")
        """
        from farm.db.shows import list_shows

        return list_shows(self.database(write=False))

    def show(self, name: str) -> ShowInfo:
        """One show (UnknownShow if it has neither settings nor jobs).

        Example::

            print(farm.show("Test Show").gpu_hours_left)
        """
        from farm.db.shows import read_show

        return read_show(self.database(write=False), name)

    def set_show(
        self,
        name: str,
        *,
        share: float | Keep = KEEP,
        gpu_quota: int | Keep | None = KEEP,
        gpu_hour_budget: float | Keep | None = KEEP,
        by: str | None = None,
    ) -> ShowInfo:
        """Change a show's fair ``share`` (a weight, 1 by default), ``gpu_quota`` (most GPUs at once) or
        ``gpu_hour_budget`` (GPU hours in all); None clears a quota or a budget, and what is not given stays.
        Logged as ``show.changed``; returns the show after the change.

        Example::

            farm.set_show("Test Show", share=2, gpu_quota=4, gpu_hour_budget=120)
        """
        from farm.db.shows import ShowChange, set_show

        change = ShowChange(share=share, gpu_quota=gpu_quota, gpu_hour_budget=gpu_hour_budget)
        return set_show(self.database(write=True), name, change, by=by or self.settings.user)

    def shot_thumbnail(self, job_id: int, shot_id: str) -> Path:
        """A JPEG of the last frame the shot rendered (made once per take, kept in the data dir's cache);
        UnknownFile while the shot has no video.

        Example::

            print(farm.shot_thumbnail(job_id, "sc01_010"))
        """
        from farm.jobs.media_views import shot_thumbnail

        return shot_thumbnail(self.database(write=False), self.settings, job_id, shot_id)

    def edit_file(self, job_id: int, version: int, name: str) -> Path:
        """A file of an edit version (``edit.mp4``, ``report.html``, ``edit.otio``, a report thumbnail), looked
        up inside that version's folder only; UnknownFile otherwise.

        Example::

            video = farm.edit_file(job_id, 1, "edit.mp4")
        """
        from farm.jobs.media_views import edit_file

        return edit_file(self.database(write=False), job_id, version, name)

    def edit_loudness(self, job_id: int, version: int) -> tuple[LoudnessPoint, ...]:
        """The edit's momentary and short-term loudness every half second (its loudness plot).

        Example::

            loudest = max(p.momentary or -70 for p in farm.edit_loudness(job_id, 1))
        """
        from farm.jobs.media_views import edit_loudness

        return edit_loudness(self.database(write=False), job_id, version)

    def notifications(self, job_id: int | None = None, *, limit: int = 100) -> tuple[NotificationRecord, ...]:
        """The newest notifications (of one job, or of the farm): topic, channel, target, the payload sent,
        delivery state, attempts and the receiver's last answer.

        Example::

            for note in farm.notifications(job_id):
                print(note.topic, note.channel, note.target, note.state, note.last_status)
        """
        from farm.db.notifications import notifications_of

        return notifications_of(self.database(write=False), job_id=job_id, limit=limit)

    def apply_config_shows(self) -> tuple[ShowInfo, ...]:
        """Give each show the config file lists the share, quota and budget it says (what it leaves out stays);
        ``farm serve`` does this as it starts, so ``farm.toml`` is where a studio keeps its shows. Logged as
        ``show.changed`` by ``farm.toml`` when something changed.

        Example::

            for show in farm.apply_config_shows():
                print(show.name, show.share, show.gpu_quota, show.gpu_hour_budget)
        """
        changed = []
        for show in self.settings.config.shows:
            values = {
                "share": show.share if show.share is not None else KEEP,
                "gpu_quota": show.gpu_quota if show.gpu_quota is not None else KEEP,
                "gpu_hour_budget": show.gpu_hour_budget if show.gpu_hour_budget is not None else KEEP,
            }
            changed.append(self.set_show(show.name, **values, by="farm.toml"))
        return tuple(changed)

    # ---- API tokens ---------------------------------------------------------------------------------------

    def create_token(self, name: str, role: Role | str) -> str:
        """A new bearer token for the HTTP API, speaking for ``name`` with ``role`` (editor, producer or
        admin). Returns the token itself: show it once; only its digest is kept.

        Example::

            token = farm.create_token("alice", "editor")
        """
        from farm.db.tokens import create_token

        return create_token(self.database(write=True), name, role)

    def revoke_token(self, name: str) -> int:
        """Revoke ``name``'s token (it stops working at once); UnknownToken if it has none.

        Example::

            farm.revoke_token("alice")
        """
        from farm.db.tokens import revoke_token

        return revoke_token(self.database(write=True), name)

    def tokens(self) -> tuple[TokenInfo, ...]:
        """Every API token's name, role and dates, live ones first (never the tokens themselves).

        Example::

            print([token.name for token in farm.tokens() if token.live])
        """
        from farm.db.tokens import list_tokens

        return list_tokens(self.database(write=False))

    def verify_token(self, token: str) -> Identity | None:
        """Who a bearer token speaks for (name and role), or None if it is unknown or revoked.

        Example::

            identity = farm.verify_token(token)
        """
        from farm.db.tokens import verify_token

        return verify_token(self.database(write=False), token)


def _quality(quality: Quality | str | None) -> Quality | None:
    from farm.catalog import Quality  # the catalog is not needed by a read

    return Quality(quality) if quality is not None else None


def _choice(kind: type[E], value: E | str, field: str) -> E:
    """``value`` as a member of ``kind``, or an InvalidValue naming ``field`` and what it may be."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidValue(field, f"{field} must be one of {allowed}, got {value!r}") from None
