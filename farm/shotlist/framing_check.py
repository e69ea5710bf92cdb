"""Validate-time framing checks: every person's portrait shows a face, and explicit crops fit the image.

A portrait with no detectable face would be framed blind and could never pass the face checks of the
edit, so it is refused here, at the character, with the three ways out. Detection is memoised by the
portrait's sha256, so validating again costs a hash per portrait.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farm.errors import MediaError
from farm.media.face_memo import FaceMemo
from farm.media.image import probe_image
from farm.shotlist.semantic import SemanticContext, resolve_media_path

NO_FACE_FIX = (
    "crop the portrait to the person, give the character 'face: {x: 0.5, y: 0.2}' pointing at the face, "
    "or 'face: none' if the portrait shows no person"
)


def check_character_framing(context: SemanticContext) -> None:
    data = context.document.data
    characters = data.get("characters") if isinstance(data, dict) else None
    if not isinstance(characters, dict):
        return
    memo = FaceMemo(context.face_memo)
    for character_id, entry in characters.items():
        raw = entry.get("image") if isinstance(entry, dict) else None
        resolved = resolve_media_path(context.root, raw)[0] if isinstance(raw, str) and raw else None
        if resolved is None or not resolved.is_file():
            continue  # the media check reports it
        try:
            size = probe_image(resolved)
        except MediaError:
            continue
        crop = entry.get("crop")
        if isinstance(crop, dict):
            _check_crop(context, character_id, raw, crop, size)
            continue  # an explicit crop wins: no face is needed to frame it
        if entry.get("face") == "none":
            continue
        _check_face(context, character_id, raw, resolved, entry.get("face"), memo)


def _check_crop(
    context: SemanticContext, character_id: str, raw: str, crop: dict[str, Any], size: tuple[int, int]
) -> None:
    values = [crop.get(name) for name in ("left", "top", "width", "height")]
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return  # the schema reports it
    left, top, width, height = values
    for name, start, extent, limit in (("width", left, width, size[0]), ("height", top, height, size[1])):
        if start + extent > limit:
            context.error(
                ("characters", character_id, "crop", name),
                f"the crop reaches {start + extent} px, past the {limit} px {name} of '{raw}' ({size[0]}x{size[1]})",
                f"make {'left' if name == 'width' else 'top'} + {name} at most {limit}",
            )


def _check_face(context: SemanticContext, character_id: str, raw: str, path: Path, hint: Any, memo: FaceMemo) -> None:
    found = memo.faces(path)
    if not found.faces:
        context.error(
            ("characters", character_id, "image"),
            f"no face found in '{raw}' (character {character_id}), so it cannot be framed from the face",
            NO_FACE_FIX,
        )
        return
    if isinstance(hint, dict) and isinstance(hint.get("x"), int | float) and isinstance(hint.get("y"), int | float):
        x, y = hint["x"] * found.size[0], hint["y"] * found.size[1]
        if not any(f.left <= x <= f.right and f.top <= y <= f.bottom for f in found.faces):
            context.warning(
                ("characters", character_id, "face"),
                f"the face hint ({hint['x']:g}, {hint['y']:g}) lies on none of the {len(found.faces)} faces found "
                f"in '{raw}'; the nearest is framed",
                "point x and y (fractions of the portrait) at the face to frame",
            )
