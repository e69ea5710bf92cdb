"""One N-GPU shot only where it ends the night sooner than N one-GPU shots."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.catalog import ContextParallel, load_manifest
from farm.engine.gang import choose_gpus, gang_bundles
from farm.errors import ManifestError
from farm.settings import SHIPPED_MODELS_DIR

POLICY = ContextParallel(degrees=(2, 4, 8), min_frames=81)
MEASURED = {2: 0.95, 4: 0.9, 8: 0.85}


def test_a_long_shot_alone_at_the_end_of_the_night_takes_all_eight_gpus() -> None:
    choice = choose_gpus(241, shot_seconds=800, queued_seconds=0, free_gpus=8, policy=POLICY, efficiency=MEASURED)
    assert choice.gpus == 8
    assert choice.night_seconds < 800 / 8 / 0.8


def test_a_full_queue_keeps_every_shot_on_one_gpu() -> None:
    choice = choose_gpus(241, shot_seconds=100, queued_seconds=10_000, free_gpus=8, policy=POLICY, efficiency=MEASURED)
    assert choice.gpus == 1


def test_a_shot_longer_than_the_rest_of_the_queue_spread_out_splits_just_enough() -> None:
    choice = choose_gpus(481, shot_seconds=1000, queued_seconds=6000, free_gpus=8, policy=POLICY, efficiency=MEASURED)
    assert choice.gpus == 2
    assert "sooner" in choice.reason


def test_short_shots_unmeasured_degrees_and_models_without_the_section_stay_on_one_gpu() -> None:
    assert choose_gpus(33, 800, 0, 8, POLICY, MEASURED).gpus == 1
    assert choose_gpus(241, 800, 0, 8, POLICY, {}).gpus == 1
    assert choose_gpus(241, 800, 0, 8, None, MEASURED).reason == "the model has no context_parallel section"
    assert choose_gpus(241, 800, 0, 3, POLICY, MEASURED).gpus == 2


def test_a_gang_is_one_gpu_bundle_per_rank() -> None:
    assert gang_bundles(4, 2) == [{"GPU": 1.0, "CPU": 2.0}] * 4


def manifest_with(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "stableavatar-1.3b.yaml"
    path.write_text((SHIPPED_MODELS_DIR / "stableavatar-1.3b.yaml").read_text() + section)
    return path


def test_a_manifest_says_which_gpu_counts_a_shot_may_be_split_over(tmp_path: Path) -> None:
    manifest = load_manifest(manifest_with(tmp_path, "context_parallel:\n  degrees: [4, 2, 8]\n  min_frames: 81\n"))
    assert manifest.context_parallel == ContextParallel(degrees=(2, 4, 8), min_frames=81)
    assert load_manifest(SHIPPED_MODELS_DIR / "stableavatar-1.3b.yaml").context_parallel is None


@pytest.mark.parametrize(
    ("section", "field", "message"),
    [
        ("context_parallel:\n  degrees: [1, 2]\n", "degrees", "must list GPU counts of at least 2"),
        ("context_parallel:\n  degrees: [2]\n  min_frames: -5\n", "min_frames", "whole number of at least 0"),
        ("context_parallel:\n  degrees: [2]\n  ring: true\n", "ring", "ring is not a field"),
    ],
)
def test_a_bad_context_parallel_section_is_refused_at_its_line(
    tmp_path: Path, section: str, field: str, message: str
) -> None:
    path = manifest_with(tmp_path, section)
    line = next(
        number for number, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith(field)
    )
    with pytest.raises(ManifestError) as refused:
        load_manifest(path)
    assert f"{path}:{line}:" in str(refused.value) and message in str(refused.value)
