"""The scheduler: dispatch the ready shots of every job it drives to resident workers, record every
transition, handle faults.

One scheduler serves the whole farm (``farm serve`` adds every queued job to it) or one job (``farm
render`` in a terminal): the same loop either way. Workers belong to a model, not to a job: a worker
that has loaded a model renders the next shot that needs it, whichever job it belongs to, and one that
has had nothing to do for ``idle_release_seconds`` is released so another model can load. Which ready
shot goes first is ``farm.engine.ordering``'s ranking (tier, priority, fair share between shows,
submission order, critical path, edit order); a show at its GPU quota waits; preemption happens only at
shot boundaries.

The database is the only durable state, and its state machine decides: the scheduler turns worker
results into compare-and-set transitions and its own copy of the shots' states (``ShotBook``) only
follows transitions that won there. When a job's last shot finishes, the database moves the job on to
its edit and the scheduler lets the job go (``finished``). A scheduler that dies leaves jobs that a
resume picks up without re-rendering anything that is done. The caller holds every job's driver lease
(``farm.jobs``) while the job is in here. The loop, in one place:

    [ readiness -> collect results -> dispatch ready shots -> progress + stuck renders -> job checks
      -> idle workers ]*
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ray

from farm.catalog import ModelCatalog, ModelManifest, Quality
from farm.db import shots as shot_moves
from farm.db.claims import ClaimInfo, ClaimRequest, KeyClaimed, KeyRecorded, record_waiting, renew_claims
from farm.db.costs import CostModel, ShotCost, learned_costs
from farm.db.events import record_event
from farm.db.jobs import settle_job, transition_job
from farm.db.kinds import ArtifactKind, EventKind
from farm.db.products import ArtifactRecord
from farm.db.queries import find_artifact, higher_priority_jobs, job_state, shots_of_job
from farm.db.queue import ShowLimits, job_heads, show_limits
from farm.db.session import Database
from farm.db.states import RENDERABLE_JOB_STATES, AttemptState, JobState, LostRace, ShotState
from farm.engine.artifacts import ArtifactStore, clear_unrecorded, intact_artifact
from farm.engine.faults import classify_failure
from farm.engine.inputs import InputStager
from farm.engine.messages import (
    EngineEvent,
    EngineEventKind,
    JobOutcome,
    Observer,
    RenderAssignment,
    RenderOutcome,
    WorkerSnapshot,
    ignore_events,
)
from farm.engine.ordering import Candidate, DispatchQueue, FairShare, critical_paths
from farm.engine.placement import Lane, best_lane, choose, remaining
from farm.engine.policy import (
    EngineOptions,
    Failure,
    FailureKind,
    NodeHealth,
    ShotBudget,
    counts_against_node,
    decide,
    retry_delay,
)
from farm.engine.pool import PooledWorker, WorkerPool, slots_for
from farm.engine.storage import StoragePause, shot_room
from farm.errors import FarmError
from farm.media.snapshots import SnapshotStore
from farm.plan import ShotTask

MAX_WAITING_PER_PASS = 64
"""Ready shots one dispatch pass may hold back for a faster busy worker before it stops looking further."""

_ENDING_KIND = {
    ShotState.QUEUED: EngineEventKind.RETRY,
    ShotState.FAILED: EngineEventKind.FAILED,
    ShotState.CANCELLED: EngineEventKind.CANCELLED,
}


@dataclass
class ShotBook:
    """The driver's copy of its job's shots: tasks in edit order and their states as last known.

    States change here only after the database accepted the transition (``apply`` with the result of the
    write), so the copy never runs ahead of the database; a lost race re-reads the rows instead.
    """

    tasks: dict[int, ShotTask] = field(default_factory=dict)
    states: dict[int, ShotState] = field(default_factory=dict)
    pk_of: dict[str, int] = field(default_factory=dict)

    def load(self, db: Database, job_id: int) -> None:
        for row in shots_of_job(db, job_id):
            task = ShotTask.from_json(row.spec)
            self.tasks[row.pk] = task
            self.states[row.pk] = row.state
            self.pk_of[task.shot_id] = row.pk

    def apply(self, pk: int, state: ShotState, won: bool) -> bool:
        """Record ``state`` for shot ``pk`` if the database accepted it (``won``); returns ``won``."""
        if won:
            self.states[pk] = state
        return won

    def refresh(self, db: Database, job_id: int) -> None:
        """Re-read every state after a lost race (a cancel or another driver changed a shot)."""
        for row in shots_of_job(db, job_id):
            if row.pk in self.states:
                self.states[row.pk] = row.state

    def in_state(self, *states: ShotState) -> Iterator[int]:
        return (pk for pk, state in self.states.items() if state in states)

    def count(self, state: ShotState) -> int:
        return sum(1 for value in self.states.values() if value is state)

    def continued(self, pk: int) -> ShotTask | None:
        """The task whose last frames shot ``pk`` renders from, if any (not one it renders from the reference
        instead of)."""
        depends_on = self.tasks[pk].depends_on
        return self.tasks[self.pk_of[depends_on[0]]] if depends_on else None

    @property
    def done_fraction(self) -> float:
        return self.count(ShotState.DONE) / max(1, len(self.states))


@dataclass
class _InFlight:
    job_id: int
    shot_pk: int
    render_id: int
    worker: PooledWorker
    node_id: str
    show: str
    gpus: float
    cost: float
    """The estimated GPU-seconds its show was charged at dispatch (replaced by the real figure at the end)."""
    stuck_after: float
    """Seconds without a sign of life after which the render counts as stuck."""
    quiet_since: float
    """When the render last showed a sign of life (its dispatch, its turn on the worker, new progress)."""
    last_progress: tuple[float, str] | None = None
    stuck: str | None = None
    """Why the scheduler killed the render's worker (it was stuck), for the attempt's error."""
    sequence: int = 0
    """Dispatch order: of two shots on one worker, the lower number is expected to hold its render slot first
    (the worker's threads take the slot in no set order, so progress, when shown, overrides this guess)."""
    behind_lost: bool = False
    """Its worker was lost while another shot held the worker's render slot and it waited for its turn."""
    turn_at: float | None = None
    """When it began holding its worker's render slot (None while a shot ahead of it renders there)."""


@dataclass
class JobBook:
    """One job as the scheduler drives it: its shots, what it ranks by, and its shots' budgets and waits."""

    job_id: int
    show: str
    priority: int
    book: ShotBook
    chain: dict[int, int]
    """Per shot, the length of the ``continues`` chain that starts at it (its critical path)."""
    held: bool = False
    budgets: dict[int, ShotBudget] = field(default_factory=dict)
    not_before: dict[int, float] = field(default_factory=dict)
    """Shots backing off after a failure: the monotonic time their next attempt may start."""
    avoid: dict[int, str] = field(default_factory=dict)
    """Shots whose render hung: the worker it hung on, which their next attempt avoids when it can."""
    stopping_since: float | None = None
    yielding_to: tuple[int, ...] = ()
    """Higher-priority jobs another process drives now: this job dispatches nothing until they end."""


@dataclass
class SchedulerCounts:
    """What the scheduler itself counted, every transition it won: the audit compares these with the
    database (``bench/manager.py``)."""

    attempts_started: int = 0
    attempts_succeeded: int = 0
    attempts_failed: int = 0
    attempts_crashed: int = 0
    attempts_cancelled: int = 0
    shots_cached: int = 0
    shots_unrenderable: int = 0
    stuck_killed: int = 0
    storage_pauses: int = 0
    partials_removed: int = 0
    """Temporaries of renders that died with their worker, removed when the crash was recorded."""


class Scheduler:
    """Renders the queued shots of the jobs added to it on the connected Ray cluster, with shared workers."""

    def __init__(
        self,
        db: Database,
        *,
        catalog: ModelCatalog,
        artifacts_root: Path,
        options: EngineOptions | None = None,
        observer: Observer | None = None,
        by: str = "driver",
        logs_root: Path | None = None,
        inputs_root: Path | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.store = ArtifactStore(artifacts_root)
        self.options = options = options or EngineOptions()
        self.observe: Observer = observer or ignore_events
        self.by = by
        """The audit name this scheduler writes its transitions under."""
        self.logs_root = logs_root
        """Where attempts' logs go (``<logs_root>/job-<id>/<shot>.attempt-<n>.log``); None: not kept."""
        self.pool = WorkerPool(str(artifacts_root), max_workers_per_model=options.max_workers_per_model)
        self.inputs = InputStager(db, self.store, SnapshotStore(inputs_root) if inputs_root is not None else None)
        self.jobs: dict[int, JobBook] = {}
        self.in_flight: dict[Any, _InFlight] = {}
        self.nodes = NodeHealth(options.blocklist_after)
        self.fair = FairShare()
        self.limits: dict[str, ShowLimits] = {}
        self.counts = SchedulerCounts()
        self.finished: list[JobOutcome] = []
        """Jobs whose rendering ended (all shots finished, cancelled, or stopped), for the caller to take."""
        self.costs: CostModel = learned_costs(db)
        """The learned cost model (from the database's attempts, updated as shots end): the fair-share
        estimate of a shot's cost and placement on GPUs of different speeds. Unseen: a frame a second."""
        self.ready_at: dict[str, float] = {}
        self.idle_since: dict[str, float] = {}
        self._dirty = True
        self._next_wake = float("inf")
        self._links_waiting = False
        self._clocks = {"progress": 0.0, "job": 0.0}
        self._touched: set[int] = set()
        self._rng = random.Random()
        self._rendered: dict[int, int] = {}
        self._last_done: dict[int, float] = {}
        self._waiting: dict[int, int] = {}
        self.storage = StoragePause()
        """Set while a full disk holds dispatch back (a render failed for want of space)."""
        self._bytes_per_frame = 0.0
        self._dispatched = 0
        """Shots waiting for a cache key another attempt renders: the claiming render id (said once per claim)."""

    # ---- one job in the foreground ----------------------------------------------------------------

    def render_one(self, job_id: int) -> JobOutcome:
        """Render one job's queued shots and return when they are finished (``farm render``); Ctrl-C stops
        its renders and leaves the job queued, resumable."""
        started = time.monotonic()
        interrupted = False
        try:
            if self.add_job(job_id):
                while job_id in self.jobs:
                    self.step()
        except KeyboardInterrupt:
            interrupted = True
            self.stop_all("interrupted; resume with farm render --resume")
        finally:
            busy = self._worker_busy_seconds()
            self.pool.shutdown()
        outcome = self._outcome(job_id, interrupted=interrupted)
        outcome.wall_seconds = time.monotonic() - started
        outcome.worker_busy_seconds = busy
        self._add_timing(outcome, started)
        return outcome

    # ---- the jobs it drives -----------------------------------------------------------------------

    def add_job(self, job_id: int, *, start_workers: bool = True) -> bool:
        """Start driving ``job_id``; True if it has shots to render (it is then in ``jobs``), False if it
        had none (nothing renderable, or every shot came from the cache: its outcome is in ``finished``).

        ``start_workers=False`` leaves the workers to one ``start_workers`` call after a batch of jobs, so
        they are chosen for the whole batch's ranking rather than for its first job."""
        if job_id in self.jobs:
            return True
        book = ShotBook()
        book.load(self.db, job_id)
        if not self._start_rendering(job_id):
            return False
        head = job_heads(self.db, [job_id])[job_id]
        lengths = critical_paths({task.shot_id: next(iter(task.depends_on), None) for task in book.tasks.values()})
        chain = {pk: lengths[task.shot_id] for pk, task in book.tasks.items()}
        job = JobBook(job_id, head.show, head.priority, book, chain, held=head.hold_reason is not None)
        self.jobs[job_id] = job
        self.observe(EngineEvent(EngineEventKind.JOB, total=len(book.tasks), fraction=book.done_fraction))
        for pk in list(book.in_state(ShotState.QUEUED)):
            self._try_cache(job, pk)
        if not self._pending(job):  # nothing left to render (every shot cached, or finished before a takeover)
            settle_job(self.db, job_id, by=self.by)
            self._let_go(job)
            return False
        self._refresh_limits()
        if start_workers:
            self.start_workers()
        self._dirty = True
        return True

    def set_held(self, job_id: int, held: bool) -> None:
        """Hold ``job_id`` back (or let it go) from the next dispatch on, not from the next job check: the
        manager that wrote the hold calls this so that no shot of a held job starts in between."""
        job = self.jobs.get(job_id)
        if job is not None and job.held != held:
            job.held = held
            self._dirty = True

    def step(self) -> None:
        """One turn of the loop; waits at most ``poll_seconds`` for a result."""
        for worker in self.pool.poll_readiness():
            self.ready_at.setdefault(worker.name, time.monotonic())
            self.idle_since.setdefault(worker.name, time.monotonic())
            self._dirty = True
        self._collect_results()
        self._dispatch_ready_shots()
        now = time.monotonic()
        if now - self._clocks["progress"] >= self.options.progress_seconds:
            self._clocks["progress"] = now
            self._poll_progress()
            self._kill_stuck_renders()
        if now - self._clocks["job"] >= self.options.job_check_seconds:
            self._clocks["job"] = now
            self._check_jobs()
        self._release_idle_workers()
        self._let_finished_jobs_go()

    def stop_all(self, reason: str) -> None:
        """Stop every render (they end cancelled, their shots queued) and leave every job queued, so the next
        driver resumes them; what is done stays done."""
        for job in self.jobs.values():
            job.stopping_since = time.monotonic()
        for flight in self.in_flight.values():
            flight.worker.actor.cancel.remote(flight.render_id)
        deadline = time.monotonic() + self.options.cancel_grace_seconds
        while self.in_flight and time.monotonic() < deadline:
            self._collect_results()
        for flight in list(self.in_flight.values()):
            won = shot_moves.finish_attempt(
                self.db,
                flight.render_id,
                outcome=AttemptState.CANCELLED,
                shot_state=ShotState.QUEUED,
                by=self.by,
                error_class="Interrupted",
                error_message=f"the driver stopped: {reason}",
            )
            self.jobs[flight.job_id].book.apply(flight.shot_pk, ShotState.QUEUED, won)
        self.in_flight.clear()
        for job_id in list(self.jobs):
            if job_state(self.db, job_id) is JobState.RENDERING:
                transition_job(
                    self.db, job_id, JobState.QUEUED, by=self.by, expected={JobState.RENDERING}, message=reason
                )
            self._let_go(self.jobs[job_id], interrupted=True)

    def shutdown(self) -> None:
        self.pool.shutdown()

    @property
    def busy(self) -> bool:
        return bool(self.in_flight or self.jobs)

    def _pending(self, job: JobBook) -> bool:
        return any(True for _ in job.book.in_state(ShotState.QUEUED, ShotState.RUNNING))

    def _let_finished_jobs_go(self) -> None:
        touched, self._touched = self._touched, set()
        flying = {flight.job_id for flight in self.in_flight.values()}
        for job_id in touched:
            job = self.jobs.get(job_id)
            if job is None or job_id in flying:
                continue
            if job.stopping_since is not None or not self._pending(job):
                self._let_go(job)

    def _let_go(self, job: JobBook, *, interrupted: bool = False) -> None:
        self.jobs.pop(job.job_id, None)
        self.finished.append(self._outcome(job.job_id, interrupted=interrupted))

    # ---- start ----------------------------------------------------------------------------------

    def _start_rendering(self, job_id: int) -> bool:
        """Move the job into its rendering phase; False (with a message) when it has nothing to render."""
        state = job_state(self.db, job_id)
        if state not in RENDERABLE_JOB_STATES:
            hint = "" if state is JobState.DONE else f" (farm retry {job_id} re-queues its shots)"
            self.observe(
                EngineEvent(EngineEventKind.MESSAGE, message=f"job {job_id} is {state}; nothing to render{hint}")
            )
            self.finished.append(self._outcome(job_id, interrupted=False))
            return False
        if state is not JobState.RENDERING:
            message = f"{self.by} renders it"
            transition_job(self.db, job_id, JobState.RENDERING, by=self.by, expected={state}, message=message)
        return True

    def _try_cache(self, job: JobBook, pk: int) -> bool:
        task = job.book.tasks[pk]
        artifact = intact_artifact(self.db, task.cache_key)
        if artifact is None:
            return False
        won = shot_moves.mark_cached(self.db, pk, artifact.id, by=self.by)
        if job.book.apply(pk, ShotState.DONE, won):
            self.counts.shots_cached += 1
            self._touched.add(job.job_id)
            self._dirty = True
            self.observe(EngineEvent(EngineEventKind.CACHED, task.shot_id, 1.0, f"from cache {task.cache_key[:12]}"))
        return won

    def _demand(self) -> dict[str, tuple[int, tuple[int, int]]]:
        """Per model, its queued shots over every job (ready or waiting on the shot they continue) and the
        best rank among them (preview before final, then priority)."""
        demand: dict[str, tuple[int, tuple[int, int]]] = {}
        for job in self.jobs.values():
            if job.stopping_since is not None:
                continue
            for pk in job.book.in_state(ShotState.QUEUED):
                task = job.book.tasks[pk]
                rank = (0 if task.quality is Quality.PREVIEW else 1, -job.priority)
                count, best = demand.get(task.model, (0, rank))
                demand[task.model] = (count + 1, min(best, rank))
        return demand

    def start_workers(self) -> set[str]:
        """Start workers for the models with queued shots, the best-ranked model first: a model ranked
        below another gets only the GPUs left over, so it does not load workers that would be released
        at once for the higher-ranked shots."""
        cluster = ray.cluster_resources()
        gpus_left = cluster.get("GPU", 0.0)
        deferred: set[str] = set()
        for model, (count, _) in sorted(self._demand().items(), key=lambda item: item[1][1]):
            manifest = self._manifest(model)
            wanted = count
            if manifest.resources.gpus > 0:
                running = sum(1 for w in self.pool.workers if w.model == model)
                wanted = min(count, max(running, int(gpus_left // manifest.resources.gpus)))
                gpus_left -= min(count, slots_for(manifest, cluster)) * manifest.resources.gpus
                if wanted < 1 and slots_for(manifest, cluster) >= 1:
                    deferred.add(model)  # its turn comes when the higher-ranked shots are done
                    continue
            try:
                self.pool.ensure_workers(manifest, wanted)
            except FarmError as exc:  # the cluster can never run this model: its shots fail, saying why
                for job in list(self.jobs.values()):
                    for pk in [pk for pk in job.book.in_state(ShotState.QUEUED) if job.book.tasks[pk].model == model]:
                        self._fail_unrenderable(job, pk, str(exc))
        return deferred

    def _manifest(self, model: str) -> ModelManifest:
        return self.catalog.get(model)

    # ---- dispatch -------------------------------------------------------------------------------

    def _ready_shots(self, job: JobBook, now: float) -> list[Candidate]:
        """The job's queued shots whose dependency is done and whose back-off is over; those that can never
        render (the shot they continue failed) are failed."""
        ready = []
        for pk in list(job.book.in_state(ShotState.QUEUED)):
            continued = job.book.continued(pk)
            dependency = job.book.states[job.book.pk_of[continued.shot_id]] if continued else ShotState.DONE
            if dependency in (ShotState.FAILED, ShotState.CANCELLED):
                self._fail_unrenderable(job, pk, f"it continues shot {continued.shot_id}, which is {dependency}")
                continue
            if dependency is not ShotState.DONE:
                self._links_waiting = self._links_waiting or dependency is ShotState.RUNNING
                continue
            wait = job.not_before.get(pk, 0.0)
            if wait > now:
                self._next_wake = min(self._next_wake, wait)
                continue
            task = job.book.tasks[pk]
            manifest = self._manifest(task.model)
            ready.append(
                Candidate(
                    job_id=job.job_id,
                    shot_pk=pk,
                    show=job.show,
                    model=task.model,
                    preview=task.quality is Quality.PREVIEW,
                    priority=job.priority,
                    chain=job.chain[pk],
                    edit_order=task.order,
                    gpus=manifest.resources.gpus,
                    cost=self._estimated_cost(task),
                )
            )
        return ready

    def _estimated_cost(self, task: ShotTask) -> float:
        """GPU-seconds a shot will likely use on the farm's GPUs: the learned cost, or a frame a second unseen
        (the estimate is refunded and replaced by the real figure when the shot ends)."""
        gpus = max(self._manifest(task.model).resources.gpus, 1.0)
        return self._shot_cost(task, None).seconds * gpus

    def _shot_cost(self, task: ShotTask, gpu_type: str | None) -> ShotCost:
        return self.costs.estimate(task.model, gpu_type, task.width, task.height, task.frames, task.steps)

    def _dispatch_ready_shots(self) -> None:
        now = time.monotonic()
        if self.storage.active and not self._storage_has_room():
            return
        if not self._dirty and now < self._next_wake:
            return
        self._dirty = False
        self._next_wake = float("inf")
        self._links_waiting = False
        queue = DispatchQueue()
        for job in list(self.jobs.values()):
            if job.stopping_since is None and not job.held and not job.yielding_to:
                queue.extend(self._ready_shots(job, now))
        if not len(queue):
            return
        models = {head.model for head in queue.heads()}
        for model in models:
            if not self.pool.usable(model):
                deferred = self.start_workers()
                if model not in deferred and not self.pool.usable(model):
                    for candidate in queue.drain(model):
                        reason = "no worker is left for it: every node was blocklisted"
                        self._fail_unrenderable(self.jobs[candidate.job_id], candidate.shot_pk, reason)
        self._make_room(queue)
        gpus_held = self._gpus_held_by_show()

        def show_free(show: str, gpus: float) -> bool:
            quota = self.limits.get(show, ShowLimits(show)).gpu_quota
            return quota is None or gpus <= 0 or gpus_held.get(show, 0.0) + gpus <= quota

        reserved: dict[str, float] = {}
        waited = 0
        while waited < MAX_WAITING_PER_PASS:
            candidate = queue.pop(self.fair, model_free=lambda m: bool(self._workers_for(m)), show_free=show_free)
            if candidate is None:
                return
            job = self.jobs[candidate.job_id]
            if job.book.states[candidate.shot_pk] is not ShotState.QUEUED or self._try_cache(job, candidate.shot_pk):
                continue
            worker = self._place(job, candidate, reserved, now)
            if worker is None:  # a faster worker, busy now, would finish it sooner: it waits for that one
                waited += 1
                self._next_wake = min(self._next_wake, now + self.options.progress_seconds)
                continue
            if self._dispatch(job, candidate, worker):
                gpus_held[candidate.show] = gpus_held.get(candidate.show, 0.0) + candidate.gpus

    def _place(self, job: JobBook, candidate: Candidate, reserved: dict[str, float], now: float) -> PooledWorker | None:
        """The worker for ``candidate``: with placement on, the one that would finish it first (``None``: wait
        for a faster busy one, whose lane is charged the shot in ``reserved``); off, the least loaded."""
        workers = self._workers_for(candidate.model)
        avoid = job.avoid.get(candidate.shot_pk)
        if not self.options.placement:
            return next((w for w in workers if w.name != avoid), workers[0])
        task = job.book.tasks[candidate.shot_pk]
        open_names = {w.name for w in workers}
        lanes = [w for w in self.pool.usable(candidate.model) if w.ready and not w.draining]
        if avoid is not None and any(w.name != avoid for w in lanes):
            lanes = [w for w in lanes if w.name != avoid]
        by_name = {w.name: w for w in lanes}
        options = [
            Lane(
                w.name,
                ahead=self._work_ahead(w, now) + reserved.get(w.name, 0.0),
                takes=self._shot_cost(task, w.identity.gpu_type if w.identity else None).seconds,
                open=w.name in open_names,
                load=len(w.in_flight),
            )
            for w in lanes
        ]
        choice = choose(options)
        if choice is None:
            best = best_lane(options)
            reserved[best.name] = reserved.get(best.name, 0.0) + best.takes
            return None
        return by_name[choice.name]

    def _work_ahead(self, worker: PooledWorker, now: float) -> float:
        """Predicted seconds before ``worker`` could start another shot: its renders in flight, the one
        holding its slot less the time it has rendered."""
        gpu = worker.identity.gpu_type if worker.identity else None
        ahead = 0.0
        for flight in self.in_flight.values():
            if flight.worker is worker:
                task = self.jobs[flight.job_id].book.tasks[flight.shot_pk]
                ahead += remaining(self._shot_cost(task, gpu).seconds, flight.turn_at, now)
        return ahead

    def _workers_for(self, model: str) -> list[PooledWorker]:
        """Workers that may take a shot of ``model`` now, least loaded first. While a shot waits on one that
        is rendering (a ``continues`` link), busy workers take no second shot: the link, ranked first when
        it becomes ready, would otherwise wait behind a lower-ranked shot already sent there
        (``bench/manager.py`` part b)."""
        workers = self.pool.available(model)
        return [w for w in workers if not w.in_flight] if self._links_waiting else workers

    def _make_room(self, queue: DispatchQueue) -> None:
        """Preemption at shot boundaries between models: when a model whose ready shots rank higher (preview
        before final, then priority) has no worker running, because the slots are held by workers of a
        lower-ranked model, those workers take no new shot and are released as soon as their shot ends."""
        best: dict[str, tuple[int, int]] = {}
        for head in queue.heads():
            rank = (0 if head.preview else 1, -head.priority)
            best[head.model] = min(best.get(head.model, rank), rank)
        starved = [model for model in best if not any(w.ready for w in self.pool.usable(model))]
        for worker in self.pool.workers:
            worker.draining = False
        for model in sorted(starved, key=best.__getitem__):
            waiting = sum(1 for w in self.pool.usable(model) if not w.ready)
            for worker in sorted(self.pool.workers, key=lambda w: len(w.in_flight)):
                if waiting <= 0:
                    break
                theirs = best.get(worker.model)
                if worker.model in starved or worker.draining or (theirs is not None and theirs <= best[model]):
                    continue
                worker.draining = True
                waiting -= 1
        idle = [worker for worker in self.pool.workers if worker.draining and worker.ready and not worker.in_flight]
        for worker in self.pool.release(idle):
            self.idle_since.pop(worker.name, None)
            self.observe(
                EngineEvent(EngineEventKind.MESSAGE, message=f"released {worker.name} for higher-ranked shots")
            )

    def _gpus_held_by_show(self) -> dict[str, float]:
        held: dict[str, float] = {}
        for flight in self.in_flight.values():
            held[flight.show] = held.get(flight.show, 0.0) + flight.gpus
        return held

    def _dispatch(self, job: JobBook, candidate: Candidate, worker: PooledWorker) -> bool:
        pk = candidate.shot_pk
        task = job.book.tasks[pk]
        manifest = self._manifest(task.model)
        try:
            staged = self.inputs.stage(task, job.book.continued(pk), manifest.continuation_frames)
        except FarmError as exc:
            self._fail_unrenderable(job, pk, str(exc))
            return False
        identity = worker.identity
        log_dir = str(self.logs_root / f"job-{job.job_id}") if self.logs_root is not None else None
        seen = find_artifact(self.db, task.cache_key, ArtifactKind.SHOT_VIDEO)
        claim = ClaimRequest(task.cache_key, self.by, self.options.stale_after_seconds, seen.id if seen else None)
        params = manifest.render_params_at(task.escalation)
        if job.budgets.get(pk, ShotBudget()).low_memory:
            params.update(manifest.low_memory)
        run = shot_moves.AttemptRun(
            task.model, identity.gpu_type, task.width, task.height, task.frames, task.steps,
            {**params, "recipe": _recipe(manifest, task.escalation)},
        )  # fmt: skip
        try:
            attempt = shot_moves.start_logged_attempt(
                self.db, pk, worker=worker.name, node=identity.node_label, device=identity.device, by=self.by,
                log_dir=log_dir, key_claim=claim, run=run,
            )  # fmt: skip
        except KeyClaimed as taken:
            self._wait_for_claim(job, pk, taken.claim)
            return False
        except KeyRecorded:  # another attempt rendered the key since the cache check
            self._dirty = self._dirty or not self._try_cache(job, pk)
            return False
        except LostRace:  # a cancel (or another driver) changed the shot since we last looked
            job.book.refresh(self.db, job.job_id)
            self._touched.add(job.job_id)
            return False
        job.book.apply(pk, ShotState.RUNNING, True)
        self._waiting.pop(pk, None)
        clear_unrecorded(self.db, self.store, task.cache_key)
        self.counts.attempts_started += 1
        assignment = RenderAssignment(render_id=attempt.render_id, task=task, params=params, log_path=attempt.log_path)
        ref = worker.actor.render.remote(
            assignment, staged.reference_image, staged.audio, staged.continuation, staged.second_image
        )
        turn_at = None if worker.in_flight else time.monotonic()
        worker.assign(attempt.render_id, time.monotonic())
        self.idle_since.pop(worker.name, None)
        self.fair.charge(candidate.show, candidate.cost)
        stuck_after = manifest.stuck.for_frames(task.frames) * self.options.stuck_scale
        self._dispatched += 1
        self.in_flight[ref] = _InFlight(
            job.job_id, pk, attempt.render_id, worker, identity.node_id, candidate.show, candidate.gpus,
            candidate.cost, stuck_after, quiet_since=time.monotonic(), sequence=self._dispatched, turn_at=turn_at,
        )  # fmt: skip
        self.observe(
            EngineEvent(EngineEventKind.STARTED, task.shot_id, 0.0, worker=f"{worker.name} on {identity.node_label}")
        )
        return True

    def _wait_for_claim(self, job: JobBook, pk: int, claim: ClaimInfo) -> None:
        """Another attempt renders the shot's cache key: the shot is not dispatched but looked at again
        every ``progress_seconds`` (served from the cache once the artifact lands, rendered here if the
        claim ends without one); the job's other shots go on. The reason is logged once per claim."""
        wake = time.monotonic() + self.options.progress_seconds
        job.not_before[pk] = wake
        self._next_wake = min(self._next_wake, wake)
        if self._waiting.get(pk) == claim.render_id:
            return
        self._waiting[pk] = claim.render_id
        record_waiting(self.db, pk, job.job_id, claim, by=self.by)
        self.observe(EngineEvent(EngineEventKind.MESSAGE, job.book.tasks[pk].shot_id, message=claim.reason()))

    # ---- results --------------------------------------------------------------------------------

    def _collect_results(self) -> None:
        if not self.in_flight:
            time.sleep(self.options.poll_seconds)
            return
        # Wake on the first result, then take every other one already finished.
        first, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=self.options.poll_seconds)
        if not first:
            return
        done, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        now = time.monotonic()
        for ref in sorted(done, key=lambda ref: self.in_flight[ref].sequence):  # a worker's slot holder first
            flight = self.in_flight.pop(ref)
            flight.worker.release(flight.render_id, now)
            for other in self.in_flight.values():  # the next shot on that worker starts its turn now
                if other.worker is flight.worker:
                    other.quiet_since = now
                    other.turn_at = now if other.turn_at is None else other.turn_at
            if not flight.worker.in_flight:
                self.idle_since[flight.worker.name] = now
            self.fair.charge(flight.show, -flight.cost)
            self._touched.add(flight.job_id)
            self._dirty = True
            try:
                outcome: RenderOutcome = ray.get(ref)
            except Exception as exc:  # every failure is classified and recorded, none is dropped
                failure = classify_failure(exc)
                if flight.stuck is not None:
                    failure = Failure(FailureKind.CRASH, "Stuck", flight.stuck)
                    self.jobs[flight.job_id].avoid[flight.shot_pk] = flight.worker.name
                elif failure.kind is FailureKind.CRASH and not self._held_slot(flight):
                    failure = replace(failure, reached_model=False)
                self._record_failure(flight, failure)
            else:
                self._record_success(flight, outcome)

    def _held_slot(self, crashed: _InFlight) -> bool:
        """Whether ``crashed`` held its lost worker's render slot; the shots still on that worker are marked
        as waiting behind (prefetched: inputs sent, never reached the model), so that the same loss does not
        charge them when their failures come in. The holder is the one that showed progress: the worker's
        threads take the slot in no set order, so dispatch order only decides when none showed any."""
        if crashed.behind_lost:  # the same loss already ended the shot that held the slot
            return False
        mates = [crashed, *(other for other in self.in_flight.values() if other.worker is crashed.worker)]
        shown = [flight for flight in mates if flight.last_progress is not None]
        holder = min(shown or mates, key=lambda flight: flight.sequence)
        for mate in mates:
            mate.behind_lost = mate is not holder
        return holder is crashed

    def _record_success(self, flight: _InFlight, outcome: RenderOutcome) -> None:
        job = self.jobs[flight.job_id]
        task = job.book.tasks[flight.shot_pk]
        gpus = self._manifest(task.model).resources.gpus
        gpu_seconds = outcome.model_seconds * gpus
        identity = flight.worker.identity
        first = flight.worker.renders_done == 1  # its first attempt paid the warm-up: the cost model keeps it apart
        load_seconds = identity.load_seconds if identity and first else None
        won = shot_moves.finish_attempt(
            self.db,
            flight.render_id,
            outcome=AttemptState.SUCCEEDED,
            shot_state=ShotState.DONE,
            by=self.by,
            artifacts=_artifacts_of(outcome),
            gpu_seconds=gpu_seconds,
            warnings=outcome.warnings,
            timings=outcome.timings,
            model_seconds=outcome.model_seconds,
            load_seconds=load_seconds,
            applied_levers=outcome.levers,
        )
        self.fair.charge(flight.show, outcome.model_seconds * max(gpus, 1.0))
        gpu_type = identity.gpu_type if identity else None
        self.costs.observe(
            task.model, gpu_type, task.width, task.height, task.frames, outcome.model_seconds, load_seconds, task.steps
        )
        self._bytes_per_frame = max(self._bytes_per_frame, outcome.video_bytes / max(1, outcome.frames))
        self.nodes.succeeded(flight.node_id)
        if job.book.apply(flight.shot_pk, ShotState.DONE, won):
            self.counts.attempts_succeeded += 1
            self._rendered[job.job_id] = self._rendered.get(job.job_id, 0) + 1
            self._last_done[job.job_id] = time.monotonic()
            message = "; ".join(outcome.warnings)
            self.observe(EngineEvent(EngineEventKind.DONE, task.shot_id, 1.0, message, worker=outcome.worker))

    def _record_failure(self, flight: _InFlight, failure: Failure) -> None:
        job = self.jobs[flight.job_id]
        pk = flight.shot_pk
        task = job.book.tasks[pk]
        if failure.kind is FailureKind.CRASH:
            if flight.worker in self.pool.workers:
                self.pool.mark_lost(flight.worker)
            self._remove_lost_partials(flight, task.cache_key)
        stopping = job.stopping_since is not None
        decision = decide(
            failure,
            job.budgets.get(pk, ShotBudget()),
            self.options,
            shot_id=task.shot_id,
            stopping=stopping,
            job_cancelled=(stopping or failure.kind is FailureKind.CANCELLED) and self._job_cancelled(job.job_id),
        )
        job.budgets[pk] = decision.budget
        won = shot_moves.finish_attempt(
            self.db,
            flight.render_id,
            outcome=decision.attempt_state,
            shot_state=decision.shot_state,
            by=self.by,
            error_class=failure.error_class,
            error_message=f"{failure.message} [{decision.note}]",
        )
        if job.book.apply(pk, decision.shot_state, won):
            self._count_ending(decision.attempt_state)
            message = f"{failure.error_class}: {failure.message}; {decision.note}"
            if decision.shot_state is ShotState.QUEUED and decision.attempt_state is not AttemptState.CANCELLED:
                spent = decision.budget.errors + decision.budget.crashes
                delay = retry_delay(spent, self.options, self._rng)
                job.not_before[pk] = time.monotonic() + delay
                message += f" (next attempt in {delay:.1f} s)"
            self.observe(EngineEvent(_ENDING_KIND[decision.shot_state], task.shot_id, 0.0, message))
        if failure.kind is FailureKind.STORAGE:
            self._pause_for_storage(job, Path(failure.path) if failure.path else self.store.root, task.frames)
        if counts_against_node(failure) and self.nodes.failed(flight.node_id):
            self._blocklist(job, flight.node_id, flight.worker)

    def _remove_lost_partials(self, flight: _InFlight, cache_key: str) -> None:
        """A worker that died mid-render (its node lost, or killed as stuck) left its temporaries in the
        store. They go now, before the attempt's end releases its claim on the key: renewing the claim
        first proves it is still this attempt's, so no other render of the key can be writing them (one
        whose claim lapsed and went elsewhere leaves them to the start sweep, ``farm.jobs.debris``)."""
        if not renew_claims(self.db, [flight.render_id], lease_seconds=self.options.stale_after_seconds):
            return
        try:
            removed = self.store.remove_temporaries(cache_key)
        except OSError as exc:  # debris costs disk, not correctness: the start sweep tries again
            self.observe(EngineEvent(EngineEventKind.MESSAGE, message=f"removing partial files failed: {exc}"))
            return
        self.counts.partials_removed += len(removed)

    def _pause_for_storage(self, job: JobBook, path: Path, frames: int) -> None:
        """A render ran out of disk: stop dispatching (every job: they share the store) until there is
        room for a shot again, and say so once in the job's log and to the person watching."""
        if self.storage.active:
            return
        message = self.storage.begin(path, shot_room(self._bytes_per_frame, frames))
        self._record_storage_event(message)
        self.counts.storage_pauses += 1

    def _storage_has_room(self) -> bool:
        message = self.storage.room_again()
        if message is None:
            return False
        self._record_storage_event(message)
        self._dirty = True
        return True

    def _record_storage_event(self, message: str) -> None:
        for job_id in self.jobs:
            record_event(
                self.db, job_id, kind=EventKind.JOB_HELD, by=self.by, message=message, data={"reason": "storage"}
            )
        self.observe(EngineEvent(EngineEventKind.MESSAGE, message=message))

    def _count_ending(self, state: AttemptState) -> None:
        if state is AttemptState.FAILED:
            self.counts.attempts_failed += 1
        elif state is AttemptState.CRASHED:
            self.counts.attempts_crashed += 1
        elif state is AttemptState.CANCELLED:
            self.counts.attempts_cancelled += 1

    def _blocklist(self, job: JobBook, node_id: str, worker: PooledWorker) -> None:
        removed = self.pool.blocklist(node_id)
        label = worker.identity.node_label if worker.identity else node_id[:12]
        message = (
            f"node {label} ({node_id[:12]}) failed {self.nodes.failures[node_id]} shots in a row and is "
            f"blocklisted for job {job.job_id}; {len(removed)} worker(s) removed"
        )
        record_event(self.db, job.job_id, kind=EventKind.NODE_BLOCKLISTED, message=message, by=self.by)
        self.observe(EngineEvent(EngineEventKind.MESSAGE, message=message))

    def _fail_unrenderable(self, job: JobBook, pk: int, reason: str) -> None:
        won = shot_moves.fail_unrenderable(self.db, pk, by=self.by, reason=reason)
        self._touched.add(job.job_id)
        if job.book.apply(pk, ShotState.FAILED, won):
            self.counts.shots_unrenderable += 1
            self.observe(EngineEvent(EngineEventKind.FAILED, job.book.tasks[pk].shot_id, 0.0, reason))
        else:
            job.book.refresh(self.db, job.job_id)

    # ---- progress, stuck renders, idle workers ----------------------------------------------------

    def _poll_progress(self) -> None:
        busy = {flight.worker.name: flight.worker for flight in self.in_flight.values()}
        if not busy:
            return
        refs = {worker.actor.progress.remote(): worker for worker in busy.values()}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.5)
        flights = {flight.render_id: flight for flight in self.in_flight.values()}
        now = time.monotonic()
        for ref in done:
            try:
                progress = ray.get(ref)
            except ray.exceptions.RayError:
                continue
            for render_id, (fraction, phase) in progress.items():
                flight = flights.get(render_id)
                if flight is None:
                    continue
                if flight.last_progress != (fraction, phase):
                    flight.last_progress = (fraction, phase)
                    flight.quiet_since = now
                shot_moves.report_progress(self.db, render_id, fraction, phase)
                shot = self.jobs[flight.job_id].book.tasks[flight.shot_pk].shot_id
                self.observe(EngineEvent(EngineEventKind.PROGRESS, shot, fraction, phase))

    def _kill_stuck_renders(self) -> None:
        """A render that has shown no progress for longer than its stuck timeout has its worker killed (it
        restarts by itself); the attempt is recorded as crashed and the shot runs again, elsewhere if it can."""
        now = time.monotonic()
        for flight in list(self.in_flight.values()):
            quiet = now - flight.quiet_since
            if flight.stuck is not None or quiet <= flight.stuck_after:
                continue
            shot = self.jobs[flight.job_id].book.tasks[flight.shot_pk].shot_id
            flight.stuck = (
                f"shot {shot} showed no progress for {quiet:.0f} s on {flight.worker.name} "
                f"(its stuck timeout is {flight.stuck_after:.0f} s); the worker was killed"
            )
            self.counts.stuck_killed += 1
            self.observe(EngineEvent(EngineEventKind.MESSAGE, shot, message=flight.stuck))
            ray.kill(flight.worker.actor, no_restart=False)

    def _release_idle_workers(self) -> None:
        """Release idle workers whose GPUs another model needs: at once when their model has nothing queued
        and another model waits for a slot (or they were drained for higher-ranked shots), after
        ``idle_release_seconds`` when nothing of their model is queued at all."""
        idle = [worker for worker in self.pool.workers if worker.ready and not worker.in_flight]
        if not idle:
            return
        now = time.monotonic()
        demand = self._demand()
        waiting = {model for model in demand if not any(w.ready and not w.draining for w in self.pool.usable(model))}
        released = []
        for worker in idle:
            others_wait = bool(waiting - {worker.model})
            no_work = worker.model not in demand
            expired = now - self.idle_since.get(worker.name, now) >= self.options.idle_release_seconds
            if worker.draining or (others_wait and (no_work or expired)) or (no_work and expired):
                released.append(worker)
        for worker in self.pool.release(released):
            self.idle_since.pop(worker.name, None)
            self.observe(EngineEvent(EngineEventKind.MESSAGE, message=f"released idle worker {worker.name}"))
        if released and demand:
            self.start_workers()

    # ---- job checks: cancel, priority, holds, shows ---------------------------------------------------

    def _refresh_limits(self) -> None:
        self.limits = show_limits(self.db)
        self.fair.shares = {name: limits.share for name, limits in self.limits.items()}

    def _check_jobs(self) -> None:
        if not self.jobs:
            return
        self._refresh_limits()
        heads = job_heads(self.db, self.jobs)
        for job_id, job in list(self.jobs.items()):
            head = heads.get(job_id)
            if head is None:
                continue
            if head.priority != job.priority or (head.hold_reason is not None) != job.held:
                job.priority, job.held = head.priority, head.hold_reason is not None
                self._dirty = True
            if head.state is JobState.CANCELLED:
                self._stop_cancelled(job)
            if self.options.yield_to_other_drivers:
                self._check_priority(job)
        if self.jobs and all(job.yielding_to for job in self.jobs.values()):
            self.pool.release(self.pool.idle())

    def _check_priority(self, job: JobBook) -> None:
        """Give the cluster to higher-priority jobs another process drives, at shot boundaries, and take it
        back when they end. Running shots finish (nothing is lost); the job then dispatches nothing new."""
        others = higher_priority_jobs(self.db, job.job_id, stale_after=self.options.stale_after_seconds)
        higher = tuple(job_id for job_id in others if job_id not in self.jobs)
        if higher and not job.yielding_to:
            listed = ", ".join(str(other) for other in higher)
            message = f"job {listed} has a higher priority: pausing job {job.job_id}"
            self.observe(EngineEvent(EngineEventKind.MESSAGE, message=message))
            record_event(
                self.db, job.job_id, kind=EventKind.JOB_DRIVER, by=self.by,
                message=f"paused for higher-priority job {listed}", data={"yielding_to": list(higher)},
            )  # fmt: skip
        elif job.yielding_to and not higher:
            self.observe(EngineEvent(EngineEventKind.MESSAGE, message=f"job {job.job_id} resumes"))
            self.start_workers()
            self._dirty = True
        job.yielding_to = higher

    def _job_cancelled(self, job_id: int) -> bool:
        return job_state(self.db, job_id) is JobState.CANCELLED

    def _stop_cancelled(self, job: JobBook) -> None:
        mine = [flight for flight in self.in_flight.values() if flight.job_id == job.job_id]
        if job.stopping_since is None:
            self.observe(
                EngineEvent(EngineEventKind.MESSAGE, message=f"job {job.job_id} was cancelled; stopping its renders")
            )
            job.stopping_since = time.monotonic()
            job.book.refresh(self.db, job.job_id)  # the cancel moved the queued shots already
            for flight in mine:
                flight.worker.actor.cancel.remote(flight.render_id)
            self._touched.add(job.job_id)
        elif time.monotonic() - job.stopping_since > self.options.cancel_grace_seconds:
            for flight in mine:
                ray.kill(flight.worker.actor, no_restart=False)

    # ---- the end --------------------------------------------------------------------------------

    def worker_snapshots(self) -> tuple[WorkerSnapshot, ...]:
        """Every worker of the pool as it is now: model, node, busy or idle, busy fraction since it started."""
        now = time.monotonic()
        return tuple(worker.snapshot(now) for worker in list(self.pool.workers))

    def _worker_busy_seconds(self) -> dict[str, float]:
        refs = {worker.actor.stats.remote(): worker.name for worker in self.pool.workers if worker.ready}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=5)
        busy = {}
        for ref in done:
            try:
                busy[refs[ref]] = ray.get(ref)["busy_seconds"]
            except ray.exceptions.RayError:
                continue
        return busy

    def _outcome(self, job_id: int, *, interrupted: bool) -> JobOutcome:
        rows = shots_of_job(self.db, job_id)
        states = [row.state for row in rows]
        return JobOutcome(
            job_id=job_id,
            state=job_state(self.db, job_id),
            done=states.count(ShotState.DONE),
            cached=sum(1 for row in rows if row.cached),
            rendered=self._rendered.get(job_id, 0),
            failed=states.count(ShotState.FAILED),
            cancelled=states.count(ShotState.CANCELLED),
            interrupted=interrupted,
        )

    def _add_timing(self, outcome: JobOutcome, started: float) -> None:
        if not self.ready_at:
            return
        first_ready = min(self.ready_at.values())
        outcome.startup_seconds = first_ready - started
        last_done = self._last_done.get(outcome.job_id)
        if last_done is not None:
            outcome.steady_seconds = last_done - first_ready
            outcome.worker_available_seconds = {
                name: max(0.0, last_done - ready) for name, ready in self.ready_at.items()
            }


def _recipe(manifest: ModelManifest, escalation: int) -> str:
    """Which recipe an attempt runs and why, for its levers: the manifest's (distilled, or full and why
    not distilled), or the escalation rungs a retake climbed."""
    if escalation:
        return "escalated: " + ", ".join(rung.name for rung in manifest.escalation[:escalation])
    return f"{manifest.recipe}: {manifest.recipe_note}" if manifest.recipe_note else manifest.recipe


def _artifacts_of(outcome: RenderOutcome) -> list[ArtifactRecord]:
    """The shot's video first (it becomes the shot's artifact), then its continuation frames."""
    return [
        ArtifactRecord(
            cache_key=outcome.cache_key,
            kind=ArtifactKind.SHOT_VIDEO,
            path=outcome.video_path,
            bytes=outcome.video_bytes,
            sha256=outcome.video_sha256,
            frames=outcome.frames,
            duration=outcome.duration,
        ),
        ArtifactRecord(
            cache_key=outcome.cache_key,
            kind=ArtifactKind.LAST_FRAMES,
            path=outcome.last_frames_path,
            bytes=outcome.last_frames_bytes,
            sha256=outcome.last_frames_sha256,
        ),
    ]
