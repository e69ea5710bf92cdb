"""The producer's dashboard in a real browser: Debian's chromium driven by Playwright, against farm serve's
app on 127.0.0.1 with a manager rendering previz on a fake-GPU Ray cluster.

Signs in, submits through the API, watches the timeline strip fill without a reload, sees the verdict,
clicks a flagged cut and checks where the player went, approves the edit; screenshots go to the test's
tmp dir (1280 px and phone width).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from playwright import sync_api as playwright_api
from ray.cluster_utils import Cluster

from farm.api import ApiServer, create_app
from farm.api.context import ApiSettings
from farm.jobs import EngineOptions, Farm, open_farm
from tests.shotlists import TEMPLATE, make_project, replace_once

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("FARM_REQUIRE_BROWSER"):
    raise RuntimeError(f"{CHROMIUM} is missing, and FARM_REQUIRE_BROWSER asks for the browser tests to run")
pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed: apt-get install chromium"),
]

# Small frames, and every cut compared with a threshold of 0 so the edit warns at its cuts: a flagged cut
# for the player to seek to.
SHOT_LIST = replace_once(
    replace_once(replace_once(TEMPLATE, "width: 480", "width: 160"), "height: 832", "height: 256"),
    "scenes:\n",
    "continuity:\n  checks:\n"
    "    loudness_jump: {threshold: 0, policy: warn}\n    colour: {threshold: 0, policy: warn}\nscenes:\n",
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture
def served(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Farm, str, str]]:
    ray.init(address=cluster.address, log_to_driver=False)
    farm = open_farm(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'farm.db'}",
                     ray_address=cluster.address)  # fmt: skip
    token = farm.create_token("pat", "producer")
    farm.create_token("alice", "editor")
    server = ApiServer(create_app(farm, settings=ApiSettings(poll_seconds=0.1)))
    server.start()
    stop = threading.Event()
    manager = threading.Thread(
        target=farm.serve,
        kwargs={"stop": stop, "options": EngineOptions(heartbeat_seconds=0.5, idle_release_seconds=30)},
        daemon=True,
    )
    manager.start()
    try:
        yield farm, server.url, token
    finally:
        stop.set()
        manager.join(timeout=120)
        server.stop()
        farm.close()
        ray.shutdown()


def test_a_producer_watches_a_job_render_live_seeks_to_a_flagged_cut_and_approves_it(
    served: tuple[Farm, str, str], tmp_path: Path
) -> None:
    farm, url, token = served
    shot_list = make_project(tmp_path / "project", SHOT_LIST)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)

        page.goto(f"{url}/jobs/1")
        assert page.url.startswith(f"{url}/login"), "an unsigned browser is sent to sign in"
        page.fill("#token", "not-a-token")
        page.click("button[type=submit]")
        page.wait_for_selector("#sign-in-error:not([hidden])")
        assert "not valid" in page.inner_text("#sign-in-error")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/jobs/1")
        assert "There is no job 1" in page.inner_text("main")  # nothing submitted yet: submit it now

        submitted = page.request.post(f"{url}/api/jobs", data={"path": str(shot_list)},
                                      headers={"Authorization": f"Bearer {_editor_token(farm)}"})  # fmt: skip
        assert submitted.status == 201, submitted.text()
        job = submitted.json()["job_id"]
        page.goto(f"{url}/jobs/{job}")
        page.evaluate("window.sameDocument = true")
        page.wait_for_selector("#strip .shot.running, #strip .shot.done")
        seen_partial = page.evaluate("document.querySelectorAll('#strip .shot:not(.done)').length") > 0
        page.wait_for_function("document.querySelectorAll('#strip .shot.done').length === 3")
        page.wait_for_selector("#edit:not([hidden]) #cuts button")
        assert page.evaluate("window.sameDocument") is True, "the page reloaded instead of updating live"
        assert seen_partial, "the strip was already full when first drawn"
        assert "warn" in page.inner_text("#edit-verdict")
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        page.wait_for_function("Number(document.getElementById('loudness').dataset.points) > 0")
        page.wait_for_function(
            "[...document.querySelectorAll('#strip .shot.done img')]"
            ".filter(img => img.complete && img.naturalWidth > 0).length === 3"
        )
        page.screenshot(path=str(shots / "job-1280.png"), full_page=True)

        cut = page.locator("#cuts button").first
        target = float(cut.get_attribute("data-seconds") or "nan")
        cut.click()
        page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {target}) < 0.05")

        page.wait_for_selector("#review:not([hidden])")
        page.fill("#review-comment", "lovely")
        page.click("#approve")
        page.wait_for_function("document.getElementById('job-status').textContent === 'approved'")

        page.goto(url)
        row = page.locator(f'tr[data-job="{job}"]')
        assert row.locator('[data-field="status"]').inner_text() == "approved"
        assert "v1 warn" in row.locator('[data-field="edit"]').inner_text()
        page.screenshot(path=str(shots / "jobs-1280.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{url}/jobs/{job}")
        page.wait_for_selector("#strip .shot.done")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways on a phone"
        page.screenshot(path=str(shots / "job-phone.png"), full_page=True)
        browser.close()

    assert farm.latest_edit(job).review_comment == "lovely"
    assert all((shots / name).stat().st_size > 10_000 for name in ("job-1280.png", "jobs-1280.png", "job-phone.png"))


def _editor_token(farm: Farm) -> str:
    return farm.create_token("alice-submit", "editor")


def test_without_a_session_the_pages_send_to_sign_in_and_the_api_refuses(served: tuple[Farm, str, str]) -> None:
    _, url, _ = served
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url)
        assert page.url == f"{url}/login?next=/"
        answer = page.request.get(f"{url}/api/jobs")
        assert answer.status == 401
        browser.close()
