"""The driver loop: dispatch ready shots to resident workers, record every transition, handle faults.

The database is the only durable state, and its state machine decides: the driver turns worker results
into compare-and-set transitions and its own copy of the shots' states (``ShotBook``) only follows
transitions that won there. When the last shot finishes, the database moves the job on to its edit.
A driver that dies leaves a job that a resume picks up without re-rendering anything that is done.
The caller holds the job's driver lease (``farm.jobs``) for as long as this runs. The loop, in one place:

    start rendering -> cache hits -> [ collect results -> dispatch ready shots -> progress, cancel, priority ]*
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from farm.catalog import ModelCatalog, ModelManifest
from farm.db import shots as shot_moves
from farm.db.events import record_event
from farm.db.jobs import settle_job, transition_job
from farm.db.kinds import ArtifactKind, EventKind
from farm.db.products import ArtifactRecord
from farm.db.queries import find_artifact, higher_priority_jobs, job_state, shots_of_job
from farm.db.session import Database
from farm.db.states import AttemptState, JobState, LostRace, ShotState
from farm.engine.artifacts import ArtifactStore
from farm.engine.faults import classify_failure
from farm.engine.inputs import InputStager
from farm.engine.messages import (
    EngineEvent,
    EngineEventKind,
    JobOutcome,
    Observer,
    RenderAssignment,
    RenderOutcome,
    ignore_events,
)
from farm.engine.policy import (
    EngineOptions,
    Failure,
    FailureKind,
    NodeHealth,
    ShotBudget,
    counts_against_node,
    decide,
)
from farm.engine.pool import PooledWorker, WorkerPool
from farm.errors import FarmError
from farm.plan import ShotTask

RENDERABLE_JOB_STATES = frozenset({JobState.QUEUED, JobState.RETAKING, JobState.RENDERING})
"""A driver renders a job in these states (rendering: it takes over from a driver that was lost)."""

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
        """The task shot ``pk`` continues, if any."""
        continues = self.tasks[pk].continues
        return self.tasks[self.pk_of[continues]] if continues else None

    @property
    def done_fraction(self) -> float:
        return self.count(ShotState.DONE) / max(1, len(self.states))


@dataclass
class _InFlight:
    shot_pk: int
    render_id: int
    worker: PooledWorker
    node_id: str


class Scheduler:
    """Renders one job's queued shots on the connected Ray cluster, then leaves it to its next phase."""

    def __init__(
        self,
        db: Database,
        job_id: int,
        *,
        catalog: ModelCatalog,
        artifacts_root: Path,
        options: EngineOptions | None = None,
        observer: Observer | None = None,
        by: str = "driver",
    ) -> None:
        self.db = db
        self.job_id = job_id
        self.catalog = catalog
        self.store = ArtifactStore(artifacts_root)
        self.options = options = options or EngineOptions()
        self.observe: Observer = observer or ignore_events
        self.by = by
        """The audit name this driver writes its transitions under."""
        self.pool = WorkerPool(str(artifacts_root), max_workers_per_model=options.max_workers_per_model)
        self.book = ShotBook()
        self.inputs = InputStager(db, self.store)
        self.in_flight: dict[Any, _InFlight] = {}
        self.budgets: dict[int, ShotBudget] = {}
        self.nodes = NodeHealth(options.blocklist_after)
        self.stopping_since: float | None = None
        self.rendered = 0
        self.yielding_to: tuple[int, ...] = ()
        """Higher-priority jobs being driven now: this driver dispatches nothing and frees its idle slots."""
        self.ready_at: dict[str, float] = {}
        self.last_done_at: float | None = None

    # ---- the loop -------------------------------------------------------------------------------

    def run(self) -> JobOutcome:
        started = time.monotonic()
        self.book.load(self.db, self.job_id)
        if not self._start_rendering():
            return self._outcome(interrupted=False)
        self.observe(EngineEvent(EngineEventKind.JOB, total=len(self.book.tasks), fraction=self.book.done_fraction))
        self._apply_cache()
        if not self._pending():  # nothing left to render (every shot cached, or finished before a takeover)
            settle_job(self.db, self.job_id, by=self.by)
        self._start_workers()
        interrupted = False
        try:
            self._loop()
        except KeyboardInterrupt:
            interrupted = True
            self._stop_in_flight(cancel_job=False)
        finally:
            busy = self._worker_busy_seconds()
            self.pool.shutdown()
        if interrupted and job_state(self.db, self.job_id) is JobState.RENDERING:
            transition_job(
                self.db, self.job_id, JobState.QUEUED, by=self.by, expected={JobState.RENDERING},
                message="interrupted; resume with farm render --resume",
            )  # fmt: skip
        outcome = self._outcome(interrupted=interrupted)
        outcome.wall_seconds = time.monotonic() - started
        outcome.worker_busy_seconds = busy
        self._add_timing(outcome, started)
        return outcome

    def _loop(self) -> None:
        clocks = {"progress": 0.0, "job": 0.0}
        while self.in_flight or self._pending():
            if self.stopping_since is not None and not self.in_flight:
                return
            for worker in self.pool.poll_readiness():
                self.ready_at.setdefault(worker.name, time.monotonic())
            self._collect_results()
            if self.stopping_since is None and not self.yielding_to:
                self._dispatch_ready_shots()
            elif self.yielding_to:
                self.pool.release_idle()
            now = time.monotonic()
            if now - clocks["progress"] >= self.options.progress_seconds:
                clocks["progress"] = now
                self._poll_progress()
            if now - clocks["job"] >= self.options.job_check_seconds:
                clocks["job"] = now
                self._check_job_cancelled()
                self._check_priority()

    def _pending(self) -> bool:
        return any(True for _ in self.book.in_state(ShotState.QUEUED, ShotState.RUNNING))

    # ---- start ----------------------------------------------------------------------------------

    def _start_rendering(self) -> bool:
        """Move the job into its rendering phase; False (with a message) when it has nothing to render."""
        state = job_state(self.db, self.job_id)
        if state not in RENDERABLE_JOB_STATES:
            hint = "" if state is JobState.DONE else f" (farm retry {self.job_id} re-queues its shots)"
            self.observe(
                EngineEvent(EngineEventKind.MESSAGE, message=f"job {self.job_id} is {state}; nothing to render{hint}")
            )
            return False
        if state is not JobState.RENDERING:
            transition_job(
                self.db, self.job_id, JobState.RENDERING, by=self.by, expected={state}, message=f"{self.by} renders it"
            )
        return True

    def _apply_cache(self) -> None:
        for pk in list(self.book.in_state(ShotState.QUEUED)):
            self._try_cache(pk)

    def _try_cache(self, pk: int) -> bool:
        task = self.book.tasks[pk]
        artifact = find_artifact(self.db, task.cache_key, ArtifactKind.SHOT_VIDEO)
        path = Path(artifact.path) if artifact is not None else None
        if artifact is None or not path.is_file() or path.stat().st_size != artifact.bytes:
            return False
        won = shot_moves.mark_cached(self.db, pk, artifact.id, by=self.by)
        if self.book.apply(pk, ShotState.DONE, won):
            self.observe(EngineEvent(EngineEventKind.CACHED, task.shot_id, 1.0, f"from cache {task.cache_key[:12]}"))
        return won

    def _start_workers(self) -> None:
        remaining: dict[str, int] = {}
        for pk in self.book.in_state(ShotState.QUEUED):
            model = self.book.tasks[pk].model
            remaining[model] = remaining.get(model, 0) + 1
        for model, count in remaining.items():
            self.pool.ensure_workers(self._manifest(model), count)

    def _manifest(self, model: str) -> ModelManifest:
        return self.catalog.get(model)

    # ---- dispatch -------------------------------------------------------------------------------

    def _ready_shots(self) -> list[int]:
        """Queued shots whose dependency is done, in edit order; those that can never render are failed."""
        ready = []
        for pk in list(self.book.in_state(ShotState.QUEUED)):
            continued = self.book.continued(pk)
            dependency = self.book.states[self.book.pk_of[continued.shot_id]] if continued else ShotState.DONE
            if dependency is ShotState.DONE:
                ready.append(pk)
            elif dependency in (ShotState.FAILED, ShotState.CANCELLED):
                self._fail_unrenderable(pk, f"it continues shot {continued.shot_id}, which is {dependency}")
        return ready

    def _dispatch_ready_shots(self) -> None:
        ready = self._ready_shots()
        for model in {self.book.tasks[pk].model for pk in ready}:
            if not self.pool.usable(model):
                for pk in [pk for pk in ready if self.book.tasks[pk].model == model]:
                    self._fail_unrenderable(pk, "no worker is left for it: every node was blocklisted")
        ready = [pk for pk in ready if self.book.states[pk] is ShotState.QUEUED]
        # Fill idle workers first; give a worker a second (prefetched) shot only when every idle one is busy.
        while ready:
            pk = ready[0]
            candidates = self.pool.available(self.book.tasks[pk].model)
            if not candidates:
                ready.pop(0)
                continue
            if self._try_cache(pk):
                ready.pop(0)
                continue
            worker = candidates[0]
            if worker.in_flight and len(ready) <= sum(1 for w in candidates if not w.in_flight):
                break
            ready.pop(0)
            self._dispatch(pk, worker)

    def _dispatch(self, pk: int, worker: PooledWorker) -> None:
        task = self.book.tasks[pk]
        manifest = self._manifest(task.model)
        try:
            staged = self.inputs.stage(task, self.book.continued(pk), manifest.continuation_frames)
        except FarmError as exc:
            self._fail_unrenderable(pk, str(exc))
            return
        identity = worker.identity
        try:
            render_id = shot_moves.start_attempt(
                self.db, pk, worker=worker.name, node=identity.node_label, device=identity.device, by=self.by
            )
        except LostRace:  # a cancel (or another driver) changed the shot since we last looked
            self.book.refresh(self.db, self.job_id)
            return
        self.book.apply(pk, ShotState.RUNNING, True)
        params = dict(manifest.render_params)
        if self.budgets.get(pk, ShotBudget()).low_memory:
            params.update(manifest.low_memory)
        assignment = RenderAssignment(render_id=render_id, task=task, params=params)
        ref = worker.actor.render.remote(assignment, staged.reference_image, staged.audio, staged.continuation)
        worker.in_flight.add(render_id)
        self.in_flight[ref] = _InFlight(pk, render_id, worker, identity.node_id)
        self.observe(
            EngineEvent(EngineEventKind.STARTED, task.shot_id, 0.0, worker=f"{worker.name} on {identity.node_label}")
        )

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
        for ref in done:
            flight = self.in_flight.pop(ref)
            flight.worker.in_flight.discard(flight.render_id)
            try:
                outcome: RenderOutcome = ray.get(ref)
            except Exception as exc:  # every failure is classified and recorded, none is dropped
                self._record_failure(flight, classify_failure(exc))
            else:
                self._record_success(flight, outcome)

    def _record_success(self, flight: _InFlight, outcome: RenderOutcome) -> None:
        task = self.book.tasks[flight.shot_pk]
        gpus = self._manifest(task.model).resources.gpus
        won = shot_moves.finish_attempt(
            self.db,
            flight.render_id,
            outcome=AttemptState.SUCCEEDED,
            shot_state=ShotState.DONE,
            by=self.by,
            artifacts=_artifacts_of(outcome),
            gpu_seconds=outcome.model_seconds * gpus,
            warnings=outcome.warnings,
            timings=outcome.timings,
        )
        self.nodes.succeeded(flight.node_id)
        if self.book.apply(flight.shot_pk, ShotState.DONE, won):
            self.rendered += 1
            self.last_done_at = time.monotonic()
            message = "; ".join(outcome.warnings)
            self.observe(EngineEvent(EngineEventKind.DONE, task.shot_id, 1.0, message, worker=outcome.worker))

    def _record_failure(self, flight: _InFlight, failure: Failure) -> None:
        pk = flight.shot_pk
        task = self.book.tasks[pk]
        if failure.kind is FailureKind.CRASH and flight.worker in self.pool.workers:
            self.pool.mark_lost(flight.worker)
        stopping = self.stopping_since is not None
        decision = decide(
            failure,
            self.budgets.get(pk, ShotBudget()),
            self.options,
            shot_id=task.shot_id,
            stopping=stopping,
            job_cancelled=(stopping or failure.kind is FailureKind.CANCELLED) and self._job_cancelled(),
        )
        self.budgets[pk] = decision.budget
        won = shot_moves.finish_attempt(
            self.db,
            flight.render_id,
            outcome=decision.attempt_state,
            shot_state=decision.shot_state,
            by=self.by,
            error_class=failure.error_class,
            error_message=f"{failure.message} [{decision.note}]",
        )
        if self.book.apply(pk, decision.shot_state, won):
            message = f"{failure.error_class}: {failure.message}; {decision.note}"
            self.observe(EngineEvent(_ENDING_KIND[decision.shot_state], task.shot_id, 0.0, message))
        if counts_against_node(failure) and self.nodes.failed(flight.node_id):
            self._blocklist(flight.node_id, flight.worker)

    def _blocklist(self, node_id: str, worker: PooledWorker) -> None:
        removed = self.pool.blocklist(node_id)
        label = worker.identity.node_label if worker.identity else node_id[:12]
        message = (
            f"node {label} ({node_id[:12]}) failed {self.nodes.failures[node_id]} shots in a row and is "
            f"blocklisted for job {self.job_id}; {len(removed)} worker(s) removed"
        )
        record_event(self.db, self.job_id, kind=EventKind.NODE_BLOCKLISTED, message=message, by=self.by)
        self.observe(EngineEvent(EngineEventKind.MESSAGE, message=message))

    def _fail_unrenderable(self, pk: int, reason: str) -> None:
        won = shot_moves.fail_unrenderable(self.db, pk, by=self.by, reason=reason)
        if self.book.apply(pk, ShotState.FAILED, won):
            self.observe(EngineEvent(EngineEventKind.FAILED, self.book.tasks[pk].shot_id, 0.0, reason))
        else:
            self.book.refresh(self.db, self.job_id)

    # ---- progress, priority, cancellation, end ------------------------------------------------

    def _poll_progress(self) -> None:
        busy = {flight.worker.name: flight.worker for flight in self.in_flight.values()}
        if not busy:
            return
        refs = {worker.actor.progress.remote(): worker for worker in busy.values()}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.5)
        shot_of_render = {flight.render_id: flight.shot_pk for flight in self.in_flight.values()}
        for ref in done:
            try:
                progress = ray.get(ref)
            except ray.exceptions.RayError:
                continue
            for render_id, (fraction, phase) in progress.items():
                if render_id in shot_of_render:
                    shot_moves.report_progress(self.db, render_id, fraction, phase)
                    shot = self.book.tasks[shot_of_render[render_id]].shot_id
                    self.observe(EngineEvent(EngineEventKind.PROGRESS, shot, fraction, phase))

    def _check_priority(self) -> None:
        """Give the cluster to higher-priority jobs at shot boundaries, and take it back when they end.

        Running shots finish (nothing is lost); this driver then dispatches nothing new and kills its idle
        workers so the other job's workers can start. Jobs of equal priority share the cluster.
        """
        higher = higher_priority_jobs(self.db, self.job_id, stale_after=self.options.stale_after_seconds)
        if higher and not self.yielding_to:
            listed = ", ".join(str(job) for job in higher)
            message = f"job {listed} has a higher priority: pausing job {self.job_id}"
            self.observe(EngineEvent(EngineEventKind.MESSAGE, message=message))
            record_event(
                self.db, self.job_id, kind=EventKind.JOB_DRIVER, by=self.by,
                message=f"paused for higher-priority job {listed}", data={"yielding_to": list(higher)},
            )  # fmt: skip
        elif self.yielding_to and not higher:
            self.observe(EngineEvent(EngineEventKind.MESSAGE, message=f"job {self.job_id} resumes"))
            self._start_workers()
        self.yielding_to = higher

    def _job_cancelled(self) -> bool:
        return job_state(self.db, self.job_id) is JobState.CANCELLED

    def _check_job_cancelled(self) -> None:
        if self.stopping_since is None and self._job_cancelled():
            self.observe(
                EngineEvent(EngineEventKind.MESSAGE, message=f"job {self.job_id} was cancelled; stopping its renders")
            )
            self._stop_in_flight(cancel_job=True)
        elif (
            self.stopping_since is not None
            and time.monotonic() - self.stopping_since > self.options.cancel_grace_seconds
        ):
            for flight in list(self.in_flight.values()):
                ray.kill(flight.worker.actor, no_restart=False)

    def _stop_in_flight(self, *, cancel_job: bool) -> None:
        """Ask every busy worker to stop; on Ctrl-C wait for them so the job is left resumable."""
        self.stopping_since = time.monotonic()
        if cancel_job:  # cancel_job moved the queued shots already; read what it wrote
            self.book.refresh(self.db, self.job_id)
        for flight in self.in_flight.values():
            flight.worker.actor.cancel.remote(flight.render_id)
        if cancel_job:
            return
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
                error_message="the driver was interrupted",
            )
            self.book.apply(flight.shot_pk, ShotState.QUEUED, won)
        self.in_flight.clear()

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

    def _outcome(self, *, interrupted: bool) -> JobOutcome:
        rows = shots_of_job(self.db, self.job_id)
        states = [row.state for row in rows]
        return JobOutcome(
            job_id=self.job_id,
            state=job_state(self.db, self.job_id),
            done=states.count(ShotState.DONE),
            cached=sum(1 for row in rows if row.cached),
            rendered=self.rendered,
            failed=states.count(ShotState.FAILED),
            cancelled=states.count(ShotState.CANCELLED),
            interrupted=interrupted,
        )

    def _add_timing(self, outcome: JobOutcome, started: float) -> None:
        if not self.ready_at:
            return
        first_ready = min(self.ready_at.values())
        outcome.startup_seconds = first_ready - started
        if self.last_done_at is not None:
            outcome.steady_seconds = self.last_done_at - first_ready
            outcome.worker_available_seconds = {
                name: max(0.0, self.last_done_at - ready) for name, ready in self.ready_at.items()
            }


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
