"""The shot list as typed, validated data: what every later layer (planning, rendering, assembly) reads."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from farm import defaults
from farm.catalog import Quality
from farm.media.framing import Crop


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


class UnmeasuredPolicy(enum.StrEnum):
    """What a check that could not measure what must be there (a face) reports: never a silent skip."""

    WARN = "warn"
    FAIL = "fail"


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
    face_hint: tuple[float, float] | None = None
    """``face: {x, y}``: frame the face at (or nearest) this point, in fractions of the portrait."""
    is_person: bool = True
    """False for ``face: none``: the portrait shows no person, so it is centre-framed and no face is checked."""
    crop: Crop | None = None
    """An explicit crop in portrait pixels; it wins over framing from the face."""

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
    slip: int = 0
    """Frames the audio is shifted against the picture when laid into the edit (+: sound late). It does
    not change what is rendered, so it is not in the cache key."""

    @property
    def duration(self) -> Fraction:
        return self.end - self.start


class TwoShotLayout(enum.StrEnum):
    """How a two-shot puts its two characters in frame."""

    SIDE_BY_SIDE = "side_by_side"
    OVER_THE_SHOULDER = "over_the_shoulder"


Region = tuple[float, float, float, float]
"""(left, top, right, bottom) as fractions of the frame, 0..1."""

LAYOUT_FACES: dict[TwoShotLayout, tuple[Region, Region]] = {
    TwoShotLayout.SIDE_BY_SIDE: ((0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)),
    TwoShotLayout.OVER_THE_SHOULDER: ((0.0, 0.3, 0.45, 1.0), (0.55, 0.0, 1.0, 0.7)),
}
"""Each layout's face regions, first speaker first. Over the shoulder: the first speaker large in the
near corner (its shoulder toward camera), the second further back on the other side, facing camera."""


def regions_overlap(a: Region, b: Region) -> bool:
    """Whether two regions share any area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class TwoShot:
    """The second character of a two-shot, with its own dialogue cut (as long as the shot's)."""

    character: str
    audio: AudioCut
    layout: TwoShotLayout = TwoShotLayout.SIDE_BY_SIDE
    faces: tuple[Region, Region] = LAYOUT_FACES[TwoShotLayout.SIDE_BY_SIDE]
    """The first and second speaker's face regions: the layout's unless the shot list gives them."""


@dataclass(frozen=True)
class CameraSpec:
    move: CameraMove = CameraMove.STATIC
    intensity: float = defaults.CAMERA_INTENSITY


CHECK_LIMITS = ("max_lead_ms", "max_lag_ms", "min_correlation")
"""The named thresholds a check entry may carry besides ``threshold`` (see CheckConfig.limits)."""


@dataclass(frozen=True)
class CheckConfig:
    enabled: bool = True
    threshold: float | None = None
    policy: CheckPolicy | None = None
    unmeasured: UnmeasuredPolicy | None = None
    """The verdict when the check cannot measure (no face found); None: warn."""
    limits: dict[str, float] = field(default_factory=dict)
    """A check's own named thresholds where one number is not enough (lip_sync: max_lead_ms, max_lag_ms,
    min_correlation); the check supplies defaults for the ones not given."""


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
                    "unmeasured": check.unmeasured.value if check.unmeasured else None,
                    **check.limits,
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
                unmeasured=UnmeasuredPolicy(entry["unmeasured"]) if entry.get("unmeasured") else None,
                limits={key: float(entry[key]) for key in CHECK_LIMITS if entry.get(key) is not None},
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
    two_shot: TwoShot | None = None
    """A second character in frame with its own dialogue; None for a single-character shot."""


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
