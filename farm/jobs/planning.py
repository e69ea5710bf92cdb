"""A shot list file to its validated ShotList and Plan, with nothing of the database imported.

``farm render`` and ``Farm.submit`` plan here first, so a refused shot list is reported before a database
is opened (or a data dir created for it) and before SQLAlchemy, let alone Ray, is imported.
"""

from __future__ import annotations

from pathlib import Path

from farm.catalog import ModelCatalog, Quality
from farm.plan import Plan, plan_shot_list
from farm.settings import Settings
from farm.shotlist.load import load_shot_list
from farm.shotlist.types import ShotList


def plan_file(settings: Settings, path: Path, *, quality: Quality | None = None) -> tuple[ShotList, Plan]:
    """The validated shot list at ``path`` and its plan (ShotListError carrying every finding if invalid)."""
    catalog = ModelCatalog.for_settings(settings)
    shot_list = load_shot_list(
        Path(path), catalog=catalog, max_shot_seconds=settings.max_shot_seconds, face_memo=settings.face_memo
    )
    plan = plan_shot_list(
        shot_list, catalog, quality=quality, digest_memo=settings.weights_digest_memo, face_memo=settings.face_memo
    )
    return shot_list, plan
