"""Planning: frames, sample-exact audio slices, dependencies and content-addressed cache keys."""

from __future__ import annotations

import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from farm.catalog import ModelCatalog, Quality, load_manifest
from farm.errors import ManifestError, ShotListError
from farm.media.audio import cut_audio, samples_digest
from farm.plan import ModelIdentities, Plan, escalated, escalation_ladder, plan_shot_list, task_cache_key
from farm.settings import REPO_ROOT
from farm.shotlist.load import load_shot_list
from tests.shotlists import TEMPLATE, make_project, replace_once

CATALOG = ModelCatalog(REPO_ROOT / "models")


def plan_text(root: Path, text: str = TEMPLATE) -> Plan:
    return plan_shot_list(load_shot_list(make_project(root, text), catalog=CATALOG), CATALOG)


def keys(plan: Plan) -> dict[str, str]:
    return {task.shot_id: task.cache_key for task in plan.tasks}


def test_frames_and_audio_slices_are_sample_exact(tmp_path: Path) -> None:
    plan = plan_text(tmp_path)
    a, b, c = plan.tasks

    assert [t.frames for t in plan.tasks] == [59, 55, 78]
    assert (a.audio.start_sample, a.audio.end_sample) == (0, 37_760)
    assert (b.audio.start_sample, b.audio.end_sample) == (37_760, 37_760 + 55 * 640)
    assert c.audio.start_sample == 4.56 * 16_000
    for task in plan.tasks:  # every slice lasts exactly its frames at the output rate
        assert Fraction(task.audio.end_sample - task.audio.start_sample, 16_000) == Fraction(task.frames) / task.fps
    samples = cut_audio(a.audio.path, a.audio.sample_range)
    assert samples.shape == (37_760,) and samples_digest(samples) == a.audio.sha256


def test_edit_order_dependencies_and_model(tmp_path: Path) -> None:
    plan = plan_text(tmp_path)

    assert [(t.order, t.shot_id, t.depends_on) for t in plan.tasks] == [(0, "a", ()), (1, "b", ()), (2, "c", ("a",))]
    assert {t.model for t in plan.tasks} == {"previz"}
    assert {t.quality for t in plan.tasks} == {Quality.PREVIEW}
    assert plan.tasks[0].seed == 7


def test_non_frame_aligned_cut_is_rounded_to_whole_frames(tmp_path: Path) -> None:
    plan = plan_text(tmp_path, replace_once(TEMPLATE, "out: 2.36}", "out: 2.371}"))

    assert plan.tasks[0].frames == 59
    assert plan.tasks[0].audio.end_sample == 37_760


def test_same_inputs_give_the_same_keys_wherever_the_project_lives(tmp_path: Path) -> None:
    first = plan_text(tmp_path / "one")
    again = plan_text(tmp_path / "one")
    elsewhere = plan_text(tmp_path / "two")

    assert keys(first) == keys(again) == keys(elsewhere)
    assert len(set(keys(first).values())) == 3


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ("move: push_in, intensity: 30%", "move: push_in, intensity: 31%", {"a"}),  # previz ignores continuations
        ("move: push_in", "move: pan_left", {"a"}),
        ("in: 4.56, out: 7.68", "in: 4.6, out: 7.68", {"c"}),
        ("seed: 7", "seed: 8", {"a", "b", "c"}),
        ("width: 480", "width: 512", {"a", "b", "c"}),
        ("fps: 25", "fps: 24", {"a", "b", "c"}),
    ],
)
def test_a_pixel_changing_edit_changes_exactly_the_affected_keys(
    tmp_path: Path, old: str, new: str, changed: set[str]
) -> None:
    before = keys(plan_text(tmp_path / "before"))
    after = keys(plan_text(tmp_path / "after", replace_once(TEMPLATE, old, new)))

    assert {shot for shot in before if before[shot] != after[shot]} == changed


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("project: Test Show", "project: Renamed Show"),
        ("prompt: A man speaks", "prompt: A man speaks\n        notes: director likes this one"),
        ("    image: media/walter.jpg", "    image: media/walter.jpg\n    description: grey hair"),
        # what previz does not read: a preview re-renders nothing for these
        ("prompt: Another man answers", "prompt: Another man shouts"),
        ("prompt: A man speaks", "prompt: A man whispers"),
        ("prompt: The first man again", "prompt: The first man again\n        negative_prompt: blur"),
        ("quality: preview", "quality: preview\n  steps: 3"),
    ],
)
def test_edits_that_do_not_change_pixels_keep_the_keys(tmp_path: Path, old: str, new: str) -> None:
    before = keys(plan_text(tmp_path / "before"))
    after = keys(plan_text(tmp_path / "after", replace_once(TEMPLATE, old, new)))

    assert before == after


FINAL = replace_once(TEMPLATE, "quality: preview", "quality: final\n  model: tiny-avatar")


def plan_final(root: Path, text: str = FINAL) -> Plan:
    """``text`` planned at final quality on tiny-avatar, whose weights folder only needs to exist to be hashed."""
    weights = root / "weights" / "tiny-avatar"
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "model_index.json").write_text("{}")
    catalog = ModelCatalog(REPO_ROOT / "models", weights_dir=root / "weights")
    return plan_shot_list(load_shot_list(make_project(root, text), catalog=catalog), catalog)


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ("prompt: Another man answers", "prompt: Another man shouts", {"b"}),
        ("prompt: A man speaks", "prompt: A man whispers", {"a", "c"}),  # c continues a
        ("move: push_in", "move: pan_left", {"a", "c"}),
        ("prompt: The first man again", "prompt: The first man again\n        negative_prompt: blur", {"c"}),
        ("model: tiny-avatar", "model: tiny-avatar\n  steps: 3", {"a", "b", "c"}),
    ],
)
def test_at_final_quality_the_prompt_steps_and_continuation_change_the_keys(
    tmp_path: Path, old: str, new: str, changed: set[str]
) -> None:
    before = keys(plan_final(tmp_path / "before"))
    after = keys(plan_final(tmp_path / "after", replace_once(FINAL, old, new)))

    assert {shot for shot in before if before[shot] != after[shot]} == changed


def test_switching_a_shot_list_from_preview_to_final_re_keys_every_shot(tmp_path: Path) -> None:
    preview = keys(plan_text(tmp_path / "preview"))
    final = keys(plan_final(tmp_path / "final"))
    same_model = replace_once(FINAL, "quality: final", "quality: preview\n  preview_model: tiny-avatar")
    previewed_on_the_final_model = keys(plan_final(tmp_path / "same-model", same_model))

    assert all(preview[shot] != final[shot] for shot in preview)
    assert all(previewed_on_the_final_model[shot] != final[shot] for shot in final)  # the tier is keyed too


def test_a_changed_portrait_pixel_changes_the_keys_of_its_shots(tmp_path: Path) -> None:
    before = keys(plan_text(tmp_path / "before"))
    make_project(tmp_path / "after")
    portrait = tmp_path / "after" / "media" / "walter.jpg"
    pixels = np.asarray(Image.open(portrait)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(portrait.with_suffix(".png"))
    after = keys(plan_text(tmp_path / "after", replace_once(TEMPLATE, "media/walter.jpg", "media/walter.png")))

    assert {shot for shot in before if before[shot] != after[shot]} == {"b"}


def test_changed_audio_samples_change_the_keys_of_the_shots_that_hear_them(tmp_path: Path) -> None:
    before = keys(plan_text(tmp_path / "before"))
    make_project(tmp_path / "after")
    track = tmp_path / "after" / "media" / "sc01_dialogue.wav"
    data = bytearray(track.read_bytes())
    sample_offset = 44 + 2 * 50_000  # a sample inside shot b (samples 37,760..72,960)
    data[sample_offset] ^= 0x40
    track.write_bytes(bytes(data))
    after = keys(plan_text(tmp_path / "after"))

    assert {shot for shot in before if before[shot] != after[shot]} == {"b"}


def test_quality_override_switches_every_shot_to_that_tier(tmp_path: Path) -> None:
    shot_list = load_shot_list(make_project(tmp_path), catalog=CATALOG)
    preview = plan_shot_list(shot_list, CATALOG, quality=Quality.PREVIEW)
    with pytest.raises(ShotListError) as failure:  # the final model's weights are not installed here
        plan_shot_list(shot_list, CATALOG, quality=Quality.FINAL)

    assert {t.quality for t in preview.tasks} == {Quality.PREVIEW}
    assert {t.model for t in preview.tasks} == {Quality.PREVIEW.default_model}
    message = str(failure.value)
    assert "ep.yaml:22:1: shot a: model:" in message and "stableavatar-1.3b" in message


def test_plan_json_lists_every_shot_with_frames_slice_and_key(tmp_path: Path) -> None:
    payload = plan_text(tmp_path).to_json()

    assert [shot["shot"] for shot in payload["shots"]] == ["a", "b", "c"]
    first = payload["shots"][0]
    assert first["frames"] == 59
    assert first["audio"]["start_sample"] == 0 and first["audio"]["end_sample"] == 37_760
    assert first["audio"]["sample_rate"] == 16_000
    assert len(first["cache_key"]) == 64
    assert payload["total_frames"] == 59 + 55 + 78


def test_a_task_survives_its_json_round_trip(tmp_path: Path) -> None:
    from farm.plan import ShotTask

    plan = plan_text(tmp_path, replace_once(TEMPLATE, "fps: 25", "fps: 29.97"))

    assert [ShotTask.from_json(task.to_json()) for task in plan.tasks] == list(plan.tasks)


def test_demo_plans(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "shots" / "demo", demo)
    plan = plan_shot_list(load_shot_list(demo / "episode.yaml", catalog=CATALOG), CATALOG)

    assert len(plan.tasks) == 7
    assert all(task.frames > 0 for task in plan.tasks)


def final_on(
    model: str, root: Path, models_dir: Path = REPO_ROOT / "models", lora: str | None = None
) -> tuple[Plan, ModelCatalog]:
    """The template planned at final quality on ``model``, whose weights folder only needs to exist (with the
    file ``lora`` in it when given)."""
    weights = root / "weights" / model
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "model_index.json").write_text("{}")
    if lora is not None:
        (weights / lora).parent.mkdir(parents=True, exist_ok=True)
        (weights / lora).write_bytes(b"lora")
    catalog = ModelCatalog(models_dir, weights_dir=root / "weights")
    text = replace_once(TEMPLATE, "quality: preview", f"quality: final\n  model: {model}")
    return plan_shot_list(load_shot_list(make_project(root, text), catalog=catalog), catalog), catalog


def test_the_escalation_ladder_climbs_only_the_rungs_that_change_a_shots_recipe(tmp_path: Path) -> None:
    lora = load_manifest(REPO_ROOT / "models" / "stableavatar-1.3b.yaml").distilled.lora
    full_plan, full_catalog = final_on("stableavatar-1.3b", tmp_path / "full")
    distilled_plan, catalog = final_on("stableavatar-1.3b", tmp_path / "distilled", lora=lora)
    full, fast = full_plan.tasks[0], distilled_plan.tasks[0]
    manifest = catalog.get("stableavatar-1.3b")

    assert (full.steps, fast.steps, fast.text_guidance, fast.audio_guidance) == (40, 4, 1.0, 1.0)
    assert escalation_ladder(full, full_catalog.get(full.model)) == ((2, "more steps (steps 40 -> 60)"),)
    assert escalation_ladder(fast, manifest) == (
        (1, f"non-distilled (steps 4 -> 40, text guidance 1 -> 3, audio guidance 1 -> 5, flow_shift 3.0 -> null, "
            f"lora {lora} -> null)"),
        (2, "more steps (steps 40 -> 60)"),
    )  # fmt: skip
    climbed = escalated(fast, manifest, 1)
    assert (climbed.steps, climbed.text_guidance, climbed.audio_guidance, climbed.escalation) == (40, 3.0, 5.0, 1)
    assert escalation_ladder(climbed, manifest) == ((2, "more steps (steps 40 -> 60)"),)
    identities = ModelIdentities(catalog, None)
    assert identities.identity(manifest, 1).render_params["lora"] is None
    climbed_key = task_cache_key(climbed, identities.identity(manifest, 1), None)
    assert climbed_key != task_cache_key(replace(climbed, escalation=0), identities.identity(manifest), None)
    assert fast.cache_key != full.cache_key  # the distilled recipe's pixels are not the full recipe's


def test_a_misspelt_escalation_rung_is_refused_naming_the_manifest_and_the_field(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("name: m\nadapter: previz\nquality: preview\nescalation:\n  - name: more\n    stpes: 4\n")

    with pytest.raises(ManifestError, match=r"m\.yaml: escalation rung 1: unknown field\(s\) stpes"):
        load_manifest(manifest)
