"""Costs learned, not guessed (issue 19 part 3): every attempt records what it ran on, the farm fits a cost
model per model x GPU type x size from them, and uses it for placement on GPUs of different speeds, the ETA
and ``farm plan``.

The cost model and placement are pure and tested on their own; the end-to-end test renders a 60-shot job of
varied lengths on a real Ray cluster of two fake GPU nodes at 1x and 3x speed (tests/cost_farm.py: how the
ideal makespan is computed) against a real SQLite database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from farm.catalog import ModelCatalog
from farm.db.costs import FALLBACK, CostModel, learned_costs
from farm.db.jobs import transition_job
from farm.db.queries import job_detail, shots_of_job
from farm.db.records import ShowChange
from farm.db.session import Database, open_database
from farm.db.shots import AttemptRun, finish_attempt, report_progress, start_logged_attempt
from farm.db.shows import set_show
from farm.db.states import AttemptState, JobState, ShotState
from farm.db.tables import Render
from farm.engine.placement import Lane, choose, remaining
from farm.jobs.estimate import MEASURED, plan_cost
from farm.jobs.submit import submit_shot_list
from farm.plan import ShotTask
from farm.settings import REPO_ROOT, resolve_settings
from tests.cost_farm import SPEEDS, mixed_speed_cluster, render_mixed
from tests.shotlists import TEMPLATE, make_project

SECONDS_PER_FRAME = 0.08
"""At 1x; the shots are 4-20 frames: about 58 s of 1x work, 15 s on the two GPUs together."""


def test_the_cost_model_fits_seconds_per_shot_and_per_frame_and_falls_back_along_its_chain() -> None:
    costs = CostModel(fallback=lambda model: 0.5)
    costs.observe("m", "fast", 100, 100, 10, 9.0, load_seconds=4.0)  # a worker's first: its load, not its rate
    for frames in (10, 15, 20, 30, 40):
        costs.observe("m", "fast", 100, 100, frames, 0.3 + 0.01 * frames)
    costs.observe("m", "slow", 100, 100, 20, 0.6)

    exact = costs.estimate("m", "fast", 100, 100, 30)
    assert exact.source == "model x gpu x size" and exact.samples == 5
    assert exact.per_shot == pytest.approx(0.3) and exact.seconds == pytest.approx(0.6)
    slow = costs.estimate("m", "slow", 100, 100, 40)  # one sample: a ratio, no intercept
    assert slow.per_shot == 0.0 and slow.seconds == pytest.approx(1.2)
    bigger = costs.estimate("m", "fast", 200, 100, 30)  # another size: scaled by pixels
    assert bigger.source == "model x gpu" and bigger.seconds == pytest.approx(0.3 + 0.02 * 30)
    unseen = costs.estimate("m", "new", 100, 100, 30)  # a new GPU type: the model's other GPUs
    assert unseen.source == "model x size" and unseen.samples == 6
    assert costs.estimate("other", "fast", 100, 100, 30).source == FALLBACK
    assert costs.estimate("other", "fast", 100, 100, 30).seconds == pytest.approx(15.0)
    assert costs.load_seconds("m", "fast") == 4.0 and costs.load_seconds("m", "slow") == 4.0
    assert costs.gpu_types("m") == ["fast", "slow"]


def test_a_shots_step_count_picks_the_costs_measured_at_those_steps_before_all_steps_pooled() -> None:
    costs = CostModel()
    costs.observe("m", "gpu", 100, 100, 20, 8.0, steps=40)  # the full recipe
    costs.observe("m", "gpu", 100, 100, 20, 1.0, steps=4)  # distilled: 4 steps, one guidance pass

    distilled = costs.estimate("m", "gpu", 100, 100, 20, steps=4)
    full = costs.estimate("m", "gpu", 100, 100, 20, steps=40)
    escalated = costs.estimate("m", "gpu", 100, 100, 20, steps=60)  # never measured: every step count pooled

    assert (distilled.seconds, distilled.source) == (pytest.approx(1.0), "model x gpu x size x steps")
    assert full.seconds == pytest.approx(8.0) and full.source == "model x gpu x size x steps"
    assert (escalated.seconds, escalated.source) == (pytest.approx(4.5), "model x gpu x size")
    assert costs.estimate("m", "gpu", 200, 100, 20, steps=4).source == "model x gpu x steps"


def test_placement_gives_a_shot_to_the_lane_that_finishes_it_first_and_waits_for_a_faster_full_one() -> None:
    slow_free = Lane("slow", ahead=0.0, takes=3.0, open=True)
    fast_soon = Lane("fast", ahead=0.5, takes=1.0, open=False)
    assert choose([slow_free, fast_soon]) is None  # 1.5 s on the busy fast GPU beats 3 s on the idle slow one
    short = [Lane("slow", 0.0, 0.82, True), Lane("fast", 0.5, 0.3, False)]
    assert choose(short).name == "slow"  # 0.82 s now vs 0.8 s later: within the tie margin
    assert choose([slow_free, Lane("fast", 2.5, 1.0, False)]).name == "slow"
    assert choose([Lane("a", 0.0, 1.0, True, load=1), Lane("b", 0.0, 1.0, True, load=0)]).name == "b"
    assert remaining(2.0, None, 10.0) == 2.0 and remaining(2.0, 9.5, 10.0) == 1.5 and remaining(2.0, 0.0, 10.0) == 0


def test_farm_plan_and_the_eta_use_the_costs_learned_per_gpu_type(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = resolve_settings(data_dir=tmp_path / "data", database_url=database_url, models_dir=REPO_ROOT / "models")
    submission = submit_shot_list(database, settings, make_project(tmp_path / "p", TEMPLATE))
    job = submission.job_id
    transition_job(database, job, JobState.RENDERING, by="test", expected={JobState.QUEUED})
    shots = {row.shot_id: (row.pk, ShotTask.from_json(row.spec)) for row in shots_of_job(database, job)}

    def attempt(shot_id: str, gpu: str) -> int:
        pk, task = shots[shot_id]
        run = AttemptRun(task.model, gpu, task.width, task.height, task.frames, task.steps, {"steps": task.steps})
        return start_logged_attempt(
            database, pk, worker=f"w-{gpu}", node="n", device="cuda", by="test", run=run
        ).render_id

    for shot_id, gpu, rate in (("a", "gpu-a", 0.1), ("b", "gpu-b", 0.3)):
        seconds = rate * shots[shot_id][1].frames
        finish_attempt(
            database, attempt(shot_id, gpu), outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, by="test",
            model_seconds=seconds, gpu_seconds=seconds,
        )  # fmt: skip

    cost = plan_cost(submission.plan, database, ModelCatalog.for_settings(settings))
    learned = cost.rates["previz"]
    assert (learned.source, learned.measured_attempts, learned.level) == (MEASURED, 2, "model x size x steps")
    assert learned.by_gpu == pytest.approx({"gpu-a": 0.1, "gpu-b": 0.3}) and learned.load_seconds is None
    frames = {shot_id: task.frames for shot_id, (_, task) in shots.items()}
    mean = (0.1 * frames["a"] + 0.3 * frames["b"]) / (frames["a"] + frames["b"])
    assert cost.gpu_hours == pytest.approx(mean * sum(frames.values()) / 3600)

    running = attempt("c", "gpu-a")  # the ETA: shot c on the gpu-a worker, at gpu-a's learned rate
    assert job_detail(database, job).job.eta_seconds == pytest.approx(0.1 * frames["c"])
    report_progress(database, running, 0.5, "denoise")
    assert job_detail(database, job).job.eta_seconds == pytest.approx(0.05 * frames["c"])

    # The show's budget against the same learned costs: spent (a, b), still to spend (half of c and the
    # queued rest), and this plan (every shot but the two done), which overruns what is left by a quarter.
    used = (0.1 * frames["a"] + 0.3 * frames["b"]) / 3600
    committed = mean * (sum(frames.values()) - frames["a"] - frames["b"] - 0.5 * frames["c"]) / 3600
    plan_hours = plan_cost(submission.plan, database, ModelCatalog.for_settings(settings)).gpu_hours
    set_show(database, "Test Show", ShowChange(gpu_hour_budget=used + committed + 0.75 * plan_hours), by="test")
    outlook = plan_cost(submission.plan, database, ModelCatalog.for_settings(settings)).budget
    assert outlook is not None and outlook.exceeds
    assert (outlook.used_hours, outlook.committed_hours) == (pytest.approx(used), pytest.approx(committed))
    assert outlook.after_plan_hours == pytest.approx(-0.25 * plan_hours)
    assert "would exceed it by" in outlook.describe() and "--gpu-hour-budget" in outlook.describe()


@pytest.mark.ray
def test_on_gpus_of_1x_and_3x_speed_a_60_shot_job_ends_near_the_ideal_and_its_eta_holds(tmp_path: Path) -> None:
    with mixed_speed_cluster() as cluster:
        run = render_mixed(tmp_path, cluster, seconds_per_frame=SECONDS_PER_FRAME, min_frames=4, max_frames=20)
    print(
        f"makespan {run.makespan:.2f} s, ideal {run.ideal:.2f} s (fluid {run.fluid:.2f}, longest {run.longest:.2f}): "
        f"{run.over_ideal:+.1%}; ETA after 10 shots {run.eta:.2f} s vs {run.eta_actual:.2f} s: {run.eta_error:.1%}; "
        f"shots {run.shots_by_gpu}, frames {run.frames_by_gpu}"
    )
    assert run.over_ideal <= 0.10
    assert run.eta is not None and run.eta_error <= 0.15
    assert run.frames_by_gpu["fake-3x"] > 2 * run.frames_by_gpu["fake-1x"]

    db = open_database(f"sqlite:///{tmp_path / 'farm.db'}", data_dir=tmp_path / "data")
    try:
        with db.read() as connection:
            rows = connection.execute(select(Render).where(Render.c.state == AttemptState.SUCCEEDED)).all()
        assert len(rows) == 60
        assert sorted(row.worker for row in rows if row.load_seconds is not None) == ["pattern-0", "pattern-1"]
        for row in rows:  # every attempt says what it ran, on what, and how long it took
            assert (row.model, row.width, row.height, row.steps) == ("pattern", 64, 64, 1)
            assert row.gpu_type in ("fake-1x", "fake-3x") and row.frames >= 4
            assert row.model_seconds > 0 and row.levers["seconds_per_frame"] == SECONDS_PER_FRAME
            assert row.levers["recipe"] == "full" and row.levers["applied"]["speed"] == SPEEDS[row.gpu_type]
            assert row.timings["render"] > 0 and row.timings["encode"] > 0
        costs = learned_costs(db)
        fast = costs.estimate("pattern", "fake-3x", 64, 64, 20).seconds
        slow = costs.estimate("pattern", "fake-1x", 64, 64, 20).seconds
        assert 2.0 < slow / fast < 3.5  # learned, never told: 3x on the sleeps, less the per-shot work
    finally:
        db.dispose()
