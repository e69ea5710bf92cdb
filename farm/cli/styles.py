"""The terminal's colours for farm's words, one map each, so every command colours a state the same way."""

from __future__ import annotations

from farm.jobs import EngineEventKind

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

VERDICT_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}

ENGINE_EVENT_STYLES = {
    EngineEventKind.DONE: "green",
    EngineEventKind.CACHED: "cyan",
    EngineEventKind.FAILED: "bold red",
    EngineEventKind.CANCELLED: "yellow",
    EngineEventKind.RETRY: "yellow",
}
