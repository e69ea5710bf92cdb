"""The terminal's colours for farm's words, one map each, so every command colours a state the same way."""

from __future__ import annotations

from farm.jobs import EngineEventKind, ProducerStatus

STATE_STYLES = {
    "queued": "cyan",
    "rendering": "yellow",
    "running": "yellow",
    "assembling": "magenta",
    "checking": "magenta",
    "retaking": "yellow",
    "done": "green",
    "succeeded": "green",
    "failed": "bold red",
    "crashed": "red",
    "cancelled": "dim",
}
"""Job, shot and attempt states (the three vocabularies share their words)."""

PRODUCER_STYLES = {
    ProducerStatus.TODO: "dim",
    ProducerStatus.READY: "cyan",
    ProducerStatus.RENDERING: "yellow",
    ProducerStatus.WAITING_FOR_APPROVAL: "bold blue",
    ProducerStatus.RETAKE: "bold red",
    ProducerStatus.DONE: "bold green",
}
PRODUCER_LABELS = {
    ProducerStatus.TODO: "todo",
    ProducerStatus.READY: "ready",
    ProducerStatus.RENDERING: "rendering",
    ProducerStatus.WAITING_FOR_APPROVAL: "waiting approval",
    ProducerStatus.RETAKE: "retake",
    ProducerStatus.DONE: "approved",
}
"""The producer's statuses as the job list prints them ("wfa" is Kitsu's short name; people read the long one)."""

VERDICT_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}

ENGINE_EVENT_STYLES = {
    EngineEventKind.DONE: "green",
    EngineEventKind.CACHED: "cyan",
    EngineEventKind.FAILED: "bold red",
    EngineEventKind.CANCELLED: "yellow",
    EngineEventKind.RETRY: "yellow",
}
