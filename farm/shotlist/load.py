"""Read a shot list: YAML with positions -> JSON Schema -> semantic checks -> a typed ShotList."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from farm import defaults
from farm.catalog import ModelCatalog, Quality
from farm.collector import collector_paused
from farm.errors import Finding, ShotListError
from farm.media.framing import Crop
from farm.paths import display_path
from farm.shotlist.schema_check import schema_findings
from farm.shotlist.semantic import (
    SemanticContext,
    parse_intensity,
    resolve_media_path,
    semantic_findings,
)
from farm.shotlist.timecode import parse_frame_rate, parse_timecode
from farm.shotlist.types import (
    LAYOUT_FACES,
    AudioCut,
    AudioTrack,
    CameraMove,
    CameraSpec,
    Character,
    ContinuityConfig,
    OutputSpec,
    RenderSettings,
    Scene,
    Shot,
    ShotList,
    TwoShot,
    TwoShotLayout,
)
from farm.shotlist.yaml_source import LocatedDocument, load_located_yaml


@dataclass(frozen=True)
class ValidationReport:
    path: Path
    findings: tuple[Finding, ...]
    shot_list: ShotList | None

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity != "error")

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_shot_list(
    path: Path,
    *,
    catalog: ModelCatalog | None = None,
    max_shot_seconds: float = defaults.MAX_SHOT_SECONDS,
    face_memo: Path | None = None,
) -> ValidationReport:
    """Every finding for the shot list at ``path``, and the typed ShotList when there are no errors.

    ``face_memo`` is the JSON file where portraits' faces are memoised (farm.media.face_memo).
    """
    with collector_paused():  # a long list's document and ShotList are millions of objects, none cyclic
        return _validate(Path(path), catalog, max_shot_seconds, face_memo)


def _validate(
    path: Path, catalog: ModelCatalog | None, max_shot_seconds: float, face_memo: Path | None
) -> ValidationReport:
    name = display_path(path)
    try:
        document = load_located_yaml(path, name, scalar_ends=False)  # nothing here edits the text
    except ShotListError as exc:
        return ValidationReport(path, tuple(exc.findings), None)
    findings, schema_error_paths = schema_findings(document, name)
    context = SemanticContext(
        document,
        name,
        path.resolve().parent,
        catalog,
        max_shot_seconds,
        schema_error_paths=schema_error_paths,
        face_memo=face_memo,
    )
    findings += semantic_findings(context)
    findings = _unique_sorted(findings)
    if any(f.severity == "error" for f in findings):
        return ValidationReport(path, tuple(findings), None)
    return ValidationReport(path, tuple(findings), _build_shot_list(document, path.resolve()))


def load_shot_list(
    path: Path,
    *,
    catalog: ModelCatalog | None = None,
    max_shot_seconds: float = defaults.MAX_SHOT_SECONDS,
    face_memo: Path | None = None,
) -> ShotList:
    """The validated ShotList; raises ShotListError carrying every finding when it has errors."""
    report = validate_shot_list(path, catalog=catalog, max_shot_seconds=max_shot_seconds, face_memo=face_memo)
    if report.shot_list is None:
        raise ShotListError(list(report.findings))
    return report.shot_list


def _unique_sorted(findings: list[Finding]) -> list[Finding]:
    unique = {(f.line, f.column, f.field, f.message): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.line, f.column))


def _build_shot_list(document: LocatedDocument, path: Path) -> ShotList:
    data: dict[str, Any] = document.data
    root = path.parent
    output = data["output"]
    fps = parse_frame_rate(output["fps"])
    scenes = tuple(
        Scene(
            id=scene["id"],
            description=scene.get("description", ""),
            shots=tuple(
                _build_shot(document, scene["id"], shot, fps, ("scenes", scene_index, "shots", shot_index))
                for shot_index, shot in enumerate(scene["shots"])
            ),
        )
        for scene_index, scene in enumerate(data["scenes"])
    )
    return ShotList(
        path=path,
        root=root,
        version=data["version"],
        project=data["project"],
        episode=data.get("episode", ""),
        output=OutputSpec(fps=fps, width=output["width"], height=output["height"]),
        defaults=_settings(data.get("defaults", {})),
        characters={
            cid: Character(
                cid,
                _media(root, entry["image"]),
                entry.get("description", ""),
                entry.get("person", ""),
                face_hint=_face_hint(entry.get("face")),
                is_person=entry.get("face") != "none",
                crop=Crop(**entry["crop"]) if "crop" in entry else None,
            )
            for cid, entry in data["characters"].items()
        },
        audio_tracks={
            tid: AudioTrack(tid, _media(root, entry["file"]), entry.get("description", ""))
            for tid, entry in data["audio_tracks"].items()
        },
        scenes=scenes,
        continuity=_continuity(data.get("continuity", {})),
    )


def _build_shot(document: LocatedDocument, scene_id: str, raw: dict[str, Any], fps: Fraction, path: tuple) -> Shot:
    audio = raw["audio"]
    camera = raw.get("camera", {})
    intensity = parse_intensity(camera.get("intensity", defaults.CAMERA_INTENSITY))
    if intensity is None:  # validation has refused it already
        intensity = defaults.CAMERA_INTENSITY
    return Shot(
        id=raw["id"],
        scene_id=scene_id,
        character=raw["character"],
        audio=AudioCut(
            audio["track"],
            parse_timecode(audio["in"], fps),
            parse_timecode(audio["out"], fps),
            slip=audio.get("slip", 0),
        ),
        prompt=raw["prompt"],
        negative_prompt=raw.get("negative_prompt", ""),
        camera=CameraSpec(CameraMove(camera.get("move", "static")), intensity),
        continues=raw.get("continues"),
        overrides=_settings(raw.get("overrides", {})),
        notes=raw.get("notes", ""),
        line=document.locate(path).line,
        two_shot=_two_shot(raw["two_shot"], fps) if "two_shot" in raw else None,
    )


def _two_shot(raw: dict[str, Any], fps: Fraction) -> TwoShot:
    audio = raw["audio"]
    layout = TwoShotLayout(raw.get("layout", TwoShotLayout.SIDE_BY_SIDE.value))
    faces = raw.get("faces")
    return TwoShot(
        character=raw["character"],
        audio=AudioCut(audio["track"], parse_timecode(audio["in"], fps), parse_timecode(audio["out"], fps)),
        layout=layout,
        faces=(
            (tuple(float(v) for v in faces[0]), tuple(float(v) for v in faces[1]))  # type: ignore[assignment]
            if faces
            else LAYOUT_FACES[layout]
        ),
    )


def _settings(raw: dict[str, Any]) -> RenderSettings:
    return RenderSettings(
        model=raw.get("model"),
        preview_model=raw.get("preview_model"),
        quality=Quality(raw["quality"]) if "quality" in raw else None,
        steps=raw.get("steps"),
        seed=raw.get("seed"),
        text_guidance=raw.get("text_guidance"),
        audio_guidance=raw.get("audio_guidance"),
    )


def _continuity(raw: dict[str, Any]) -> ContinuityConfig:
    return ContinuityConfig.from_json(raw)


def _face_hint(raw: Any) -> tuple[float, float] | None:
    return (float(raw["x"]), float(raw["y"])) if isinstance(raw, dict) else None


def _media(root: Path, raw: str) -> Path:
    resolved, problem, _ = resolve_media_path(root, raw)
    if resolved is None:  # validation has already refused it; reaching here is a bug
        raise AssertionError(problem)
    return resolved
