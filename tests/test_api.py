"""The HTTP API as a client sees it: the real uvicorn server on a free port, a real farm on SQLite and
PostgreSQL, spoken to over HTTP with httpx. No manager runs, so jobs stay queued: this is the API's surface.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm.api import ApiServer, create_app
from farm.api.context import ApiSettings
from farm.api.schemas import QualityName
from farm.catalog import Quality
from farm.db.queries import shots_of_job
from farm.db.shots import start_attempt
from farm.db.tables import Render
from farm.jobs.bundle import BundleLimits, pack_bundle
from farm.plan import Plan
from tests.api_farm import ServedFarm, served
from tests.bundles import tar_gz
from tests.db_records import done_job, make_farm
from tests.shotlists import TEMPLATE, make_project, replace_once

INVALID = replace_once(replace_once(TEMPLATE, "fps: 25", "fps: 0"), "width: 480", "width: 481")
"""Two mistakes, on lines 5 and 6."""


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[ServedFarm]:
    farm = make_farm(database_url, tmp_path / "data")
    with farm, served(farm) as serving:
        yield serving


@pytest.fixture
def shot_list(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def alice_job(api: ServedFarm, make_job: Callable[..., int]) -> Callable[[], int]:
    """A new queued job of alice's (the template's 3 shots, planned once), per call."""
    return lambda: make_job(api.farm.database(write=True), submitted_by="alice")


def sse_events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """The Server-Sent Events of a streaming response, each as its fields (``id``, ``event``, ``data``)."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"], error
    assert "field" in error and error["status"] == response.status_code, error
    return dict(error)


# ---- the surface -------------------------------------------------------------------------------------


def test_health_needs_no_token_and_the_docs_are_served(api: ServedFarm) -> None:
    health = api.call(None, "GET", "/api/health")
    docs = api.call(None, "GET", "/docs")
    schema = api.call(None, "GET", "/openapi.json").json()

    assert health.status_code == 200 and health.json()["ok"] is True
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert {"/api/jobs", "/api/jobs/{job_id}/events/stream", "/api/shows/{name}"} <= set(schema["paths"])
    assert set(schema["paths"]["/api/jobs"]["post"]["requestBody"]["content"]) == {
        "application/json",
        "multipart/form-data",
    }
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_the_api_names_the_qualities_the_catalog_has() -> None:
    assert set(QualityName.__args__) == {quality.value for quality in Quality}


# ---- submitting ------------------------------------------------------------------------------------------


def test_submit_by_path_records_a_queued_job_under_the_token_name(api: ServedFarm, shot_list: Path) -> None:
    response = api.call("alice", "POST", "/api/jobs", json={"path": str(shot_list), "priority": 2})

    assert response.status_code == 201, response.text
    submitted = response.json()
    assert (submitted["shots"], submitted["replayed"], submitted["project"]) == (3, False, "Test Show")
    job = api.call("pat", "GET", f"/api/jobs/{submitted['job_id']}").json()["job"]
    assert (job["state"], job["submitted_by"], job["priority"]) == ("queued", "alice", 2)


def test_the_same_idempotency_key_returns_the_first_job_and_refuses_another_request(
    api: ServedFarm, shot_list: Path
) -> None:
    body = {"path": str(shot_list), "quality": "preview"}
    headers = {"Idempotency-Key": "ep07-take-1"}

    first = api.call("alice", "POST", "/api/jobs", json=body, headers=headers)
    again = api.call("alice", "POST", "/api/jobs", json=body, headers=headers)
    other = api.call("alice", "POST", "/api/jobs", json={**body, "priority": 9}, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["job_id"] == first.json()["job_id"] and again.json()["replayed"] is True
    assert again.json()["shots"] == 3
    assert other.status_code == 422
    error = error_of(other)
    assert error["field"] == "Idempotency-Key" and error["job_id"] == first.json()["job_id"]
    assert "another request" in error["message"]
    assert api.job_count() == 1
    bobs = api.call("bob", "POST", "/api/jobs", json=body, headers=headers)  # a key is its submitter's own
    assert bobs.status_code == 201 and api.job_count() == 2


def test_an_invalid_shot_list_is_422_with_every_finding_located_and_no_job(api: ServedFarm, tmp_path: Path) -> None:
    path = make_project(tmp_path / "broken", INVALID)

    response = api.call("alice", "POST", "/api/jobs", json={"path": str(path)})

    assert response.status_code == 422
    findings = error_of(response)["findings"]
    located = {(finding["line"], finding["field"]) for finding in findings}
    assert {(5, "output.fps"), (6, "output.width")} <= located
    assert all(
        finding["text"].split(":")[1:3] == [str(finding["line"]), str(finding["column"])] for finding in findings
    )
    assert api.job_count() == 0


def test_a_relative_path_is_refused_naming_the_field(api: ServedFarm) -> None:
    response = api.call("alice", "POST", "/api/jobs", json={"path": "shots/ep07.yaml"})

    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "path" and "absolute path" in error["message"]
    assert api.job_count() == 0


def test_an_uploaded_bundle_is_unpacked_once_and_submitted(api: ServedFarm, shot_list: Path) -> None:
    bundle = io.BytesIO()
    pack_bundle(shot_list.parent, bundle)
    form = {"shot_list": "ep.yaml", "quality": "preview"}

    def upload() -> httpx.Response:
        files = {"bundle": ("ep.tar.gz", bundle.getvalue(), "application/gzip")}
        return api.call("bob", "POST", "/api/jobs", data=form, files=files, headers={"Idempotency-Key": "k"})

    first, again = upload(), upload()

    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert again.json()["job_id"] == first.json()["job_id"]
    uploads = api.farm.settings.data_dir / "uploads"
    (folder,) = list(uploads.iterdir())
    assert first.json()["shot_list"] == str(folder / "ep.yaml")
    assert (folder / "media" / "sc01_dialogue.wav").is_file()
    assert api.farm.submitted_job(first.json()["job_id"]).submitted_by == "bob"


def test_a_zip_bundle_is_accepted_too(api: ServedFarm, shot_list: Path) -> None:
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in shot_list.parent.rglob("*"):
            if path.is_file():
                archive.write(path, path.relative_to(shot_list.parent).as_posix())
    files = {"bundle": ("ep.zip", bundle.getvalue(), "application/zip")}

    response = api.call("alice", "POST", "/api/jobs", data={"shot_list": "ep.yaml"}, files=files)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "bundle",
    [
        pytest.param(tar_gz({"ep.yaml": b"version: 1\n", "../escaped.txt": b"x"}), id="dot-dot"),
        pytest.param(tar_gz({"/tmp/escaped.txt": b"x"}), id="absolute"),
        pytest.param(tar_gz({"ep.yaml": b"version: 1\n"}, links={"media": "/etc"}), id="symlink"),
        pytest.param(b"this is not an archive at all", id="not-an-archive"),
    ],
)
def test_a_bundle_reaching_outside_itself_is_refused_and_leaves_nothing(api: ServedFarm, bundle: bytes) -> None:
    files = {"bundle": ("ep.tar.gz", bundle, "application/gzip")}

    response = api.call("alice", "POST", "/api/jobs", data={"shot_list": "ep.yaml"}, files=files)

    assert response.status_code == 422
    assert error_of(response)["field"] == "bundle"
    uploads = api.farm.settings.data_dir / "uploads"
    assert list(uploads.iterdir()) == []
    assert not (uploads.parent / "escaped.txt").exists() and not Path("/tmp/escaped.txt").exists()
    assert api.job_count() == 0


def test_an_invalid_shot_list_in_a_bundle_leaves_no_upload_behind(api: ServedFarm, tmp_path: Path) -> None:
    bundle = io.BytesIO()
    pack_bundle(make_project(tmp_path / "broken", INVALID).parent, bundle)
    files = {"bundle": ("ep.tar.gz", bundle.getvalue(), "application/gzip")}

    response = api.call("alice", "POST", "/api/jobs", data={"shot_list": "ep.yaml"}, files=files)
    missing = api.call("alice", "POST", "/api/jobs", data={"shot_list": "nope.yaml"}, files=files)

    assert response.status_code == 422 and len(error_of(response)["findings"]) >= 2
    assert missing.status_code == 422 and "ep.yaml" in error_of(missing)["message"]
    assert list((api.farm.settings.data_dir / "uploads").iterdir()) == []
    assert api.job_count() == 0


def test_a_bundle_over_the_limit_is_413(api: ServedFarm, shot_list: Path) -> None:
    small = ApiSettings(bundle_limits=BundleLimits(max_bytes=10_000))
    bundle = io.BytesIO()
    pack_bundle(shot_list.parent, bundle)
    files = {"bundle": ("ep.tar.gz", bundle.getvalue(), "application/gzip")}

    with ApiServer(create_app(api.farm, settings=small)) as server, httpx.Client(base_url=server.url) as client:
        response = client.post(
            "/api/jobs",
            data={"shot_list": "ep.yaml"},
            files=files,
            headers={"Authorization": f"Bearer {api.tokens['alice']}"},
        )

    assert response.status_code == 413
    assert error_of(response)["field"] == "bundle"
    assert list((api.farm.settings.data_dir / "uploads").iterdir()) == []


# ---- reading --------------------------------------------------------------------------------------------


def test_jobs_shots_attempts_logs_edits_and_events_read_back(
    api: ServedFarm, alice_job: Callable[[], int], tmp_path: Path
) -> None:
    job_id = alice_job()
    db = api.farm.database(write=True)
    shot_pk = {shot.shot_id: shot.pk for shot in shots_of_job(db, job_id)}["a"]
    render_id = start_attempt(db, shot_pk, worker="RenderWorker-0", node="gpu-1", device="cuda:0", by="driver")
    log = tmp_path / "a-1.log"
    log.write_text("loading model\nframe 1/59\n")
    with db.write() as connection:
        connection.execute(Render.update().where(Render.c.id == render_id).values(log_path=str(log)))

    jobs = api.call("pat", "GET", "/api/jobs").json()["jobs"]
    detail = api.call("pat", "GET", f"/api/jobs/{job_id}", params={"state": "running"}).json()
    shots = api.call("pat", "GET", f"/api/jobs/{job_id}/shots").json()["shots"]
    attempts = api.call("pat", "GET", f"/api/jobs/{job_id}/shots/a/attempts").json()["attempts"]
    logs = api.call("pat", "GET", f"/api/jobs/{job_id}/logs", params={"shot": "a"}).json()["logs"]
    tail = api.call("pat", "GET", f"/api/jobs/{job_id}/logs", params={"shot": "a", "offset": 14}).json()["logs"]
    edits = api.call("pat", "GET", f"/api/jobs/{job_id}/edits").json()
    events = api.call("pat", "GET", f"/api/jobs/{job_id}/events").json()["events"]
    later = api.call("pat", "GET", f"/api/jobs/{job_id}/events", params={"after": events[1]["id"]}).json()

    assert [job["id"] for job in jobs] == [job_id]
    assert detail["job"]["shots"]["running"] == 1 and [shot["shot_id"] for shot in detail["shots"]] == ["a"]
    assert [shot["shot_id"] for shot in shots] == ["a", "b", "c"]
    assert [(a["attempt_no"], a["state"], a["node"], a["log_path"]) for a in attempts] == [
        (1, "running", "gpu-1", str(log))
    ]
    assert (logs[0]["text"], logs[0]["missing"]) == ("loading model\nframe 1/59\n", None)
    assert tail[0]["text"] == "frame 1/59\n" and tail[0]["next_offset"] == log.stat().st_size
    assert edits == {"job": job_id, "latest": None, "versions": []}
    assert events[0]["kind"] == "job.submitted" and events[-1]["kind"] == "shot.started"
    assert [event["id"] for event in later["events"]] == [event["id"] for event in events[2:]]


def test_unknown_jobs_and_shots_are_404(api: ServedFarm, alice_job: Callable[[], int]) -> None:
    job_id = alice_job()

    for path in (
        "/api/jobs/999",
        "/api/jobs/999/events",
        "/api/jobs/999/events/stream",
        f"/api/jobs/{job_id}/shots/zz/attempts",
    ):
        response = api.call("pat", "GET", path)
        assert response.status_code == 404, (path, response.text)
        assert (
            "not in the database" in error_of(response)["message"] or "has no shot zz" in error_of(response)["message"]
        )


def test_the_event_stream_replays_with_ids_resumes_after_last_event_id_and_ends_with_the_job(
    api: ServedFarm, alice_job: Callable[[], int]
) -> None:
    job_id = alice_job()
    recorded = [event.id for event in api.farm.events(job_id)]

    with api.client("pat") as client, client.stream("GET", f"/api/jobs/{job_id}/events/stream") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        stream = sse_events(response)
        replayed = [next(stream) for _ in recorded]
        api.farm.cancel(job_id, by="root")  # while the stream is open: it must deliver what follows
        live = list(stream)

    assert [int(event["id"]) for event in replayed] == recorded
    assert json.loads(replayed[0]["data"])["kind"] == replayed[0]["event"] == "job.submitted"
    *changes, end = live
    assert {event["event"] for event in changes} == {"job.state", "shot.cancelled"}
    assert [int(event["id"]) for event in changes] == [event.id for event in api.farm.events(job_id)][len(recorded) :]
    assert end["event"] == "end" and json.loads(end["data"])["state"] == "cancelled"

    resume_from = recorded[2]
    with api.client("pat", **{"Last-Event-ID": str(resume_from)}) as client:
        with client.stream("GET", f"/api/jobs/{job_id}/events/stream") as response:
            resumed = [int(event["id"]) for event in sse_events(response) if "id" in event]
    with api.client("pat") as client:
        with client.stream("GET", f"/api/jobs/{job_id}/events/stream", params={"after": recorded[-1]}) as response:
            after = [int(event["id"]) for event in sse_events(response) if "id" in event]

    everything = [event.id for event in api.farm.events(job_id)]
    assert resumed == [event_id for event_id in everything if event_id > resume_from]
    assert after == [event_id for event_id in everything if event_id > recorded[-1]]


# ---- changing ------------------------------------------------------------------------------------------


def test_an_editor_reprioritises_cancels_and_retries_its_job(api: ServedFarm, alice_job: Callable[[], int]) -> None:
    job_id = alice_job()

    priority = api.call("alice", "PATCH", f"/api/jobs/{job_id}", json={"priority": 7})
    cancel = api.call("alice", "POST", f"/api/jobs/{job_id}/cancel")
    again = api.call("alice", "POST", f"/api/jobs/{job_id}/cancel")
    retry = api.call("alice", "POST", f"/api/jobs/{job_id}/retry", json={"shots": ["a", "b"]})

    assert priority.json() == {"job": job_id, "priority": 7, "previous_priority": 0}
    assert cancel.json() == {"job": job_id, "cancelled_shots": 3}
    assert again.status_code == 409 and "already cancelled" in error_of(again)["message"]
    assert retry.json() == {"job": job_id, "requeued_shots": 2}
    job = api.farm.status(job_id).job
    assert (job.state, job.priority) == ("queued", 7)
    kinds = [(event.kind, event.changed_by) for event in api.farm.events(job_id)]
    assert ("job.priority", "alice") in kinds and ("shot.cancelled", "alice") in kinds


def test_an_admin_sets_a_show_and_everyone_reads_it(api: ServedFarm, alice_job: Callable[[], int]) -> None:
    alice_job()

    changed = api.call("root", "PUT", "/api/shows/Test Show", json={"share": 2, "gpu_quota": 4, "gpu_hour_budget": 10})
    cleared = api.call("root", "PUT", "/api/shows/Test Show", json={"gpu_quota": None})
    shows = api.call("alice", "GET", "/api/shows").json()["shows"]
    bad = api.call("root", "PUT", "/api/shows/Test Show", json={"share": 0})

    assert changed.status_code == 200 and changed.json()["gpu_quota"] == 4
    assert cleared.json()["gpu_quota"] is None and cleared.json()["share"] == 2
    assert [(show["name"], show["share"], show["gpu_hour_budget"], show["jobs"]) for show in shows] == [
        ("Test Show", 2, 10, 1)
    ]
    assert bad.status_code == 422 and error_of(bad)["field"] == "share"


ALL = {"alice": 200, "bob": 200, "pat": 200, "root": 200}
OWNER_OR_ADMIN = {"alice": 200, "bob": 403, "pat": 403, "root": 200}
ROLES: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/api/jobs", None, ALL),
    ("GET", "/api/jobs/{job}", None, ALL),
    ("GET", "/api/jobs/{job}/shots", None, ALL),
    ("GET", "/api/jobs/{job}/shots/a/attempts", None, ALL),
    ("GET", "/api/jobs/{job}/events", None, ALL),
    ("GET", "/api/jobs/{job}/logs", None, ALL),
    ("GET", "/api/jobs/{job}/edits", None, ALL),
    ("GET", "/api/shows", None, ALL),
    ("POST", "/api/jobs", {"path": "{shot_list}"}, {"alice": 201, "bob": 201, "pat": 403, "root": 201}),
    ("PATCH", "/api/jobs/{job}", {"priority": 4}, OWNER_OR_ADMIN),
    ("POST", "/api/jobs/{job}/cancel", None, OWNER_OR_ADMIN),
    ("POST", "/api/jobs/{job}/retry", None, OWNER_OR_ADMIN),
    ("PUT", "/api/shows/Test Show", {"share": 2}, {"alice": 403, "bob": 403, "pat": 403, "root": 200}),
    # a queued job has no edit to review: the roles that may review are told so (409), the others refused
    ("POST", "/api/jobs/{job}/review", {"review": "approved"}, {"alice": 403, "bob": 403, "pat": 409, "root": 409}),
]
"""Every route, every role: editors (alice owns the job, bob does not), a producer and an admin."""


def test_every_role_may_do_what_it_may_and_nothing_else(
    api: ServedFarm, alice_job: Callable[[], int], shot_list: Path
) -> None:
    got, expected, refusals = {}, {}, []
    for method, template, body, statuses in ROLES:
        for who, status in statuses.items():
            path = template.format(job=alice_job())
            payload = {key: str(shot_list) if value == "{shot_list}" else value for key, value in (body or {}).items()}
            response = api.call(who, method, path, json=payload if body else None)
            got[method, template, who], expected[method, template, who] = response.status_code, status
            if response.status_code == 403:
                refusals.append(error_of(response)["message"])

    assert got == expected
    assert all("needs the" in message and "role" in message for message in refusals)
    assert any("as its submitter: job" in message and "alice's" in message for message in refusals)


def test_no_token_or_a_bad_or_revoked_one_is_401_with_a_challenge(api: ServedFarm) -> None:
    api.farm.revoke_token("bob")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {api.tokens['bob']}"}):
        with httpx.Client(base_url=api.url, headers=headers) as client:
            response = client.get("/api/jobs")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Bearer realm="farm"')
        assert error_of(response)["field"] == "Authorization"


def test_every_error_has_the_one_json_shape(api: ServedFarm, alice_job: Callable[[], int]) -> None:
    job_id = alice_job()
    cases = [
        ("GET", "/api/nowhere", {}, 404, None),
        ("DELETE", "/api/jobs", {}, 405, None),
        ("PATCH", f"/api/jobs/{job_id}", {"json": {"priority": "high"}}, 422, "priority"),
        ("PATCH", f"/api/jobs/{job_id}", {"json": {"priority": 1, "colour": "red"}}, 422, "colour"),
        ("GET", "/api/jobs", {"params": {"limit": 0}}, 422, "limit"),
        ("POST", "/api/jobs", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "body"),
        ("POST", "/api/jobs", {"json": {"path": "/x.yaml"}, "headers": {"Idempotency-Key": "k" * 300}}, 422,
         "Idempotency-Key"),
        ("POST", "/api/jobs", {"content": b"x", "headers": {"content-type": "text/plain"}}, 422, "Content-Type"),
        ("POST", "/api/jobs", {"files": {"other": ("x", b"x")}}, 422, "bundle"),
        ("GET", f"/api/jobs/{job_id}/logs", {"params": {"attempt": 3}}, 404, "shot"),
    ]  # fmt: skip
    for method, path, request, status, field in cases:
        response = api.call("root", method, path, **request)
        assert response.status_code == status, (method, path, response.text)
        assert error_of(response)["field"] == field, (method, path, response.text)
    assert api.job_count() == 1


def test_a_producer_sends_a_shot_back_and_approves_the_next_version_over_http(api: ServedFarm, plan: Plan) -> None:
    db = api.farm.database(write=True)
    job_id = done_job(db, plan)

    bad = api.call("pat", "POST", f"/api/jobs/{job_id}/review", json={"review": "maybe"})
    no_comment = api.call("pat", "POST", f"/api/jobs/{job_id}/review", json={"review": "retake", "shots": ["a"]})
    retake = api.call(
        "pat", "POST", f"/api/jobs/{job_id}/review", json={"review": "retake", "shots": ["a"], "comment": "smile"}
    )

    assert bad.status_code == 422 and error_of(bad)["field"] == "review"
    assert no_comment.status_code == 422 and error_of(no_comment)["field"] == "comment"
    assert retake.status_code == 200, retake.text
    assert retake.json()["producer_status"] == "ready" and retake.json()["edit"]["review"] == "retake"
    listed = api.call("pat", "GET", "/api/jobs").json()["jobs"][0]
    assert (listed["producer_status"], listed["edit_review"], listed["edit_version"]) == ("ready", "retake", 1)
