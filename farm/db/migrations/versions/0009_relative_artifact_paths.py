"""Relative artifact paths: the artifacts', edits' and attempt logs' paths are stored relative to the data
directory, so a data directory that is moved or mounted elsewhere keeps working.

The migration cannot know where the data directory was, nor where it is now (it may already have been
moved, which is how a user finds this out), so it goes by the layout farm gives its data directory, which
is fixed: ``artifacts/<2 hex>/<cache key>.<ext>``, ``edits/job-<id>/v<NNN>/<file>`` and
``logs/attempts/job-<id>/<file>``. An absolute path ending in that layout keeps just the layout part; any
other path (a file outside the data directory) stays as it is. The patterns are written out here rather
than read from farm's code, so the migration means tomorrow what it means today.

Downgrading joins the relative paths back to the data directory when the caller names it
(``farm.db.migrate.downgrade(..., data_dir=...)``); without one they stay relative.

Revision ID: 0009_relative_artifact_paths
Revises: 0008_notifications
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import context, op

revision: str = "0009_relative_artifact_paths"
down_revision: str | None = "0008_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEP = r"[/\\]"
_ARTIFACT = re.compile(rf".*{_SEP}(artifacts{_SEP}[0-9a-f]{{2}}{_SEP}[^/\\]+)$")
_EDIT = re.compile(rf".*{_SEP}(edits{_SEP}job-\d+{_SEP}v\d+{_SEP}[^/\\]+)$")
_LOG = re.compile(rf".*{_SEP}(logs{_SEP}attempts{_SEP}job-\d+{_SEP}[^/\\]+)$")

COLUMNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("artifacts", "path", _ARTIFACT),
    ("edits", "video_path", _EDIT),
    ("edits", "otio_path", _EDIT),
    ("edits", "report_path", _EDIT),
    ("renders", "log_path", _LOG),
)


def upgrade() -> None:
    for table, column, layout in COLUMNS:
        _rewrite(table, column, lambda path, layout=layout: _relative(path, layout))


def downgrade() -> None:
    data_dir = context.config.attributes.get("data_dir")
    if data_dir is None:
        return
    for table, column, _ in COLUMNS:
        _rewrite(table, column, lambda path: _absolute(path, str(data_dir)))


def _relative(path: str, layout: re.Pattern[str]) -> str:
    match = layout.match(path) if _is_absolute(path) else None
    return match.group(1).replace("\\", "/") if match else path


def _absolute(path: str, data_dir: str) -> str:
    return path if _is_absolute(path) else str(PurePosixPath(data_dir, path))


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[/\\]", path) is not None


def _rewrite(table: str, column: str, change: Callable[[str], str]) -> None:
    """Apply ``change`` to every non-null value of ``table.column``, in one executemany of the rows it changes."""
    rows = sa.table(table, sa.column("id", sa.Integer()), sa.column(column, sa.Text()))
    connection = op.get_bind()
    found = connection.execute(sa.select(rows.c.id, rows.c[column]).where(rows.c[column].is_not(None))).all()
    changed = [{"row_id": row_id, "new_path": change(path)} for row_id, path in found if change(path) != path]
    if changed:
        connection.execute(
            rows.update().where(rows.c.id == sa.bindparam("row_id")).values({column: sa.bindparam("new_path")}),
            changed,
        )
