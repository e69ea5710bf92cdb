"""Checks a JSON Schema cannot express: references, ordering, media files, timecodes against real audio.

They run on the raw document even when the schema found problems, so an editor sees every error in one
pass; each check therefore reads values defensively and skips what the schema already reported.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from farm.catalog import ModelCatalog
from farm.errors import Finding, MediaError
from farm.media.audio import MODEL_SAMPLE_RATE, probe_track
from farm.media.faces import SAME_PERSON_DISTANCE, identity_distance, portrait_identity
from farm.media.image import probe_image
from farm.shotlist.locations import finding_at
from farm.shotlist.timecode import TIMECODE_FORMS, TimecodeError, is_smpte, parse_frame_rate, parse_timecode
from farm.shotlist.types import LAYOUT_FACES, TwoShotLayout, regions_overlap
from farm.shotlist.yaml_source import JsonPath, LocatedDocument


@dataclass
class SemanticContext:
    document: LocatedDocument
    name: str
    root: Path
    catalog: ModelCatalog | None
    max_shot_seconds: float
    findings: list[Finding] = field(default_factory=list)
    schema_error_paths: set[JsonPath] = field(default_factory=set)
    """Paths the schema already reported; semantic checks stay quiet about them and below them."""
    audio_lengths: dict[str, Fraction] = field(default_factory=dict)
    """Track id -> length in seconds as decoded, for tracks that decode."""
    face_memo: Path | None = None
    """Where portraits' detected faces are memoised across processes (None: in this process only)."""

    @functools.cached_property
    def longest_shot(self) -> Fraction:
        """``max_shot_seconds`` exactly, as written (compared with every shot's length)."""
        return Fraction(str(self.max_shot_seconds))

    def error(self, path: JsonPath, message: str, hint: str = "", *, key: bool = False) -> None:
        if any(path[: len(reported)] == reported for reported in self.schema_error_paths):
            return
        self.findings.append(finding_at(self.document, self.name, path, message, hint, key=key))

    def warning(self, path: JsonPath, message: str, hint: str = "", *, key: bool = False) -> None:
        self.findings.append(finding_at(self.document, self.name, path, message, hint, key=key, severity="warning"))


def semantic_findings(context: SemanticContext) -> list[Finding]:
    from farm.shotlist.framing_check import check_character_framing  # it builds on this module's helpers

    for check in (
        _check_unique_ids,
        _check_media_files,
        _check_references,
        _check_continues,
        _check_timecodes,
        _check_intensities,
        _check_models,
        _check_unused_entries,
        _check_person_portraits,
        check_character_framing,
        _check_two_shots,
    ):
        check(context)
    return context.findings


def iter_shots(data: Any) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    """``(path, shot)`` for every shot mapping in edit order, skipping malformed entries."""
    scenes = data.get("scenes") if isinstance(data, dict) else None
    if not isinstance(scenes, list):
        return
    for scene_index, scene in enumerate(scenes):
        shots = scene.get("shots") if isinstance(scene, dict) else None
        if not isinstance(shots, list):
            continue
        for shot_index, shot in enumerate(shots):
            if isinstance(shot, dict):
                yield ("scenes", scene_index, "shots", shot_index), shot


def output_fps(data: Any) -> Fraction | None:
    output = data.get("output") if isinstance(data, dict) else None
    fps = output.get("fps") if isinstance(output, dict) else None
    if isinstance(fps, int | float) and not isinstance(fps, bool) and 0 < fps <= 120:
        return parse_frame_rate(fps)
    return None


def parse_intensity(value: Any) -> float | None:
    """0..1 from ``0.4`` or ``"40%"``; None when the value is malformed (the schema reports it)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            return float(value[:-1]) / 100
        except ValueError:
            return None
    return None


def resolve_media_path(root: Path, raw: str) -> tuple[Path | None, str, str]:
    """``(path, problem, hint)``: the resolved path inside ``root``, or why it is refused."""
    candidate = Path(raw)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        return (
            None,
            f"'{raw}' points outside the shot list's folder {root}",
            "copy the file into the project folder and give a relative path",
        )
    return resolved, "", ""


def _shot_id(shot: dict[str, Any]) -> str | None:
    value = shot.get("id")
    return value if isinstance(value, str) else None


def _check_unique_ids(context: SemanticContext) -> None:
    data = context.document.data
    scenes = data.get("scenes") if isinstance(data, dict) else None
    seen_scenes: dict[str, JsonPath] = {}
    for index, scene in enumerate(scenes if isinstance(scenes, list) else []):
        scene_id = scene.get("id") if isinstance(scene, dict) else None
        if isinstance(scene_id, str):
            if scene_id in seen_scenes:
                first = context.document.locate((*seen_scenes[scene_id], "id"))
                context.error(
                    ("scenes", index, "id"),
                    f"scene id '{scene_id}' is used twice",
                    f"rename it (first used on line {first.line})",
                )
            else:
                seen_scenes[scene_id] = ("scenes", index)
    seen_shots: dict[str, JsonPath] = {}
    for path, shot in iter_shots(data):
        shot_id = _shot_id(shot)
        if shot_id is None:
            continue
        if shot_id in seen_shots:
            first = context.document.locate((*seen_shots[shot_id], "id"))
            context.error(
                (*path, "id"),
                f"shot id '{shot_id}' is used twice",
                f"give each shot its own id (first used on line {first.line})",
            )
        else:
            seen_shots[shot_id] = path


def _check_media_files(context: SemanticContext) -> None:
    data = context.document.data
    if not isinstance(data, dict):
        return
    for section, field_name, kind in (("characters", "image", "image"), ("audio_tracks", "file", "audio")):
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for entry_id, entry in entries.items():
            raw = entry.get(field_name) if isinstance(entry, dict) else None
            if not isinstance(raw, str) or not raw:
                continue
            path = (section, entry_id, field_name)
            resolved, problem, hint = resolve_media_path(context.root, raw)
            if resolved is None:
                context.error(path, problem, hint)
            elif not resolved.exists():
                context.error(
                    path, f"file '{raw}' does not exist", "check the spelling; paths are relative to the shot list"
                )
            elif not resolved.is_file():
                context.error(path, f"'{raw}' is not a file", f"point {field_name} at a file")
            elif kind == "image":
                _probe_image(context, path, raw, resolved)
            else:
                _probe_audio(context, path, entry_id, raw, resolved)


def _probe_image(context: SemanticContext, path: JsonPath, raw: str, resolved: Path) -> None:
    try:
        probe_image(resolved)
    except MediaError as exc:
        context.error(
            path, f"'{raw}' is not a usable portrait: {_reason(exc)}", "use a PNG or JPEG portrait of at least 64 px"
        )


def _probe_audio(context: SemanticContext, path: JsonPath, track_id: str, raw: str, resolved: Path) -> None:
    try:
        samples = probe_track(resolved)  # from the header when the track needs no decoding
    except MediaError as exc:
        context.error(path, f"'{raw}' is not decodable audio: {_reason(exc)}", "use a WAV, FLAC, MP3 or AAC file")
        return
    if samples == 0:
        context.error(path, f"'{raw}' contains no audio samples", "export the dialogue again")
        return
    context.audio_lengths[track_id] = Fraction(samples, MODEL_SAMPLE_RATE)


def _reason(exc: MediaError) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def _check_references(context: SemanticContext) -> None:
    data = context.document.data
    characters = data.get("characters") if isinstance(data, dict) else None
    tracks = data.get("audio_tracks") if isinstance(data, dict) else None
    for path, shot in iter_shots(data):
        character = shot.get("character")
        if isinstance(character, str) and isinstance(characters, dict) and character not in characters:
            context.error(
                (*path, "character"), f"unknown character '{character}'", _known("characters", list(characters))
            )
        second = _second_character(shot)
        if second is not None and isinstance(characters, dict) and second not in characters:
            context.error(
                (*path, "two_shot", "character"),
                f"unknown character '{second}'",
                _known("characters", list(characters)),
            )
        for audio_path in _audio_paths(path, shot):
            audio = _get_path(shot, audio_path[len(path) :])
            track = audio.get("track") if isinstance(audio, dict) else None
            if isinstance(track, str) and isinstance(tracks, dict) and track not in tracks:
                context.error(
                    (*audio_path, "track"), f"unknown audio track '{track}'", _known("audio_tracks", list(tracks))
                )


def _second_character(shot: dict[str, Any]) -> str | None:
    two_shot = shot.get("two_shot")
    character = two_shot.get("character") if isinstance(two_shot, dict) else None
    return character if isinstance(character, str) else None


def _audio_paths(path: JsonPath, shot: dict[str, Any]) -> list[JsonPath]:
    """The paths of a shot's dialogue cuts: its own, and its second speaker's in a two-shot."""
    paths: list[JsonPath] = [(*path, "audio")]
    if isinstance(shot.get("two_shot"), dict):
        paths.append((*path, "two_shot", "audio"))
    return paths


def _get_path(data: Any, path: JsonPath) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _known(section: str, names: list[str]) -> str:
    return (
        f"define it under '{section}' or use one of {', '.join(sorted(names))}"
        if names
        else f"define it under '{section}'"
    )


def _check_continues(context: SemanticContext) -> None:
    shots = list(iter_shots(context.document.data))
    order = {_shot_id(shot): index for index, (_, shot) in enumerate(shots) if _shot_id(shot)}
    continues_of = {
        _shot_id(shot): shot.get("continues") for _, shot in shots if isinstance(shot.get("continues"), str)
    }
    for index, (path, shot) in enumerate(shots):
        target = shot.get("continues")
        if not isinstance(target, str):
            continue
        field_path = (*path, "continues")
        if target == _shot_id(shot):
            context.error(field_path, "a shot cannot continue itself", "name the shot this one follows on from")
        elif target not in order:
            context.error(field_path, f"unknown shot '{target}'", "name an earlier shot's id")
        elif (cycle := _cycle_through(_shot_id(shot), continues_of)) is not None:
            context.error(
                field_path,
                f"'continues' forms a cycle: {' -> '.join(cycle)}",
                "a shot can only continue an earlier shot",
            )
        elif order[target] > index:
            context.error(
                field_path,
                f"shot '{target}' comes later in the edit",
                "a shot can only continue an earlier shot; reorder the shots or drop 'continues'",
            )
        else:
            target_shot = shots[order[target]][1]
            if shot.get("character") != target_shot.get("character"):
                context.warning(
                    field_path,
                    f"continues shot '{target}', which shows another character",
                    "continuation carries the previous shot's last frames; check this is intended",
                )


def _cycle_through(start: str | None, continues_of: dict[str | None, Any]) -> list[str] | None:
    chain = [start]
    current = continues_of.get(start)
    while isinstance(current, str):
        if current == start:
            return [*chain, current]  # type: ignore[list-item]
        if current in chain:
            return None  # a cycle that doesn't pass through start is reported at its own shots
        chain.append(current)
        current = continues_of.get(current)
    return None


def _check_timecodes(context: SemanticContext) -> None:
    fps = output_fps(context.document.data)
    for path, shot in iter_shots(context.document.data):
        durations = [
            _check_cut(context, audio_path, _get_path(shot, audio_path[len(path) :]), fps)
            for audio_path in _audio_paths(path, shot)
        ]
        if len(durations) == 2 and None not in durations and durations[0] != durations[1]:
            first, second = durations
            context.error(
                (*path, "two_shot", "audio", "out"),
                f"the second speaker's audio lasts {float(second):.3f} s, the shot's audio {float(first):.3f} s",
                "cut both speakers' dialogue to the same length (pad with the track's silence for the one who "
                "speaks less)",
            )


def _check_cut(context: SemanticContext, path: JsonPath, audio: Any, fps: Fraction | None) -> Fraction | None:
    """The cut's duration, after reporting what is wrong with its timecodes; None if it has none."""
    if not isinstance(audio, dict):
        return None
    cut_in = _timecode(context, (*path, "in"), audio.get("in"), fps)
    cut_out = _timecode(context, (*path, "out"), audio.get("out"), fps)
    if cut_in is None or cut_out is None:
        return None
    out_path = (*path, "out")
    duration = cut_out - cut_in
    if duration <= 0:
        context.error(
            out_path,
            f"out ({float(cut_out):.3f} s) is not after in ({float(cut_in):.3f} s)",
            "set out later than in",
        )
        return None
    if fps is not None and duration * fps < 1:
        context.error(
            out_path,
            f"the shot lasts {float(duration) * 1000:.1f} ms, less than one frame",
            f"make it at least {float(1 / fps) * 1000:.1f} ms long",
        )
    if duration > context.longest_shot:
        context.error(
            out_path,
            f"the shot lasts {float(duration):.1f} s, more than the {context.max_shot_seconds:g} s limit",
            "split it into several shots or raise --max-shot-seconds",
        )
    track = audio.get("track")
    length = context.audio_lengths.get(track) if isinstance(track, str) else None
    if length is not None and cut_out > length:
        context.error(
            out_path,
            f"out {audio.get('out')} is past the end of track '{track}' ({float(length):.3f} s)",
            "set out within the track's length",
        )
    return duration


def _timecode(context: SemanticContext, path: JsonPath, value: Any, fps: Fraction | None) -> Fraction | None:
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        return None
    try:
        return parse_timecode(value, fps if fps is not None else Fraction(25))
    except TimecodeError as exc:
        if isinstance(value, str) and is_smpte(value) and fps is None:
            return None
        context.error(path, str(exc), TIMECODE_FORMS)
        return None


def _check_intensities(context: SemanticContext) -> None:
    for path, shot in iter_shots(context.document.data):
        camera = shot.get("camera")
        intensity = parse_intensity(camera.get("intensity")) if isinstance(camera, dict) else None
        if intensity is not None and not 0 <= intensity <= 1:
            context.error(
                (*path, "camera", "intensity"),
                f"intensity {intensity * 100:g}% is outside 0-100%",
                "use a value from 0% to 100%",
            )


def _check_models(context: SemanticContext) -> None:
    catalog = context.catalog
    data = context.document.data
    if catalog is None or not isinstance(data, dict):
        return
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    candidates: list[tuple[JsonPath, Any]] = [
        (("defaults", "model"), defaults.get("model")),
        (("defaults", "preview_model"), defaults.get("preview_model")),
    ]
    for path, shot in iter_shots(data):
        overrides = shot.get("overrides")
        if isinstance(overrides, dict):
            candidates += [
                ((*path, "overrides", "model"), overrides.get("model")),
                ((*path, "overrides", "preview_model"), overrides.get("preview_model")),
            ]
    output = data.get("output") if isinstance(data.get("output"), dict) else {}
    for path, name in candidates:
        if not isinstance(name, str):
            continue
        if name not in catalog:
            context.error(path, f"unknown model '{name}'", catalog.suggest(name))
            continue
        multiple = catalog.get(name).size_multiple
        for dimension in ("width", "height"):
            size = output.get(dimension)
            if isinstance(size, int) and not isinstance(size, bool) and size % multiple:
                context.error(
                    ("output", dimension),
                    f"{dimension} {size} is not a multiple of {multiple}, which model '{name}' needs",
                    f"use {size - size % multiple} or {size - size % multiple + multiple}",
                )


def _check_unused_entries(context: SemanticContext) -> None:
    data = context.document.data
    if not isinstance(data, dict):
        return
    shots = [shot for _, shot in iter_shots(data)]
    used_characters = {shot.get("character") for shot in shots} | {_second_character(shot) for shot in shots}
    used_tracks = {
        audio.get("track")
        for shot in shots
        for audio in (shot.get("audio"), _get_path(shot, ("two_shot", "audio")))
        if isinstance(audio, dict)
    }
    for section, used in (("characters", used_characters), ("audio_tracks", used_tracks)):
        entries = data.get(section)
        for entry_id in entries if isinstance(entries, dict) else {}:
            if entry_id not in used:
                context.warning(
                    (section, entry_id),
                    f"'{entry_id}' is not used by any shot",
                    "remove it or use it in a shot",
                    key=True,
                )


def _check_person_portraits(context: SemanticContext) -> None:
    """Characters that are looks of one ``person`` must show one face: a portrait of someone else renders
    someone else, and no retake can fix that. Each is compared with the person's anchor portrait (the
    character named like the person, else the first one that shows a face); dlib descriptors, memoised
    by each file's sha256, so validating again costs little and a shot list without shared persons
    nothing. A portrait without a detectable face is left to the framing checks."""
    characters = context.document.data.get("characters") if isinstance(context.document.data, dict) else None
    if not isinstance(characters, dict):
        return
    looks: dict[str, list[tuple[str, str, Path]]] = {}
    for character_id, entry in characters.items():
        raw = entry.get("image") if isinstance(entry, dict) else None
        person = entry.get("person") if isinstance(entry, dict) else None
        resolved = resolve_media_path(context.root, raw)[0] if isinstance(raw, str) and raw else None
        if resolved is None or not resolved.is_file():
            continue
        person_id = person if isinstance(person, str) and person else character_id
        looks.setdefault(person_id, []).append((character_id, raw, resolved))
    for person, group in looks.items():
        if len(group) > 1:
            _compare_looks(context, person, sorted(group, key=lambda look: look[0] != person))


def _compare_looks(context: SemanticContext, person: str, group: list[tuple[str, str, Path]]) -> None:
    faces = {}
    for character_id, _, path in group:
        try:
            probe_image(path)
            faces[character_id] = portrait_identity(path)
        except MediaError:  # reported by the media check
            continue
    shown = [(look, faces[look[0]]) for look in group if faces.get(look[0]) is not None]
    if len(shown) < 2:
        return
    (anchor_id, anchor_raw, _), anchor_face = shown[0]
    for (character_id, raw, _), face in shown[1:]:
        distance = identity_distance(face, anchor_face)
        if distance >= SAME_PERSON_DISTANCE:
            context.warning(
                ("characters", character_id, "image"),
                f"'{raw}' shows another face than '{anchor_raw}' (characters.{anchor_id}), though both are person "
                f"'{person}' (face distance {distance:.2f}; the same person is under {SAME_PERSON_DISTANCE:g})",
                f"use a portrait of {person} for characters.{character_id}, or give it a person of its own: "
                "a render cannot fix a wrong portrait",
            )


def _check_two_shots(context: SemanticContext) -> None:
    """A two-shot needs two different characters whose face regions are well formed and apart: each
    speaker's audio drives only its own region, so regions that overlap would drive one mouth twice."""
    for path, shot in iter_shots(context.document.data):
        two_shot = shot.get("two_shot")
        if not isinstance(two_shot, dict):
            continue
        second = _second_character(shot)
        if second is not None and second == shot.get("character"):
            context.error(
                (*path, "two_shot", "character"),
                f"the two-shot's second character is '{second}', the shot's own character",
                "name another character from 'characters' (a two-shot shows two people)",
            )
        faces = two_shot.get("faces")
        if not isinstance(faces, list) or len(faces) != 2:
            continue
        regions = []
        for index, region in enumerate(faces):
            if not _is_region_list(region):
                continue
            left, top, right, bottom = (float(value) for value in region)
            if right <= left or bottom <= top:
                context.error(
                    (*path, "two_shot", "faces", index),
                    f"face region {region} is empty: right must exceed left and bottom exceed top",
                    "write [left, top, right, bottom], e.g. [0, 0, 0.5, 1]",
                )
                continue
            regions.append((left, top, right, bottom))
        if len(regions) == 2 and regions_overlap(regions[0], regions[1]):
            layout = two_shot.get("layout", TwoShotLayout.SIDE_BY_SIDE.value)
            suggestion = LAYOUT_FACES.get(layout) if layout in TwoShotLayout.__members__.values() else None
            context.error(
                (*path, "two_shot", "faces"),
                f"the two faces' regions {faces[0]} and {faces[1]} overlap",
                "move them apart so no point is in both"
                + (
                    f", or drop 'faces' to use the {layout} layout's {[list(r) for r in suggestion]}"
                    if suggestion
                    else ""
                ),
            )


def _is_region_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
