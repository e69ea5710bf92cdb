"""The retake planner: which shots to render again, chosen by what failed, why, and when to stop."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from farm.edit.checks.base import CheckResult, Subject, Verdict
from farm.edit.retakes import Escalation, RetakeMode, plan_retakes, retake_seed
from farm.edit.timeline import EditShot
from farm.media.audio import AudioSlice
from farm.shotlist.types import CheckPolicy


def shot(
    shot_id: str,
    scene: str,
    character: str,
    *,
    seed: int = 42,
    continues: str | None = None,
    from_reference: bool = False,
) -> EditShot:
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
        from_reference=from_reference,
    )


def failed(check: str, shot_id: str, *, retake: bool = True, unfixable: str = "") -> CheckResult:
    return CheckResult(
        check=check,
        subject=Subject.shot(shot_id),
        measured=1.0,
        threshold=0.5,
        unit="",
        verdict=Verdict.FAIL,
        policy=CheckPolicy.RETAKE if retake else CheckPolicy.FAIL,
        message="",
        retake=(shot_id,) if retake and not unfixable else (),
        unfixable=unfixable,
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

    (retake,) = plan_retakes([failed("identity", "a2")], shots, max_retakes=1).retakes

    assert (retake.mode, retake.continues, retake.seed) == (RetakeMode.NEW_SEED, "a1", retake_seed(7, 1))
    assert not retake.from_reference


def test_a_colour_jump_after_a_continuation_is_retaken_from_the_reference_not_the_previous_frames() -> None:
    shots = [shot("a1", "sc01", "marcus"), shot("a2", "sc01", "marcus", continues="a1", seed=7)]

    (retake,) = plan_retakes([failed("colour", "a2")], shots, max_retakes=2).retakes

    assert (retake.mode, retake.from_reference, retake.continues) == (RetakeMode.FROM_REFERENCE, True, "a1")
    assert retake.seed == 7  # only the conditioning changes
    assert "reference portrait" in retake.reason and "a1's last frames" in retake.reason


def test_a_shot_already_rendered_from_its_reference_gets_a_new_seed_and_stays_off_the_continuation() -> None:
    shots = [shot("a1", "sc01", "marcus"), shot("a2", "sc01", "marcus", continues="a1", from_reference=True)]

    (retake,) = plan_retakes([failed("colour", "a2")], shots, max_retakes=2, attempts={"a2": 1}).retakes

    assert (retake.mode, retake.from_reference, retake.attempt) == (RetakeMode.NEW_SEED, True, 2)
    assert retake.seed == retake_seed(42, 2)


def test_a_wrong_portrait_is_not_retaken_and_is_listed_with_what_to_fix() -> None:
    why = "its reference portrait media/walter.jpg is itself another face; fix characters.marcus_double.image"

    plan = plan_retakes([failed("identity", "a3", unfixable=why)], SHOTS, max_retakes=2)

    assert plan.retakes == () and plan.exhausted == ()
    assert [(n.shot_id, n.check, n.reason) for n in plan.not_retaken] == [("a3", "identity", why)]


def test_every_retake_says_why_it_was_chosen() -> None:
    plan = plan_retakes([failed("identity", "a2"), failed("black_frames", "b1")], SHOTS, max_retakes=2)

    reasons = {retake.shot_id: retake.reason for retake in plan.retakes}
    assert reasons["b1"] == f"black_frames failed: retake 1 of 2 with new seed {retake_seed(42, 1)}"
    assert "continues a1, the previous shot of marcus in sc01" in reasons["a2"]
    assert plan.to_json()["retakes"][0]["reason"] == reasons["b1"]


def test_when_the_seeds_are_used_up_the_shot_climbs_its_models_escalation_ladder_then_gives_up() -> None:
    ladder = (Escalation(1, "more steps (steps 40 -> 60)"), Escalation(2, "non-distilled (lora x -> None)"))

    first = plan_retakes(
        [failed("identity", "b1")], SHOTS, max_retakes=2, attempts={"b1": 2}, escalations={"b1": ladder}
    )
    second = plan_retakes(
        [failed("identity", "b1")], SHOTS, max_retakes=2, attempts={"b1": 3}, escalations={"b1": ladder[1:]}
    )
    spent = plan_retakes([failed("identity", "b1")], SHOTS, max_retakes=2, attempts={"b1": 4}, escalations={"b1": ()})

    (climb,) = first.retakes
    assert (climb.mode, climb.escalation, climb.attempt, climb.seed) == (RetakeMode.ESCALATE, 1, 3, 42)
    assert "after 2 new-seed retake(s): escalate to more steps (steps 40 -> 60)" in climb.reason
    assert [(r.mode, r.escalation) for r in second.retakes] == [(RetakeMode.ESCALATE, 2)]
    assert spent.retakes == () and spent.exhausted == ("b1",)


def test_retakes_stop_at_the_cap_and_the_shot_is_reported_exhausted() -> None:
    results = [failed("window_seam", "b1"), failed("identity", "b1")]

    second = plan_retakes(results, SHOTS, max_retakes=2, attempts={"b1": 1})
    over = plan_retakes(results, SHOTS, max_retakes=2, attempts={"b1": 2})

    assert [(r.shot_id, r.attempt, r.checks) for r in second.retakes] == [("b1", 2, ("window_seam", "identity"))]
    assert over.retakes == () and over.exhausted == ("b1",)


def test_failures_without_a_retake_policy_plan_nothing() -> None:
    plan = plan_retakes([failed("audio_gap", "b1", retake=False)], SHOTS, max_retakes=2)

    assert plan.retakes == () and plan.exhausted == ()
