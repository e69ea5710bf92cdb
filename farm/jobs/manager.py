"""The farm manager: one long-running process that owns the queue and drives every job on the cluster.

``farm serve`` runs a ``Manager``. It first becomes the farm's manager (a lease in the database: a
second ``farm serve`` stands by and takes over within seconds of the first dying, never running
alongside it), then joins Ray and loops: take every job no live process drives (a new submission, a
retry, a job a dead driver left), render all of them on one ``Scheduler`` with shared workers, make each
job's edit when its shots are done (in a thread, so rendering goes on), render its retakes, and hold a
show's jobs back when its GPU-hour budget is spent. ``kill -9`` loses nothing: the next manager recovers
the attempts that were running and re-renders no shot that is done.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from farm import defaults
from farm.db import lease
from farm.db.claims import renew_driven_claims
from farm.db.queries import job_state
from farm.db.queue import hold_job, job_heads, jobs_needing_a_driver, show_gpu_seconds, show_limits
from farm.db.session import Database
from farm.db.states import FINISHED_JOB_STATES, RENDERABLE_JOB_STATES, JobState
from farm.engine.cluster import RayUnreachable, connect_ray
from farm.engine.messages import EngineEvent, EngineEventKind, Observer, ignore_events
from farm.engine.policy import EngineOptions
from farm.engine.scheduler import Scheduler
from farm.jobs.debris import recover_lost_attempts, sweep_on_start
from farm.jobs.edit import JobEdit, assemble_job
from farm.jobs.lease import driver_name
from farm.jobs.retake import apply_retakes
from farm.jobs.run import new_scheduler
from farm.notify.notifier import Notifier, NotifierOptions
from farm.settings import Settings


@dataclass(frozen=True)
class ManagerOptions:
    """The manager's clocks (the scheduler's are in ``EngineOptions``)."""

    poll_seconds: float = defaults.MANAGER_POLL_SECONDS
    """How often it looks for jobs submitted by another process."""
    budget_seconds: float = 5.0
    """How often it compares each show's GPU hours with its budget."""
    ray_retry_seconds: float = 5.0
    """How long it waits before trying an unreachable Ray head again."""
    loudness_lufs: float = defaults.LOUDNESS_LUFS
    notify: NotifierOptions = field(default_factory=NotifierOptions)
    """The notifier's clocks and retries (it runs beside the scheduler while this manager manages)."""


class Manager:
    """``Manager(db, settings).run(stop)``: manage the farm until ``stop`` is set (or another manager takes over)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        engine: EngineOptions | None = None,
        options: ManagerOptions | None = None,
        observer: Observer | None = None,
        api_url: str | None = None,
        new_work: threading.Event | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.engine = replace(engine or EngineOptions(), yield_to_other_drivers=False)
        self.options = options or ManagerOptions()
        self.observe = observer or ignore_events
        self.api_url = api_url
        self.new_work = new_work or threading.Event()
        """Set by a submit in this process (the API), so the job is picked up at once rather than next poll."""
        self.by = driver_name("manager")
        self.holder = f"{self.by}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        """This process's name in every lease it holds (the farm's and its jobs')."""
        self.scheduler: Scheduler | None = None
        self.driving: set[int] = set()
        self.lost = threading.Event()
        """Another manager took the farm over (this one was paused too long): stop without writing."""
        self._edits = ThreadPoolExecutor(max_workers=1, thread_name_prefix="farm-edit")
        self._editing: dict[int, Future[JobEdit]] = {}
        self._retakes: dict[int, dict[str, int]] = {}
        self._clocks = {"poll": 0.0, "budget": 0.0}

    # ---- the whole life -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        # Ray first: a standby is joined already when the manager dies, so it takes over in seconds.
        if not self._join_ray(stop) or not self._become_manager(stop):
            return
        beats = threading.Thread(target=self._beat, args=(stop,), name="farm-manager-lease", daemon=True)
        beats.start()
        notices = threading.Thread(target=self._notify, args=(stop,), name="farm-notifier", daemon=True)
        notices.start()
        try:
            sweep_on_start(self.db, self.settings, self.observe, by=self.holder)
            self.scheduler = new_scheduler(self.db, self.settings, self.engine, self.observe, self.holder)
            self._say(f"managing the farm as {self.holder}" + (f"; API at {self.api_url}" if self.api_url else ""))
            while not stop.is_set() and not self.lost.is_set():
                self._turn()
        finally:
            self._stop()
            stop.set()
            beats.join()
            notices.join()

    def _turn(self) -> None:
        now = time.monotonic()
        if self.new_work.is_set() or now - self._clocks["poll"] >= self.options.poll_seconds:
            self.new_work.clear()
            self._clocks["poll"] = now
            self._take_new_jobs()
        if now - self._clocks["budget"] >= self.options.budget_seconds:
            self._clocks["budget"] = now
            self._check_budgets()
        assert self.scheduler is not None
        self.scheduler.step()
        self._after_rendering()
        self._after_edits()

    def _become_manager(self, stop: threading.Event) -> bool:
        """Claim the farm's lease, standing by while another live manager holds it."""
        announced = False
        while not stop.is_set():
            stale = self.engine.stale_after_seconds
            if lease.claim_manager(self.db, self.holder, stale_after=stale, api_url=self.api_url):
                return True
            if not announced:
                current = lease.current_manager(self.db)
                holder = current.holder if current else "another farm serve"
                self._say(f"standing by: {holder} manages the farm; this one takes over if it stops")
                announced = True
            stop.wait(min(1.0, self.engine.heartbeat_seconds))
        return False

    def _join_ray(self, stop: threading.Event) -> bool:
        """Connect to Ray, retrying an unreachable head with a clear message (never a silent hang)."""
        while not stop.is_set() and not self.lost.is_set():
            try:
                connect_ray(self.settings.ray_address)
                return True
            except RayUnreachable as exc:
                self._say(f"{exc}; trying again in {self.options.ray_retry_seconds:g} s")
                stop.wait(self.options.ray_retry_seconds)
        return False

    def _beat(self, stop: threading.Event) -> None:
        """Renew the farm's lease, every driven job's lease and its running attempts' key claims; notice a
        takeover and stop at once."""
        while not stop.wait(self.engine.heartbeat_seconds):
            try:
                if not lease.renew_manager(self.db, self.holder):
                    self._say("another manager took the farm over; stopping")
                    self.lost.set()
                    return
                lease.heartbeat_jobs(self.db, self.holder)
                renew_driven_claims(self.db, self.holder, lease_seconds=self.engine.stale_after_seconds)
            except Exception as exc:  # a database blip: the next beat tries again; the lease outlives a few
                self._say(f"lease renewal failed ({type(exc).__name__}: {exc}); retrying")

    def _notify(self, stop: threading.Event) -> None:
        """Send the config file's notifications while this manager manages (none configured: nothing to do).
        Its own thread: a receiver that answers slowly never delays a dispatch."""
        notifier = Notifier(self.db, self.settings, self.options.notify)
        if not notifier.configured:
            return
        while not stop.wait(self.options.notify.poll_seconds) and not self.lost.is_set():
            try:
                notifier.step()
            except Exception as exc:  # a database blip: the next round tries again, nothing is lost
                self._say(f"notifications: {type(exc).__name__}: {exc}; retrying")

    def _stop(self) -> None:
        """A clean stop: running renders end (their shots queued again), edits finish, leases are given up."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            if not self.lost.is_set():
                scheduler.stop_all("the manager stopped; the next farm serve resumes it")
            scheduler.shutdown()
        self._edits.shutdown(wait=True)
        if self.lost.is_set():
            return
        for job_id in sorted(self.driving):
            lease.release_driver(self.db, job_id, self.holder)
        self.driving.clear()
        lease.release_manager(self.db, self.holder)

    # ---- taking jobs ------------------------------------------------------------------------------------

    def _take_new_jobs(self) -> None:
        waiting = jobs_needing_a_driver(self.db, driver_id=self.holder, stale_after=self.engine.stale_after_seconds)
        taken = False
        for job_id in waiting:
            if job_id in self.driving:
                continue
            if not lease.claim_driver(self.db, job_id, self.holder, stale_after=self.engine.stale_after_seconds):
                continue  # another process claimed it first
            self.driving.add(job_id)
            recovered = recover_lost_attempts(
                self.db,
                job_id,
                self.settings.artifacts_dir,
                by=self.holder,
                lease_seconds=self.engine.stale_after_seconds,
            )
            if recovered:
                self._say(f"job {job_id}: recovered {recovered} shot(s) from a lost driver")
            self._drive(job_id)
            taken = True
        if taken and self.scheduler is not None:
            self.scheduler.start_workers()  # once for the whole batch, in its ranking's order

    def _drive(self, job_id: int) -> None:
        """Send the job to the phase it is in: render its shots, make its edit, or let it go."""
        assert self.scheduler is not None
        state = job_state(self.db, job_id)
        if state in RENDERABLE_JOB_STATES:
            self._say(f"job {job_id}: rendering")
            self.scheduler.add_job(job_id, start_workers=False)
        elif state in (JobState.ASSEMBLING, JobState.CHECKING):
            self._start_edit(job_id)
        else:
            self._let_go(job_id)

    def _let_go(self, job_id: int) -> None:
        self.driving.discard(job_id)
        self._retakes.pop(job_id, None)
        lease.release_driver(self.db, job_id, self.holder)

    def _after_rendering(self) -> None:
        assert self.scheduler is not None
        finished, self.scheduler.finished = self.scheduler.finished, []
        for outcome in finished:
            if outcome.job_id not in self.driving:
                continue
            state = job_state(self.db, outcome.job_id)
            if state in (JobState.ASSEMBLING, JobState.CHECKING):
                self._start_edit(outcome.job_id)
            elif state in RENDERABLE_JOB_STATES and not outcome.interrupted:
                self.scheduler.add_job(outcome.job_id)  # queued again meanwhile (a retry)
            else:
                self._say(f"job {outcome.job_id}: {state}")
                self._let_go(outcome.job_id)

    # ---- edits ------------------------------------------------------------------------------------------

    def _start_edit(self, job_id: int) -> None:
        if job_id in self._editing:
            return
        self._say(f"job {job_id}: assembling its edit")
        retakes = dict(self._retakes.get(job_id, {}))
        self._editing[job_id] = self._edits.submit(self._edit, job_id, retakes)

    def _edit(self, job_id: int, retakes: Mapping[str, int]) -> JobEdit:
        edit = assemble_job(
            self.db,
            self.settings,
            job_id,
            loudness_lufs=self.options.loudness_lufs,
            retake_attempts=retakes,
            reuse=True,
            by=self.holder,
        )
        if edit.retakes:
            apply_retakes(self.db, self.settings, job_id, edit.retakes, by=self.holder)
        return edit

    def _after_edits(self) -> None:
        for job_id, future in list(self._editing.items()):
            if not future.done():
                continue
            del self._editing[job_id]
            try:
                edit = future.result()
            except Exception as exc:  # the job keeps its state; a retry or the next manager tries again
                self._say(f"job {job_id}: its edit could not be made ({type(exc).__name__}: {exc})")
                self._let_go(job_id)
                continue
            retaken = edit.retakes
            self._retakes.setdefault(job_id, {}).update({retake.shot_id: retake.attempt for retake in retaken})
            self._say(f"job {job_id}: edit v{edit.version}, continuity {edit.verdict}")
            state = job_state(self.db, job_id)
            if state in RENDERABLE_JOB_STATES and self.scheduler is not None:
                self.scheduler.add_job(job_id)
            elif state in FINISHED_JOB_STATES or state not in RENDERABLE_JOB_STATES:
                self._let_go(job_id)

    # ---- budgets ----------------------------------------------------------------------------------------

    def _check_budgets(self) -> None:
        """Hold the jobs of a show that has spent its GPU-hour budget; let them go once it is raised."""
        heads = job_heads(self.db, self.driving)
        if not heads:
            return
        limits = show_limits(self.db)
        budgeted = {
            head.show
            for head in heads.values()
            if limits.get(head.show) and limits[head.show].gpu_hour_budget is not None
        }
        used = show_gpu_seconds(self.db, budgeted)
        for head in heads.values():
            reason = None
            if head.show in budgeted:
                budget = limits[head.show].gpu_hour_budget or 0.0
                hours = used.get(head.show, 0.0) / 3600
                if hours >= budget:
                    reason = (
                        f"show {head.show} has spent its GPU-hour budget ({hours:.2f} of {budget:g} h); "
                        f"raise it with farm show {head.show} --gpu-hour-budget HOURS"
                    )
            if reason != head.hold_reason and head.state not in FINISHED_JOB_STATES:
                hold_job(self.db, head.job_id, reason, by=self.holder)
                if self.scheduler is not None:
                    self.scheduler.set_held(head.job_id, reason is not None)
                self._say(
                    f"job {head.job_id}: " + (f"held: {reason}" if reason else "released: its show has budget again")
                )

    def _say(self, message: str) -> None:
        self.observe(EngineEvent(EngineEventKind.MESSAGE, message=message))
