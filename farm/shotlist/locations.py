"""Turn a JSON path inside a shot list into the words an editor uses: which shot, which field, where."""

from __future__ import annotations

from farm.errors import Finding
from farm.shotlist.yaml_source import JsonPath, LocatedDocument


def subject_of(document: LocatedDocument, path: JsonPath) -> tuple[str | None, str]:
    """``(shot id, field)`` for a path; the field is relative to the shot when the path is inside one.

    ``("scenes", 0, "shots", 2, "audio", "out")`` becomes ``("sc01_030", "audio.out")``; paths outside a
    shot keep their full dotted form, e.g. ``characters.anna.image`` or ``scenes[1].id``.
    """
    data = document.data
    if len(path) >= 4 and path[0] == "scenes" and path[2] == "shots":
        shot = _get(data, path[:4])
        shot_id = shot.get("id") if isinstance(shot, dict) else None
        if isinstance(shot_id, str):
            return shot_id, dotted(path[4:])
        return None, dotted(path)
    return None, dotted(path)


def dotted(path: JsonPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def finding_at(
    document: LocatedDocument,
    display_name: str,
    path: JsonPath,
    message: str,
    hint: str = "",
    *,
    key: bool = False,
    severity: str = "error",
) -> Finding:
    position = document.locate(path, key=key)
    shot, field = subject_of(document, path)
    return Finding(display_name, position.line, position.column, field, message, hint, shot, severity)


def _get(data: object, path: JsonPath) -> object:
    for part in path:
        if (isinstance(part, int) and isinstance(data, list) and part < len(data)) or (
            isinstance(part, str) and isinstance(data, dict) and part in data
        ):
            data = data[part]
        else:
            return None
    return data
