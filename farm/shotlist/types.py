"""The shot list as typed, validated data: what every later layer (planning, rendering, assembly) reads."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from farm import defaults
from farm.catalog import Quality


class CameraMove(enum.StrEnum):
    STATIC = "static"
    PUSH_IN = "push_in"
    PUSH_OUT = "push_out"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    CRANE_UP = "crane_up"
    CRANE_DOWN = "crane_down"
    SWING = "swing"


class CheckPolicy(enum.StrEnum):
    WARN = "warn"
    FAIL = "fail"
    RETAKE = "retake"


@dataclass(frozen=True)
class OutputSpec:
    fps: Fraction
    width: int
    height: int


@dataclass(frozen=True)
class RenderSettings:
    """Settings a shot may override; ``None`` means "inherit" (from defaults, then from the model)."""

    model: str | None = None
    preview_model: str | None = None
    quality: Quality | None = None
    steps: int | None = None
    seed: int | None = None
    text_guidance: float | None = None
    audio_guidance: float | None = None

    def overlaid_with(self, other: RenderSettings) -> RenderSettings:
        """These settings with every field ``other`` sets replaced by ``other``'s value."""
        merged = {
            name: getattr(other, name) if getattr(other, name) is not None else getattr(self, name)
            for name in self.__dataclass_fields__
        }
        return RenderSettings(**merged)


@dataclass(frozen=True)
class Character:
    id: str
    image: Path
    description: str = ""
    person: str = ""
    """The person this character is a look of; the identity check groups characters by it. Empty: the id."""

    @property
    def person_id(self) -> str:
        return self.person or self.id


@dataclass(frozen=True)
class AudioTrack:
    id: str
    file: Path
    description: str = ""


@dataclass(frozen=True)
class AudioCut:
    """A span of a dialogue track, in exact seconds; ``end`` is exclusive."""

    track: str
    start: Fraction
    end: Fraction

    @property
    def duration(self) -> Fraction:
        return self.end - self.start


@dataclass(frozen=True)
class CameraSpec:
    move: CameraMove = CameraMove.STATIC
    intensity: float = defaults.CAMERA_INTENSITY


@dataclass(frozen=True)
class CheckConfig:
    enabled: bool = True
    threshold: float | None = None
    policy: CheckPolicy | None = None


@dataclass(frozen=True)
class ContinuityConfig:
    max_retakes: int = defaults.MAX_RETAKES
    checks: dict[str, CheckConfig] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "max_retakes": self.max_retakes,
            "checks": {
                name: {
                    "enabled": check.enabled,
                    "threshold": check.threshold,
                    "policy": check.policy.value if check.policy else None,
                }
                for name, check in self.checks.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContinuityConfig:
        """The inverse of ``to_json``: how a job's stored settings come back for its assembly."""
        checks = {
            name: CheckConfig(
                enabled=entry.get("enabled", True),
                threshold=entry.get("threshold"),
                policy=CheckPolicy(entry["policy"]) if entry.get("policy") else None,
            )
            for name, entry in data.get("checks", {}).items()
        }
        return cls(max_retakes=data.get("max_retakes", defaults.MAX_RETAKES), checks=checks)


@dataclass(frozen=True)
class Shot:
    id: str
    scene_id: str
    character: str
    audio: AudioCut
    prompt: str
    negative_prompt: str = ""
    camera: CameraSpec = CameraSpec()
    continues: str | None = None
    overrides: RenderSettings = RenderSettings()
    notes: str = ""
    line: int = 0


@dataclass(frozen=True)
class Scene:
    id: str
    shots: tuple[Shot, ...]
    description: str = ""


@dataclass(frozen=True)
class ShotList:
    """A validated shot list. Media paths are absolute and known to lie inside ``root``."""

    path: Path
    root: Path
    version: int
    project: str
    episode: str
    output: OutputSpec
    defaults: RenderSettings
    characters: dict[str, Character]
    audio_tracks: dict[str, AudioTrack]
    scenes: tuple[Scene, ...]
    continuity: ContinuityConfig = ContinuityConfig()

    @property
    def shots(self) -> tuple[Shot, ...]:
        """Every shot in edit order."""
        return tuple(shot for scene in self.scenes for shot in scene.shots)
