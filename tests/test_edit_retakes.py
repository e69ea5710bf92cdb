"""The retake planner: which shots to render again, with which seed and conditioning, and when to stop."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from farm.edit.checks.base import CheckResult, Subject, Verdict
from farm.edit.retakes import RetakeMode, plan_retakes, retake_seed
from farm.edit.timeline import EditShot
from farm.media.audio import AudioSlice
from farm.shotlist.types import CheckPolicy


def shot(shot_id: str, scene: str, character: str, *, seed: int = 42, continues: str | None = None) -> EditShot:
    audio = AudioSlice("t", Path("t.wav"), 0, 16_000, "x")
    return EditShot(
        shot_id,
        scene,
        character,
        0,
        Path(f"{shot_id}.mp4"),
        "k",
        25,
        Fraction(25),
        audio,
        seed=seed,
        continues=continues,
    )


def failed(check: str, shot_id: str, *, retake: bool = True) -> CheckResult:
    return CheckResult(
        check=check,
        subject=Subject.shot(shot_id),
        measured=1.0,
        threshold=0.5,
        unit="",
        verdict=Verdict.FAIL,
        policy=CheckPolicy.RETAKE if retake else CheckPolicy.FAIL,
        message="",
        retake=(shot_id,) if retake else (),
    )


SHOTS = [
    shot("a1", "sc01", "marcus"),
    shot("b1", "sc01", "walter"),
    shot("a2", "sc01", "marcus"),
    shot("b2", "sc02", "walter", continues=None),
    shot("a3", "sc02", "marcus", continues=None),
]


def test_retake_seeds_are_deterministic_and_differ_per_attempt() -> None:
    assert retake_seed(42, 1) == retake_seed(42, 1)
    assert len({retake_seed(42, attempt) for attempt in range(1, 6)} | {42}) == 6
    assert 0 <= retake_seed(42, 1) < 2**31


def test_a_drifted_look_is_retaken_conditioned_on_the_previous_shot_of_the_person() -> None:
    plan = plan_retakes([failed("identity", "a2")], SHOTS, max_retakes=2)

    (retake,) = plan.retakes
    assert (retake.shot_id, retake.mode, retake.continues, retake.attempt) == ("a2", RetakeMode.CONTINUE, "a1", 1)
    assert retake.seed == retake_seed(42, 1) and retake.checks == ("identity",)


def test_a_shot_with_nothing_to_continue_from_gets_a_new_seed() -> None:
    plan = plan_retakes([failed("identity", "a3"), failed("black_frames", "b1")], SHOTS, max_retakes=2)

    assert [(r.shot_id, r.mode, r.continues) for r in plan.retakes] == [
        ("b1", RetakeMode.NEW_SEED, None),
        ("a3", RetakeMode.NEW_SEED, None),
    ]


def test_a_shot_that_already_continues_keeps_its_conditioning() -> None:
    shots = [shot("a1", "sc01", "marcus"), shot("a2", "sc01", "marcus", continues="a1", seed=7)]

    (retake,) = plan_retakes([failed("colour", "a2")], shots, max_retakes=1).retakes

    assert (retake.mode, retake.continues, retake.seed) == (RetakeMode.NEW_SEED, "a1", retake_seed(7, 1))


def test_retakes_stop_at_the_cap_and_the_shot_is_reported_exhausted() -> None:
    results = [failed("window_seam", "b1"), failed("identity", "b1")]

    second = plan_retakes(results, SHOTS, max_retakes=2, attempts={"b1": 1})
    over = plan_retakes(results, SHOTS, max_retakes=2, attempts={"b1": 2})

    assert [(r.shot_id, r.attempt, r.checks) for r in second.retakes] == [("b1", 2, ("window_seam", "identity"))]
    assert over.retakes == () and over.exhausted == ("b1",)


def test_failures_without_a_retake_policy_plan_nothing() -> None:
    plan = plan_retakes([failed("audio_gap", "b1", retake=False)], SHOTS, max_retakes=2)

    assert plan.retakes == () and plan.exhausted == ()
