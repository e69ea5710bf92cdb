"""The worker pool: one resident RenderWorker actor per slot, created from the model manifest's needs.

The pool knows which actors are ready, which node each runs on, how many calls each has in flight, and
which nodes are blocklisted. Actors restart on their own after a crash (``max_restarts=-1``) and reload
the model; the scheduler decides every retry of a shot (``max_task_retries=0``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from farm.catalog import ModelManifest
from farm.engine.messages import WorkerIdentity, WorkerSnapshot
from farm.engine.worker import RenderWorker
from farm.errors import UsageError

PREFETCH_DEPTH = 2
"""Calls in flight per worker: one rendering, one whose inputs are being fetched behind it."""


@dataclass
class PooledWorker:
    name: str
    model: str
    actor: Any
    ready_ref: Any = None
    """A pending identity() call; the worker takes shots once it returns."""
    identity: WorkerIdentity | None = None
    in_flight: set[int] = field(default_factory=set)
    """Render ids assigned to this worker and not yet finished."""
    draining: bool = False
    """Takes no new shot: its slot goes to a model whose shots rank higher once its current shot ends."""
    created_at: float = field(default_factory=time.monotonic)
    busy_seconds: float = 0.0
    """Time with at least one render in flight, up to ``busy_since`` (the farm's busy fraction, /metrics)."""
    busy_since: float | None = None
    renders_done: int = 0

    def assign(self, render_id: int, now: float) -> None:
        if not self.in_flight:
            self.busy_since = now
        self.in_flight.add(render_id)

    def release(self, render_id: int, now: float) -> None:
        if render_id not in self.in_flight:
            return
        self.in_flight.discard(render_id)
        self.renders_done += 1
        if not self.in_flight and self.busy_since is not None:
            self.busy_seconds += now - self.busy_since
            self.busy_since = None

    def snapshot(self, now: float) -> WorkerSnapshot:
        busy = self.busy_seconds + (now - self.busy_since if self.busy_since is not None else 0.0)
        alive = max(now - self.created_at, 1e-9)
        return WorkerSnapshot(
            name=self.name,
            model=self.model,
            node=self.identity.node_label if self.identity else None,
            ready=self.ready,
            busy=bool(self.in_flight),
            busy_seconds=busy,
            busy_fraction=min(busy / alive, 1.0),
            renders_done=self.renders_done,
        )

    @property
    def ready(self) -> bool:
        return self.identity is not None

    @property
    def node_id(self) -> str | None:
        """Ray's id of the node the actor runs on; None while it starts (or restarts, maybe elsewhere)."""
        return self.identity.node_id if self.identity else None


class WorkerPool:
    def __init__(self, artifacts_root: str, *, max_workers_per_model: int | None = None) -> None:
        self.artifacts_root = artifacts_root
        self.max_workers_per_model = max_workers_per_model
        self.workers: list[PooledWorker] = []
        self.blocklisted_nodes: set[str] = set()

    def ensure_workers(self, manifest: ModelManifest, wanted: int) -> list[PooledWorker]:
        """Create actors for ``manifest`` up to ``wanted`` and the slots the cluster has."""
        existing = [w for w in self.workers if w.model == manifest.name]
        target = min(wanted, slots_for(manifest, ray.cluster_resources()), self.max_workers_per_model or wanted)
        if target < 1:
            raise UsageError(
                f"the Ray cluster has no slot for model '{manifest.name}' "
                f"(it needs {manifest.resources.gpus:g} GPU and {manifest.resources.cpus:g} CPU per worker; "
                f"the cluster has {ray.cluster_resources()}); start GPU nodes or render with --quality preview"
            )
        for index in range(len(existing), target):
            worker = self._create(manifest, index)
            existing.append(worker)
            self.workers.append(worker)
        return existing

    def _create(self, manifest: ModelManifest, index: int) -> PooledWorker:
        resources = manifest.resources
        remote = ray.remote(RenderWorker).options(
            num_gpus=resources.gpus,
            num_cpus=resources.cpus,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=PREFETCH_DEPTH + 2,
            scheduling_strategy="SPREAD",
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(max(1, math.floor(resources.cpus)))}},
        )
        name = f"{manifest.name}-{index}"
        actor = remote.remote(manifest, self.artifacts_root, name)
        return PooledWorker(name=name, model=manifest.name, actor=actor, ready_ref=actor.identity.remote())

    def poll_readiness(self) -> list[PooledWorker]:
        """Workers that became ready since the last poll (their identity() call returned)."""
        pending = {w.ready_ref: w for w in self.workers if w.ready_ref is not None}
        if not pending:
            return []
        done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        became_ready = []
        for ref in done:
            worker = pending[ref]
            worker.ready_ref = None
            try:
                worker.identity = ray.get(ref)
            except ray.exceptions.RayError:
                worker.ready_ref = worker.actor.identity.remote()  # restarting: ask again
                continue
            became_ready.append(worker)
        return became_ready

    def mark_lost(self, worker: PooledWorker) -> None:
        """The actor died mid-call; it restarts by itself (maybe on another node): wait for it again."""
        worker.identity = None
        worker.ready_ref = worker.actor.identity.remote()

    def available(self, model: str) -> list[PooledWorker]:
        """Ready, not blocklisted workers of ``model`` with room for another call, least loaded first."""
        candidates = [
            w
            for w in self.workers
            if w.model == model
            and w.ready
            and w.node_id not in self.blocklisted_nodes
            and len(w.in_flight) < PREFETCH_DEPTH
            and not w.draining
        ]
        return sorted(candidates, key=lambda w: len(w.in_flight))

    def usable(self, model: str) -> list[PooledWorker]:
        """Workers of ``model`` that are not on a blocklisted node (ready or still starting)."""
        return [w for w in self.workers if w.model == model and w.node_id not in self.blocklisted_nodes]

    def blocklist(self, node_id: str) -> list[PooledWorker]:
        """Take a node out of rotation; its actors are killed and not replaced. Returns them."""
        self.blocklisted_nodes.add(node_id)
        removed = [w for w in self.workers if w.node_id == node_id]
        for worker in removed:
            ray.kill(worker.actor, no_restart=True)
            self.workers.remove(worker)
        return removed

    def idle(self) -> list[PooledWorker]:
        """Ready workers with nothing in flight."""
        return [w for w in self.workers if w.ready and not w.in_flight]

    def release(self, workers: list[PooledWorker]) -> list[PooledWorker]:
        """Kill ``workers`` (idle ones), freeing their slots for another model or job. Returns them."""
        for worker in workers:
            ray.kill(worker.actor, no_restart=True)
            self.workers.remove(worker)
        return workers

    def shutdown(self) -> None:
        for worker in self.workers:
            ray.kill(worker.actor, no_restart=True)
        self.workers.clear()


def slots_for(manifest: ModelManifest, cluster: dict[str, float]) -> int:
    """How many workers of this model fit the cluster: per GPU for GPU models, per CPU slot otherwise."""
    resources = manifest.resources
    if resources.gpus > 0:
        return int(cluster.get("GPU", 0) // resources.gpus)
    return int(cluster.get("CPU", 0) // max(resources.cpus, 0.001))
