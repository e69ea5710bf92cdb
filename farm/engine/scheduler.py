"""The driver loop: dispatch ready shots to resident workers, record every transition, handle faults.

The database is the only durable state. The driver is its only writer for this job (SQLite allows one
writer), turning worker results into compare-and-set transitions; a driver that dies leaves a job that
``resume`` picks up without re-rendering anything that is done. The loop, in one place:

    recover -> cache hits -> [ collect results -> dispatch ready shots -> progress, cancel, heartbeat ]*
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ray

from farm.avatar.manifest import ModelCatalog, ModelManifest
from farm.db import transitions
from farm.db.queries import find_artifact, higher_priority_jobs, job_state, shots_of_job
from farm.db.session import Database
from farm.db.states import AttemptState, JobState, LostRace, ShotState
from farm.digests import file_sha256
from farm.engine.artifacts import LAST_FRAMES, SHOT_VIDEO, ArtifactStore
from farm.engine.faults import Failure, FailureKind, classify_failure
from farm.engine.pool import PooledWorker, WorkerPool
from farm.engine.work import RenderAssignment, RenderOutcome
from farm.errors import FarmError, RenderError, UsageError
from farm.media.audio import cut_audio, samples_digest
from farm.media.image import load_rgb
from farm.media.video import read_frames
from farm.plan import ShotTask


@dataclass(frozen=True)
class EngineOptions:
    max_attempts: int = 3
    """Errors a shot may have before it fails (crashes and out-of-memory retries don't count)."""
    max_crashes: int = 5
    """Lost workers or nodes a shot may live through before it fails."""
    blocklist_after: int = 3
    """Consecutive failures on one node before the node leaves the rotation for this job."""
    max_workers_per_model: int | None = None
    poll_seconds: float = 0.05
    progress_seconds: float = 1.0
    job_check_seconds: float = 0.5
    heartbeat_seconds: float = 2.0
    cancel_grace_seconds: float = 15.0


@dataclass(frozen=True)
class EngineEvent:
    """What the driver tells its observer (the CLI's progress display, a test, a log)."""

    kind: str
    """job | started | progress | done | cached | retry | failed | cancelled | message"""
    shot_id: str = ""
    fraction: float = 0.0
    message: str = ""
    worker: str = ""
    total: int = 0
    """For ``job``: how many shots the job has."""


Observer = Callable[[EngineEvent], None]


@dataclass
class JobOutcome:
    job_id: int
    state: JobState
    done: int = 0
    cached: int = 0
    rendered: int = 0
    failed: int = 0
    cancelled: int = 0
    interrupted: bool = False
    wall_seconds: float = 0.0
    worker_busy_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds each worker spent inside its model's render call."""
    worker_available_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds from each worker being ready (model loaded) to the last shot finishing."""
    startup_seconds: float = 0.0
    """From the driver starting to the first worker ready (actors created, model loaded)."""
    steady_seconds: float = 0.0
    """From the first worker ready to the last shot finished."""

    @property
    def busy_fraction(self) -> float | None:
        """How much of the time its workers were available they spent rendering (start-up excluded)."""
        available = sum(self.worker_available_seconds.get(name, 0.0) for name in self.worker_busy_seconds)
        return sum(self.worker_busy_seconds.values()) / available if available > 0 else None


@dataclass
class _InFlight:
    shot_pk: int
    render_id: int
    worker: PooledWorker
    node_id: str


class Scheduler:
    def __init__(
        self,
        db: Database,
        job_id: int,
        *,
        catalog: ModelCatalog,
        artifacts_root: Path,
        options: EngineOptions = EngineOptions(),
        observer: Observer | None = None,
        actor: str = "driver",
    ) -> None:
        self.db = db
        self.job_id = job_id
        self.catalog = catalog
        self.store = ArtifactStore(artifacts_root)
        self.options = options
        self.observe: Observer = observer or (lambda event: None)
        self.actor = actor
        self.driver_id = f"{actor}-{uuid.uuid4().hex[:8]}"
        self.pool = WorkerPool(str(artifacts_root), max_workers_per_model=options.max_workers_per_model)
        self.tasks: dict[int, ShotTask] = {}
        self.states: dict[int, ShotState] = {}
        self.pk_of: dict[str, int] = {}
        self.in_flight: dict[Any, _InFlight] = {}
        self.errors: dict[int, int] = {}
        self.crashes: dict[int, int] = {}
        self.low_memory: set[int] = set()
        self.node_failures: dict[str, int] = {}
        self.media_refs: dict[str, Any] = {}
        self.cancelling_since: float | None = None
        self.rendered = 0
        self.yielding_to: tuple[int, ...] = ()
        """Higher-priority jobs being driven now: this driver dispatches nothing and frees its idle slots."""
        self.ready_at: dict[str, float] = {}
        self.last_done_at: float | None = None

    # ---- the loop -------------------------------------------------------------------------------

    def run(self) -> JobOutcome:
        started = time.monotonic()
        if not self._take_over_job():
            return self._outcome_without_running()
        self._load_shots()
        self.observe(EngineEvent("job", total=len(self.tasks), fraction=self._done_fraction()))
        self._apply_cache()
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
        outcome = self._finish_job(interrupted)
        transitions.release_driver(self.db, self.job_id, self.driver_id)
        outcome.wall_seconds = time.monotonic() - started
        outcome.worker_busy_seconds = busy
        if self.ready_at:
            outcome.startup_seconds = min(self.ready_at.values()) - started
        if self.last_done_at is not None and self.ready_at:
            outcome.steady_seconds = self.last_done_at - min(self.ready_at.values())
            outcome.worker_available_seconds = {
                name: max(0.0, self.last_done_at - ready) for name, ready in self.ready_at.items()
            }
        return outcome

    def _loop(self) -> None:
        clocks = {"progress": 0.0, "job": 0.0, "heartbeat": 0.0}
        while True:
            for worker in self.pool.poll_readiness():
                self.ready_at.setdefault(worker.name, time.monotonic())
            self._collect_results()
            if self.cancelling_since is None and not self.yielding_to:
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
            if now - clocks["heartbeat"] >= self.options.heartbeat_seconds:
                clocks["heartbeat"] = now
                transitions.heartbeat(self.db, self.job_id, self.driver_id)
            if not self.in_flight and not self._pending_shots():
                return
            if self.cancelling_since is not None and not self.in_flight:
                return

    # ---- start ----------------------------------------------------------------------------------

    def _take_over_job(self) -> bool:
        """Claim the job for this driver; False if there is nothing to do.

        A job left running by a dead driver (stale heartbeat) is recovered: its running attempts are
        marked crashed and their shots queued again. A live driver elsewhere keeps the job.
        """
        state = job_state(self.db, self.job_id)
        if state is not JobState.QUEUED and state is not JobState.RUNNING:
            self.observe(
                EngineEvent(
                    "message",
                    message=f"job {self.job_id} is {state.value}; nothing to render"
                    + (f" (farm retry {self.job_id} re-queues its shots)" if state is not JobState.DONE else ""),
                )
            )
            return False
        self._claim_driver_lease()
        recovered = transitions.recover_orphans(self.db, self.job_id, actor=self.actor)
        if recovered:
            self.observe(EngineEvent("message", message=f"recovered {recovered} shot(s) from a lost driver"))
        if state is JobState.RUNNING:
            transitions.transition_job(
                self.db,
                self.job_id,
                JobState.QUEUED,
                actor=self.actor,
                message="the previous driver was lost",
                expected={JobState.RUNNING},
            )
        transitions.transition_job(
            self.db,
            self.job_id,
            JobState.RUNNING,
            actor=self.actor,
            message=f"driver {self.driver_id} started",
            expected={JobState.QUEUED},
        )
        return True

    def _refresh_states(self) -> None:
        for row in shots_of_job(self.db, self.job_id):
            if self.states.get(row.pk) is not ShotState.RUNNING:
                self.states[row.pk] = ShotState(row.state)

    def _claim_driver_lease(self) -> None:
        """Become the job's driver. A killed driver's lease lapses after three missed heartbeats, so a
        resume started right after the kill waits that long; a driver that is still alive keeps the job."""
        stale_after = 3 * self.options.heartbeat_seconds
        deadline = time.monotonic() + stale_after + self.options.heartbeat_seconds
        announced = False
        while not transitions.claim_driver(self.db, self.job_id, self.driver_id, stale_after=stale_after):
            if time.monotonic() > deadline:
                raise UsageError(
                    f"job {self.job_id} is being driven by another live process; "
                    f"follow it with farm status {self.job_id} --watch, or stop it with farm cancel {self.job_id}"
                )
            if not announced:
                self.observe(EngineEvent("message", message="waiting for the previous driver's lease to lapse"))
                announced = True
            time.sleep(min(1.0, self.options.heartbeat_seconds))

    def _load_shots(self) -> None:
        """The job's tasks, kept in edit order (the query's order), which dispatch follows."""
        for row in shots_of_job(self.db, self.job_id):
            task = ShotTask.from_json(row.spec)
            self.tasks[row.pk] = task
            self.states[row.pk] = ShotState(row.state)
            self.pk_of[task.shot_id] = row.pk

    def _apply_cache(self) -> None:
        for pk, task in self.tasks.items():
            if self.states[pk] is ShotState.QUEUED:
                self._try_cache(pk, task)

    def _try_cache(self, pk: int, task: ShotTask) -> bool:
        artifact = find_artifact(self.db, task.cache_key, SHOT_VIDEO)
        if (
            artifact is None
            or not Path(artifact.path).is_file()
            or Path(artifact.path).stat().st_size != artifact.bytes
        ):
            return False
        if transitions.mark_cached(self.db, pk, artifact.id, actor=self.actor):
            self.states[pk] = ShotState.DONE
            self.observe(EngineEvent("cached", task.shot_id, 1.0, f"from cache {task.cache_key[:12]}"))
            return True
        return False

    def _start_workers(self) -> None:
        remaining: dict[str, int] = {}
        for pk, task in self.tasks.items():
            if self.states[pk] is ShotState.QUEUED:
                remaining[task.model] = remaining.get(task.model, 0) + 1
        for model, count in remaining.items():
            self.pool.ensure_workers(self._manifest(model), count)

    def _manifest(self, model: str) -> ModelManifest:
        return self.catalog.get(model)

    # ---- dispatch -------------------------------------------------------------------------------

    def _pending_shots(self) -> list[int]:
        return [pk for pk, state in self.states.items() if state in (ShotState.QUEUED, ShotState.RUNNING)]

    def _ready_shots(self) -> list[int]:
        ready = []
        for pk, task in self.tasks.items():
            if self.states[pk] is not ShotState.QUEUED:
                continue
            if task.continues is None:
                ready.append(pk)
                continue
            dependency = self.states[self.pk_of[task.continues]]
            if dependency is ShotState.DONE:
                ready.append(pk)
            elif dependency in (ShotState.FAILED, ShotState.CANCELLED):
                self._fail_unrenderable(pk, f"it continues shot {task.continues}, which is {dependency.value}")
        return ready

    def _dispatch_ready_shots(self) -> None:
        ready = self._ready_shots()
        for model in {self.tasks[pk].model for pk in ready}:
            if not self.pool.usable(model):
                for pk in [pk for pk in ready if self.tasks[pk].model == model]:
                    self._fail_unrenderable(pk, "no worker is left for it: every node was blocklisted")
        ready = [pk for pk in ready if self.states[pk] is ShotState.QUEUED]
        # Fill idle workers first; give a worker a second (prefetched) shot only when every idle one is busy.
        while ready:
            pk = ready[0]
            candidates = self.pool.available(self.tasks[pk].model)
            if not candidates:
                ready.pop(0)
                continue
            if self._try_cache(pk, self.tasks[pk]):
                ready.pop(0)
                continue
            worker = candidates[0]
            if worker.in_flight and len(ready) <= sum(1 for w in candidates if not w.in_flight):
                break
            ready.pop(0)
            self._dispatch(pk, worker)

    def _dispatch(self, pk: int, worker: PooledWorker) -> None:
        task = self.tasks[pk]
        try:
            image_ref, audio_ref, continuation_ref = self._inputs(task)
        except FarmError as exc:
            self._fail_unrenderable(pk, str(exc))
            return
        try:
            render_id = transitions.start_attempt(
                self.db, pk, worker=worker.name, node=worker.node, device=worker.identity.device, actor=self.actor
            )
        except LostRace:  # a cancel (or another driver) changed the shot since we last looked
            self._refresh_states()
            return
        self.states[pk] = ShotState.RUNNING
        manifest = self._manifest(task.model)
        params = dict(manifest.render_params)
        if pk in self.low_memory:
            params.update(manifest.low_memory)
        assignment = RenderAssignment(
            task=task,
            job_id=self.job_id,
            shot_pk=pk,
            render_id=render_id,
            attempt=self.errors.get(pk, 0) + self.crashes.get(pk, 0) + 1,
            params=params,
            low_memory=pk in self.low_memory,
        )
        ref = worker.actor.render.remote(assignment, image_ref, audio_ref, continuation_ref)
        worker.in_flight.add(render_id)
        self.in_flight[ref] = _InFlight(pk, render_id, worker, worker.identity.node_id)
        self.observe(EngineEvent("started", task.shot_id, 0.0, worker=f"{worker.name} on {worker.node}"))

    def _inputs(self, task: ShotTask) -> tuple[Any, Any, Any]:
        """Object-store refs for the portrait, the audio slice and the continuation frames.

        Inputs are re-read and checked against the digests taken at submit time: a portrait or a dialogue
        file edited since then would render something the cache key doesn't describe.
        """
        image_key = f"image:{task.reference_sha256}"
        if image_key not in self.media_refs:
            if file_sha256(task.reference_image) != task.reference_sha256:
                raise RenderError(
                    f"{task.reference_image} changed since the job was submitted; submit the shot list again"
                )
            self.media_refs[image_key] = ray.put(load_rgb(task.reference_image))
        samples = cut_audio(task.audio.path, task.audio.sample_range)
        if samples_digest(samples) != task.audio.sha256:
            raise RenderError(f"{task.audio.path} changed since the job was submitted; submit the shot list again")
        continuation = None
        if task.continues is not None:
            continuation = ray.put(self._last_frames_of(self.tasks[self.pk_of[task.continues]]))
        return self.media_refs[image_key], ray.put(samples), continuation

    def _last_frames_of(self, task: ShotTask) -> np.ndarray:
        artifact = find_artifact(self.db, task.cache_key, LAST_FRAMES)
        if artifact is not None and Path(artifact.path).is_file():
            return self.store.load_last_frames(Path(artifact.path))
        video = find_artifact(self.db, task.cache_key, SHOT_VIDEO)
        if video is None:
            raise RenderError(f"shot {task.shot_id} has no rendered video to continue from")
        count = self._manifest(task.model).continuation_frames
        tail: list[np.ndarray] = []
        for frame in read_frames(Path(video.path)):
            tail = [*tail[-(count - 1) :], frame] if count > 1 else [frame]
        return np.stack(tail)

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
        task = self.tasks[flight.shot_pk]
        gpus = self._manifest(task.model).resources.gpus
        finished = transitions.finish_attempt(
            self.db,
            flight.render_id,
            outcome=AttemptState.SUCCEEDED,
            shot_state=ShotState.DONE,
            actor=self.actor,
            artifacts=_artifacts_of(outcome),
            gpu_seconds=outcome.model_seconds * gpus,
            warnings=list(outcome.warnings),
        )
        self.node_failures[flight.node_id] = 0
        if finished:
            self.rendered += 1
            self.last_done_at = time.monotonic()
            self.states[flight.shot_pk] = ShotState.DONE
            message = "; ".join(outcome.warnings)
            self.observe(EngineEvent("done", task.shot_id, 1.0, message, worker=outcome.worker))

    def _record_failure(self, flight: _InFlight, failure: Failure) -> None:
        pk = flight.shot_pk
        task = self.tasks[pk]
        if failure.kind is FailureKind.CRASH and flight.worker in self.pool.workers:
            self.pool.mark_lost(flight.worker)
        next_state, attempt_state, note = self._decide(pk, failure)
        transitions.finish_attempt(
            self.db,
            flight.render_id,
            outcome=attempt_state,
            shot_state=next_state,
            actor=self.actor,
            error_class=failure.error_class,
            error_message=f"{failure.message} [{note}]" if note else failure.message,
        )
        self.states[pk] = next_state
        kind = {ShotState.QUEUED: "retry", ShotState.FAILED: "failed", ShotState.CANCELLED: "cancelled"}[next_state]
        self.observe(EngineEvent(kind, task.shot_id, 0.0, f"{failure.error_class}: {failure.message}; {note}"))
        if failure.kind is not FailureKind.CANCELLED:
            self._count_node_failure(flight.node_id, flight.worker.node)

    def _decide(self, pk: int, failure: Failure) -> tuple[ShotState, AttemptState, str]:
        """The shot's next state, the attempt's final state, and a message that counts down."""
        shot = self.tasks[pk].shot_id
        if failure.kind is FailureKind.CANCELLED or self.cancelling_since is not None:
            next_state = ShotState.CANCELLED if self._job_cancelled() else ShotState.QUEUED
            return next_state, AttemptState.CANCELLED, "stopped by the driver"
        if failure.kind is FailureKind.CRASH:
            self.crashes[pk] = self.crashes.get(pk, 0) + 1
            left = self.options.max_crashes - self.crashes[pk]
            if left < 0:
                return ShotState.FAILED, AttemptState.CRASHED, f"shot {shot} lost {self.crashes[pk]} workers; giving up"
            return ShotState.QUEUED, AttemptState.CRASHED, f"worker lost; shot {shot} will run again elsewhere"
        if failure.kind is FailureKind.OUT_OF_MEMORY and pk not in self.low_memory:
            self.low_memory.add(pk)
            return ShotState.QUEUED, AttemptState.FAILED, "out of memory; retrying with the low-memory settings"
        if failure.kind is FailureKind.REJECTED:
            return ShotState.FAILED, AttemptState.FAILED, f"shot {shot} cannot render with these inputs"
        self.errors[pk] = self.errors.get(pk, 0) + 1
        left = self.options.max_attempts - self.errors[pk]
        failures = f"shot {shot} failed {self.errors[pk]} time{'s' if self.errors[pk] > 1 else ''}"
        if left <= 0:
            return ShotState.FAILED, AttemptState.FAILED, f"{failures}; no attempts left"
        return (
            ShotState.QUEUED,
            AttemptState.FAILED,
            f"{failures}; {left} more failure{'s' if left > 1 else ''} will fail it",
        )

    def _count_node_failure(self, node_id: str, node_label: str) -> None:
        self.node_failures[node_id] = self.node_failures.get(node_id, 0) + 1
        if self.node_failures[node_id] < self.options.blocklist_after or node_id in self.pool.blocklisted_nodes:
            return
        removed = self.pool.blocklist(node_id)
        message = (
            f"node {node_label} ({node_id[:12]}) failed {self.node_failures[node_id]} shots in a row and is "
            f"blocklisted for job {self.job_id}; {len(removed)} worker(s) removed"
        )
        transitions.record_event(
            self.db, self.job_id, kind=transitions.EventKind.NODE_BLOCKLISTED, message=message, actor=self.actor
        )
        self.observe(EngineEvent("message", message=message))

    def _fail_unrenderable(self, pk: int, reason: str) -> None:
        transitions.fail_unrenderable(self.db, pk, actor=self.actor, reason=reason)
        self.states[pk] = ShotState.FAILED
        self.observe(EngineEvent("failed", self.tasks[pk].shot_id, 0.0, reason))

    # ---- progress, cancellation, end ------------------------------------------------------------

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
                    transitions.report_progress(self.db, render_id, fraction, phase)
                    shot = self.tasks[shot_of_render[render_id]].shot_id
                    self.observe(EngineEvent("progress", shot, fraction, phase))

    def _check_priority(self) -> None:
        """Give the cluster to higher-priority jobs at shot boundaries, and take it back when they end.

        Running shots finish (nothing is lost); this driver then dispatches nothing new and kills its idle
        workers so the other job's workers can start. Jobs of equal priority share the cluster.
        """
        stale_after = 3 * self.options.heartbeat_seconds
        higher = higher_priority_jobs(self.db, self.job_id, stale_after=stale_after)
        if higher and not self.yielding_to:
            listed = ", ".join(str(job) for job in higher)
            self.observe(
                EngineEvent("message", message=f"job {listed} has a higher priority: pausing job {self.job_id}")
            )
            transitions.record_event(
                self.db, self.job_id, kind=transitions.EventKind.JOB_DRIVER, actor=self.actor,
                message=f"paused for higher-priority job {listed}", data={"yielding_to": list(higher)},
            )  # fmt: skip
        elif self.yielding_to and not higher:
            self.observe(EngineEvent("message", message=f"job {self.job_id} resumes"))
            self._start_workers()
        self.yielding_to = higher

    def _job_cancelled(self) -> bool:
        return job_state(self.db, self.job_id) is JobState.CANCELLED

    def _check_job_cancelled(self) -> None:
        if self.cancelling_since is None and self._job_cancelled():
            self.observe(EngineEvent("message", message=f"job {self.job_id} was cancelled; stopping its renders"))
            self._stop_in_flight(cancel_job=True)
        elif (
            self.cancelling_since is not None
            and time.monotonic() - self.cancelling_since > self.options.cancel_grace_seconds
        ):
            for flight in list(self.in_flight.values()):
                ray.kill(flight.worker.actor, no_restart=False)

    def _stop_in_flight(self, *, cancel_job: bool) -> None:
        """Ask every busy worker to stop; on Ctrl-C wait for them so the job is left resumable."""
        self.cancelling_since = time.monotonic()
        for pk, state in self.states.items():
            if cancel_job and state is ShotState.QUEUED:
                self.states[pk] = ShotState.CANCELLED  # cancel_job already moved them in the database
        for flight in self.in_flight.values():
            flight.worker.actor.cancel.remote(flight.render_id)
        if not cancel_job:
            deadline = time.monotonic() + self.options.cancel_grace_seconds
            while self.in_flight and time.monotonic() < deadline:
                self._collect_results()
            for flight in list(self.in_flight.values()):
                transitions.finish_attempt(
                    self.db,
                    flight.render_id,
                    outcome=AttemptState.CANCELLED,
                    shot_state=ShotState.QUEUED,
                    actor=self.actor,
                    error_class="Interrupted",
                    error_message="the driver was interrupted",
                )
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

    def _done_fraction(self) -> float:
        return sum(state is ShotState.DONE for state in self.states.values()) / max(1, len(self.states))

    def _outcome_without_running(self) -> JobOutcome:
        self._load_shots()
        states = list(self.states.values())
        return JobOutcome(
            job_id=self.job_id,
            state=job_state(self.db, self.job_id),
            done=states.count(ShotState.DONE),
            failed=states.count(ShotState.FAILED),
            cancelled=states.count(ShotState.CANCELLED),
        )

    def _finish_job(self, interrupted: bool) -> JobOutcome:
        states = list(self.states.values())
        outcome = JobOutcome(
            job_id=self.job_id,
            state=JobState.RUNNING,
            cached=sum(1 for row in shots_of_job(self.db, self.job_id) if row.cached),
            rendered=self.rendered,
            done=states.count(ShotState.DONE),
            failed=states.count(ShotState.FAILED),
            cancelled=states.count(ShotState.CANCELLED),
            interrupted=interrupted,
        )
        if self._job_cancelled():
            outcome.state = JobState.CANCELLED
            return outcome
        if interrupted:
            target, message = JobState.QUEUED, "interrupted; resume with farm render --resume"
        elif outcome.failed:
            target, message = JobState.FAILED, f"{outcome.failed} shot(s) failed"
        else:
            target, message = JobState.DONE, f"{outcome.done} shots done"
        transitions.transition_job(self.db, self.job_id, target, actor=self.actor, message=message)
        outcome.state = target
        return outcome


def _artifacts_of(outcome: RenderOutcome) -> list[transitions.ArtifactRecord]:
    """The shot's video first (it becomes the shot's artifact), then its continuation frames."""
    return [
        transitions.ArtifactRecord(
            cache_key=outcome.cache_key,
            kind=SHOT_VIDEO,
            path=outcome.video_path,
            bytes=outcome.video_bytes,
            sha256=outcome.video_sha256,
            frames=outcome.frames,
            duration=outcome.duration,
        ),
        transitions.ArtifactRecord(
            cache_key=outcome.cache_key,
            kind=LAST_FRAMES,
            path=outcome.last_frames_path,
            bytes=outcome.last_frames_bytes,
            sha256=outcome.last_frames_sha256,
        ),
    ]
