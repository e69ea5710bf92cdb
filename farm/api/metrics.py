"""``GET /metrics``: the farm in Prometheus' text format (prometheus-client), for Grafana and alerting.

Built at scrape time from ``Farm.stats()`` (the database: queue by show, model and state, GPU time, cache
hits, attempts, failures, retakes) and ``Farm.workers()`` (this manager's resident workers), so a scrape
always agrees with ``farm status`` and survives restarts. Unauthenticated like ``/api/health``: it holds
counts, never names of files or people, and scrapers rarely carry tokens; put it behind the cluster's
network policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from farm.api.context import FarmDep
from farm.jobs import Farm

router = APIRouter(tags=["monitoring"])


class FarmCollector(Collector):
    """Every farm metric, read fresh on each ``collect`` (one database snapshot per scrape)."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def collect(self) -> Iterator[Metric]:
        stats = self.farm.stats()
        hits: dict[tuple[str, str], int] = {}
        for tally in stats.shots:
            hits[tally.show, tally.model] = hits.get((tally.show, tally.model), 0) + tally.cached
        retries = sum(count for state, count in stats.attempts.items() if state in ("failed", "crashed"))
        workers = self.farm.workers()
        by_state: dict[tuple[str, str], int] = {}
        for worker in workers:
            key = (worker.model, "busy" if worker.busy else "idle" if worker.ready else "starting")
            by_state[key] = by_state.get(key, 0) + 1
        gauge, counter = GaugeMetricFamily, CounterMetricFamily
        yield _family(gauge, "farm_jobs", "Jobs by state.", ["state"],
                      [((str(state),), count) for state, count in stats.jobs.items()])  # fmt: skip
        yield _family(gauge, "farm_shots", "Shots by show, model and state.", ["show", "model", "state"],
                      [((t.show, t.model, str(t.state)), t.shots) for t in stats.shots])  # fmt: skip
        yield _family(counter, "farm_cache_hits", "Shots served from the artifact cache.", ["show", "model"],
                      list(hits.items()))  # fmt: skip
        yield _family(counter, "farm_gpu_seconds", "GPU time of every attempt, by model.", ["model"],
                      [((m.model,), m.gpu_seconds) for m in stats.models])  # fmt: skip
        yield _family(counter, "farm_frames_rendered", "Frames rendered (not cached), by model.", ["model"],
                      [((m.model,), m.frames_rendered) for m in stats.models])  # fmt: skip
        yield _family(gauge, "farm_gpu_seconds_per_frame", "GPU-seconds per frame of the shots a model rendered.",
                      ["model"], [((m.model,), m.rendered_gpu_seconds / m.frames_rendered)
                                  for m in stats.models if m.frames_rendered])  # fmt: skip
        yield _family(counter, "farm_attempts", "Render attempts by outcome.", ["state"],
                      [((str(state),), count) for state, count in stats.attempts.items()])  # fmt: skip
        yield _family(counter, "farm_retries", "Attempts that failed or crashed (retried or not).", [],
                      [((), retries)])  # fmt: skip
        yield _family(counter, "farm_failures", "Failed and crashed attempts by error class.", ["error_class"],
                      [((name,), count) for name, count in stats.failures.items()])  # fmt: skip
        yield _family(counter, "farm_retakes", "Shots sent back with a new recipe.", [],
                      [((), stats.retakes)])  # fmt: skip
        yield _family(gauge, "farm_notifications", "Notifications by channel and delivery state.",
                      ["channel", "state"], list(stats.notifications.items()))  # fmt: skip
        yield _family(gauge, "farm_workers", "This manager's resident workers by model and state.",
                      ["model", "state"], list(by_state.items()))  # fmt: skip
        yield _family(gauge, "farm_worker_busy_fraction", "Time a worker had a render in flight, over its life.",
                      ["worker", "model"], [((w.name, w.model), w.busy_fraction) for w in workers])  # fmt: skip


def _family(
    kind: Any, name: str, documentation: str, labels: list[str], samples: list[tuple[tuple[str, ...], float]]
) -> Metric:
    family = kind(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), float(value))
    return family


@router.get("/metrics", summary="The farm's metrics in Prometheus' text format", response_class=Response)
def metrics(farm: FarmDep) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(farm))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
