"""``/metrics`` scraped over HTTP from the real server and parsed with Prometheus' own parser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from farm.api.metrics import FarmCollector
from farm.db.jobs import transition_job
from farm.db.queries import shots_of_job
from farm.db.shots import finish_attempt, start_attempt
from farm.db.states import AttemptState, JobState, ShotState
from farm.plan import Plan
from farm.settings import REPO_ROOT
from farm.verdicts import Verdict
from tests.api_farm import ServedFarm, served
from tests.db_records import done_job, make_farm, submit_plan


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[ServedFarm]:
    farm = make_farm(database_url, tmp_path / "data")
    with farm, served(farm) as serving:
        yield serving


def scrape(api: ServedFarm) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and sorted labels."""
    response = api.call(None, "GET", "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_shots_gpu_time_cache_hits_failures_and_retakes(api: ServedFarm, plan: Plan) -> None:
    db = api.farm.database(write=True)
    done = done_job(db, plan, Verdict.PASS)  # 3 shots rendered, 10 GPU-s each
    queued = submit_plan(db, plan, submitted_by="alice", quality="preview")
    first = shots_of_job(db, queued)[0]
    transition_job(db, queued, JobState.RENDERING, by="driver")
    attempt = start_attempt(db, first.pk, worker="w", node="n", device="cpu", by="driver")
    finish_attempt(db, attempt, outcome=AttemptState.FAILED, shot_state=ShotState.QUEUED, by="driver",
                   error_class="RenderError", error_message="boom", gpu_seconds=4.0)  # fmt: skip
    api.farm.review(done, "retake", shots=["b"], comment="again", by="pat")

    metrics = scrape(api)

    model = plan.tasks[0].model
    by_state = {
        dict(labels)["state"]: value
        for (name, labels), value in metrics.items()
        if name == "farm_shots" and dict(labels)["model"] == model
    }
    assert by_state == {"done": 2, "queued": 4}, by_state  # b sent back; the second job's 3 shots wait
    frames = {task.shot_id: task.frames for task in plan.tasks}
    assert metrics["farm_frames_rendered_total", (("model", model),)] == frames["a"] + frames["c"]
    assert metrics["farm_gpu_seconds_per_frame", (("model", model),)] == pytest.approx(
        20.0 / (frames["a"] + frames["c"])
    )
    assert metrics["farm_gpu_seconds_total", (("model", model),)] == pytest.approx(34.0)  # b's first take was paid
    assert metrics["farm_attempts_total", (("state", "succeeded"),)] == 3
    assert metrics["farm_failures_total", (("error_class", "RenderError"),)] == 1
    assert metrics["farm_retries_total", ()] == 1
    assert metrics["farm_retakes_total", ()] == 1
    assert metrics["farm_jobs", (("state", "queued"),)] == 1 and metrics["farm_jobs", (("state", "rendering"),)] == 1
    assert not [key for key in metrics if key[0] == "farm_workers"], "no manager runs here, so no workers"


def test_the_grafana_dashboard_asks_only_for_metrics_farm_exports(tmp_path: Path) -> None:
    farm = make_farm(f"sqlite:///{tmp_path / 'farm.db'}", tmp_path)
    with farm:
        farm.database(write=True)
        exported = set()
        for family in FarmCollector(farm).collect():
            exported.add(family.name + ("_total" if family.type == "counter" else ""))
    dashboard = json.loads((REPO_ROOT / "infra" / "grafana" / "farm-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bfarm_[a-z_]+", target["expr"])
    }

    assert asked and asked <= exported, asked - exported
    assert {"farm_shots", "farm_workers", "farm_worker_busy_fraction", "farm_gpu_seconds_per_frame"} <= asked
