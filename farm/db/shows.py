"""Shows: the share, GPU quota and GPU-hour budget the manager gives each show, and what each has spent.

A show is a shot list's ``project``, so a show exists for people as soon as it has a job: it is listed with
the defaults (share 1, no quota, no budget) before anyone sets it. Setting one writes its row (created on
the first change) and a ``show.changed`` event saying what changed from what, in one transaction. The
GPU hours a show has used are its jobs' shots' GPU time, summed in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, distinct, func, insert, select, update

from farm.db.columns import utcnow
from farm.db.errors import UnknownShow
from farm.db.events import event_row, write_events
from farm.db.kinds import EventKind
from farm.db.records import ShowChange, ShowInfo
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import ShotState
from farm.db.tables import NAME, Job, Render, Shot, Show
from farm.errors import InvalidValue, UsageError

DEFAULT_SHARE = 1.0


@dataclass(frozen=True)
class PendingShot:
    """A shot of the show still to render: what the learned cost model needs to say how long it will take."""

    model: str
    width: int
    height: int
    frames: int
    steps: int | None
    left: float
    """The part still to do: 1 for a queued shot, what its attempt has not done for a running one."""


@transaction
def pending_shots(db: Database, name: str) -> tuple[PendingShot, ...]:
    """The show's queued and running shots: what its budget is already promised to (its jobs will spend it)."""
    statement = (
        select(Shot.c.spec, Shot.c.state, Render.c.progress)
        .join(Job, Job.c.id == Shot.c.job_id)
        .outerjoin(Render, Render.c.id == Shot.c.current_render_id)
        .where(Job.c.project == name, Shot.c.state.in_([ShotState.QUEUED, ShotState.RUNNING]))
    )
    with db.read() as connection:
        rows = connection.execute(statement).all()
    return tuple(_pending(spec, state == ShotState.RUNNING, progress) for spec, state, progress in rows)


def _pending(spec: dict[str, Any], running: bool, progress: float | None) -> PendingShot:
    left = 1.0 - float(progress or 0.0) if running else 1.0
    steps = spec.get("steps")
    return PendingShot(
        str(spec["model"]), int(spec["width"]), int(spec["height"]), int(spec["frames"]),
        int(steps) if steps is not None else None, left,
    )  # fmt: skip


@transaction
def set_show(db: Database, name: str, change: ShowChange, *, by: str) -> ShowInfo:
    """Apply ``change`` to show ``name`` (its row created on the first change); returns the show after it."""
    name = _checked_name(name)
    wanted = change.changes()
    if not wanted:
        raise UsageError(f"nothing to change for show {name!r}: give a share, a GPU quota or a GPU-hour budget")
    now = utcnow()
    with db.write() as connection:
        before = _settings(connection, name)
        if before is None:
            before = {"share": DEFAULT_SHARE, "gpu_quota": None, "gpu_hour_budget": None}
            connection.execute(insert(Show).values(name=name, **{**before, **wanted}, updated_at=now))
        else:
            connection.execute(update(Show).where(Show.c.name == name).values(**wanted, updated_at=now))
        after = {**before, **wanted}
        write_events(
            connection,
            [
                event_row(
                    at=now,
                    by=by,
                    kind=EventKind.SHOW_CHANGED,
                    job_id=None,
                    message=f"show {name}: {_describe(before, after)}",
                    data={"show": name, "before": before, "after": after},
                )
            ],
        )
        return _shows(connection, name)[0]


@transaction
def list_shows(db: Database) -> tuple[ShowInfo, ...]:
    """Every show with settings or jobs, by name, with the GPU hours its jobs have used."""
    with db.read() as connection:
        return _shows(connection, None)


@transaction
def read_show(db: Database, name: str) -> ShowInfo:
    """One show (UnknownShow if it has neither settings nor jobs)."""
    with db.read() as connection:
        found = _shows(connection, name)
    if not found:
        raise UnknownShow(
            f"no show is named {name!r}: none has its settings and no job's project is {name!r}; "
            "`farm show` lists the shows"
        )
    return found[0]


def _shows(connection: Connection, name: str | None) -> tuple[ShowInfo, ...]:
    usage = (
        select(Job.c.project, func.count(distinct(Job.c.id)), func.coalesce(func.sum(Shot.c.gpu_seconds), 0.0))
        .select_from(Job)
        .outerjoin(Shot, Shot.c.job_id == Job.c.id)
        .group_by(Job.c.project)
    )
    settings = select(Show.c.name, Show.c.share, Show.c.gpu_quota, Show.c.gpu_hour_budget, Show.c.updated_at)
    if name is not None:
        usage, settings = usage.where(Job.c.project == name), settings.where(Show.c.name == name)
    used = {project: (jobs, float(seconds)) for project, jobs, seconds in connection.execute(usage).all()}
    rows = {row.name: row for row in connection.execute(settings).all()}
    shows = []
    for show in sorted(set(used) | set(rows)):
        jobs, seconds = used.get(show, (0, 0.0))
        row = rows.get(show)
        shows.append(
            ShowInfo(
                name=show,
                share=row.share if row else DEFAULT_SHARE,
                gpu_quota=row.gpu_quota if row else None,
                gpu_hour_budget=row.gpu_hour_budget if row else None,
                gpu_hours_used=seconds / 3600.0,
                jobs=jobs,
                configured=row is not None,
                updated_at=row.updated_at if row else None,
            )
        )
    return tuple(shows)


def _settings(connection: Connection, name: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(Show.c.share, Show.c.gpu_quota, Show.c.gpu_hour_budget).where(Show.c.name == name)
    ).one_or_none()
    return (
        None
        if row is None
        else {"share": row.share, "gpu_quota": row.gpu_quota, "gpu_hour_budget": row.gpu_hour_budget}
    )


def _describe(before: dict[str, Any], after: dict[str, Any]) -> str:
    changed = [f"{key} {_shown(before[key])} -> {_shown(after[key])}" for key in after if before[key] != after[key]]
    return ", ".join(changed) or "unchanged"


def _shown(value: Any) -> str:
    return "none" if value is None else f"{value:g}"


def _checked_name(name: str) -> str:
    if not name.strip() or len(name) > NAME:
        raise InvalidValue("name", f"a show's name is its shot lists' project, 1-{NAME} characters, not {name!r}")
    return name
