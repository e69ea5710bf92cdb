"""Writers racing on the same rows: exactly one wins each transition, none is lost or applied twice.

Each thread has its own connections (the engine's pool) and acts on a possibly stale view of a shot, the
way workers and drivers do. Afterwards the tables and the event log must tell one consistent story.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from farm.db.jobs import transition_job
from farm.db.kinds import ArtifactKind, EventKind
from farm.db.lease import claim_driver
from farm.db.machine import ShotMove, move_shots
from farm.db.products import ArtifactRecord, record_artifact
from farm.db.session import Database, open_database
from farm.db.shots import finish_attempt, start_attempt
from farm.db.states import AttemptState, JobState, LostRace, ShotState
from farm.db.tables import Artifact, Event, Job, Render, Shot
from farm.plan import Plan
from tests.db_records import submit_plan

OUTCOMES = [
    (AttemptState.SUCCEEDED, ShotState.DONE),
    (AttemptState.FAILED, ShotState.QUEUED),
    (AttemptState.CRASHED, ShotState.QUEUED),
]


@dataclass
class Tally:
    """What one thread believes it did: transitions it won and races it lost."""

    started: int = 0
    finished: int = 0
    requeued: int = 0
    lost: Counter[str] = field(default_factory=Counter)


def race(db: Database, job_id: int, threads: int, attempts_per_thread: int) -> list[Tally]:
    with db.read() as connection:
        shot_pks = list(connection.execute(sa.select(Shot.c.id).where(Shot.c.job_id == job_id)).scalars())
    tallies = [Tally() for _ in range(threads)]
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(index: int) -> None:
        rng = random.Random(index)
        tally = tallies[index]
        barrier.wait()
        try:
            for _ in range(attempts_per_thread):
                act_on_a_shot(db, rng.choice(shot_pks), rng, tally, worker=f"w{index}")
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    return tallies


def act_on_a_shot(db: Database, pk: int, rng: random.Random, tally: Tally, worker: str) -> None:
    """Read the shot, then act on what was read; by then another thread may have changed it."""
    with db.read() as connection:
        state, render_id = connection.execute(
            sa.select(Shot.c.state, Shot.c.current_render_id).where(Shot.c.id == pk)
        ).one()
    if state is ShotState.QUEUED:
        try:
            start_attempt(db, pk, worker=worker, node="n", device="cuda:0", by=worker)
            tally.started += 1
        except LostRace:
            tally.lost["start"] += 1
    elif state is ShotState.RUNNING:
        outcome, shot_state = rng.choice(OUTCOMES)
        if finish_attempt(db, render_id, outcome=outcome, shot_state=shot_state, by=worker, gpu_seconds=1.0):
            tally.finished += 1
        else:
            tally.lost["finish"] += 1
    else:
        with db.write() as connection:
            move = ShotMove(state, ShotState.QUEUED, EventKind.SHOT_REQUEUED, "retry")
            moved = move_shots(connection, move, where=[Shot.c.id == pk], by=worker)
        if moved:
            tally.requeued += 1
        else:
            tally.lost["requeue"] += 1


def check_consistency(db: Database, job_id: int, tallies: list[Tally], shots: int) -> None:
    started = sum(tally.started for tally in tallies)
    finished = sum(tally.finished for tally in tallies)
    requeued = sum(tally.requeued for tally in tallies)
    with db.read() as connection:
        events = connection.execute(
            sa.select(Event.c.kind, Event.c.shot_id, Event.c.render_id, Event.c.old_state, Event.c.new_state)
            .where(Event.c.job_id == job_id)
            .order_by(Event.c.id)
        ).all()
        renders = connection.execute(
            sa.select(Render.c.id, Render.c.shot_id, Render.c.attempt_no, Render.c.state)
        ).all()
        shot_rows = connection.execute(
            sa.select(Shot.c.id, Shot.c.state, Shot.c.attempts, Shot.c.current_render_id, Shot.c.gpu_seconds).where(
                Shot.c.job_id == job_id
            )
        ).all()

    # Exactly one event per won transition (finishing logs the attempt and the shot): none lost, none doubled.
    kinds = Counter(event.kind for event in events if event.kind != "job.state")
    assert kinds == Counter(
        {
            "job.submitted": 1,
            "shot.created": shots,
            "shot.started": started,
            "render.finished": finished,
            "shot.finished": finished,
            "shot.requeued": requeued,
        }
    )
    assert started > 0 and finished > 0 and sum(sum(tally.lost.values()) for tally in tallies) > 0

    # Every attempt is a row, numbered 1..n per shot, and each finished at most once.
    assert len(renders) == started
    by_shot: dict[int, list[int]] = defaultdict(list)
    for render in renders:
        by_shot[render.shot_id].append(render.attempt_no)
    finishes_per_render = Counter(event.render_id for event in events if event.kind == "render.finished")
    assert max(finishes_per_render.values()) == 1
    assert {render.id for render in renders if render.state is not AttemptState.RUNNING} == set(finishes_per_render)

    # The job's moves (the driver's start, then each settling after a shot move) chain up to where the row is.
    job_moves = [(event.old_state, event.new_state) for event in events if event.kind == "job.state"]
    assert job_moves[0] == ("queued", "rendering")
    assert all(later[0] == earlier[1] for earlier, later in itertools.pairwise(job_moves)), job_moves
    with db.read() as connection:
        assert job_moves[-1][1] == connection.execute(sa.select(Job.c.state).where(Job.c.id == job_id)).scalar_one()

    # Each shot's events form one unbroken chain of states ending where the row is.
    chains: dict[int, list[tuple[str | None, str | None]]] = defaultdict(list)
    for event in events:
        if event.shot_id is not None and event.kind.startswith("shot."):
            chains[event.shot_id].append((event.old_state, event.new_state))
    for shot in shot_rows:
        chain = chains[shot.id]
        assert all(later[0] == earlier[1] for earlier, later in itertools.pairwise(chain)), chain
        assert chain[-1][1] == shot.state.value
        assert sorted(by_shot[shot.id]) == list(range(1, shot.attempts + 1))
        running = [render.id for render in renders if render.shot_id == shot.id and render.state == "running"]
        assert running == ([shot.current_render_id] if shot.state is ShotState.RUNNING else [])
    assert sum(shot.gpu_seconds for shot in shot_rows) == float(finished)


def run_race(db: Database, plan: Plan, threads: int, attempts_per_thread: int) -> None:
    job_id = submit_plan(db, plan, submitted_by="t", quality="preview")
    transition_job(db, job_id, JobState.RENDERING, by="driver")
    tallies = race(db, job_id, threads, attempts_per_thread)
    check_consistency(db, job_id, tallies, shots=len(plan.tasks))


def test_eight_postgresql_writers_racing_on_the_same_shots_win_each_transition_once(
    postgres_database: Database, plan: Plan
) -> None:
    run_race(postgres_database, plan, threads=8, attempts_per_thread=500)


def test_sqlite_writers_on_separate_connections_win_each_transition_once(tmp_path: Path, plan: Plan) -> None:
    with open_database(f"sqlite:///{tmp_path / 'farm.db'}") as db:
        run_race(db, plan, threads=4, attempts_per_thread=100)


def test_only_one_of_many_simultaneous_claims_of_a_shot_wins(database: Database, make_job: Callable[..., int]) -> None:
    job_id = make_job(database)
    with database.read() as connection:
        pk = connection.execute(sa.select(Shot.c.id).where(Shot.c.job_id == job_id).limit(1)).scalar_one()
    results: list[str] = []
    barrier = threading.Barrier(6)

    def claim(index: int) -> None:
        barrier.wait()
        try:
            start_attempt(database, pk, worker=f"w{index}", node="n", device="cuda:0", by=f"w{index}")
            results.append("won")
        except LostRace:
            results.append("lost")

    run_threads(claim, 6)
    assert sorted(results) == ["lost"] * 5 + ["won"]


def test_simultaneous_records_of_one_artifact_keep_one_row(database: Database) -> None:
    ids: list[int] = []
    barrier = threading.Barrier(6)

    def record(index: int) -> None:
        barrier.wait()
        ids.append(
            record_artifact(
                database,
                ArtifactRecord("9" * 64, ArtifactKind.SHOT_VIDEO, f"/store/{index}.mp4", index, "0" * 64, 25, 1.0),
            )
        )

    run_threads(record, 6)
    with database.read() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(Artifact)).scalar_one()
    assert rows == 1
    assert len(ids) == 6 and len(set(ids)) == 1


def run_threads(target: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_only_one_of_many_drivers_resuming_a_job_takes_it(database: Database, make_job: Callable[..., int]) -> None:
    job_id = make_job(database)
    won: list[str] = []
    barrier = threading.Barrier(6)

    def claim(index: int) -> None:
        barrier.wait()
        if claim_driver(database, job_id, f"driver-{index}", stale_after=60):
            won.append(f"driver-{index}")

    run_threads(claim, 6)
    assert len(won) == 1
    with database.read() as connection:
        assert connection.execute(sa.select(Job.c.driver_id).where(Job.c.id == job_id)).scalar_one() == won[0]
