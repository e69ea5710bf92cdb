"""Notifications end to end on real receivers: a local HTTP server (signed webhooks, Slack) and a local
SMTP server (aiosmtpd); retries with backoff, and nothing lost across a restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from farm.db.kinds import Channel, DeliveryState
from farm.jobs import Farm
from farm.notify.notifier import Notifier, NotifierOptions
from farm.plan import Plan
from farm.settings import REPO_ROOT, resolve_settings
from farm.verdicts import Verdict
from tests.api_farm import served
from tests.db_records import done_job
from tests.receivers import Mailbox, Received, WebhookReceiver, free_port, smtp_server, webhook_receiver

SECRET = "whsec_" + base64.b64encode(b"farm-test-signing-key-0123456789").decode()
QUICK = NotifierOptions(settle_seconds=0.0, retry_base_seconds=0.05, retry_max_seconds=0.2, max_attempts=4)


def config_file(tmp_path: Path, hook: str, slack: str, mailbox: Mailbox) -> Path:
    path = tmp_path / "farm.toml"
    path.write_text(
        f"""
[people.editor]
email = "editor@studio.example"
notify = ["edit.failed_qc"]

[[notifications.webhook]]
url = "{hook}"
secret_env = "FARM_TEST_WEBHOOK_SECRET"

[[notifications.webhook]]
url = "{slack}"
format = "slack"
events = ["edit.failed_qc"]

[[notifications.email]]
to = ["producers@studio.example"]
events = ["job.done"]

[notifications.smtp]
host = "127.0.0.1"
port = {mailbox.port}
from = "farm@studio.example"
""",
        encoding="utf-8",
    )
    return path


def verified(request: Received, secret: str) -> dict[str, object]:
    """The body of a Standard Webhooks request whose signature checks out (written from the spec, not from
    farm's signer)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in request.headers["webhook-signature"].split(" "), "bad signature"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
    return dict(json.loads(request.body))


def until(condition, within: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def receivers() -> tuple[WebhookReceiver, WebhookReceiver, Mailbox]:
    with webhook_receiver([500]) as hook, webhook_receiver() as slack, smtp_server() as mailbox:
        yield hook, slack, mailbox


def test_a_finished_job_and_a_failed_edit_reach_each_target_signed_and_retried(
    receivers: tuple[WebhookReceiver, WebhookReceiver, Mailbox],
    plan: Plan,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, slack, mailbox = receivers
    monkeypatch.setenv("FARM_TEST_WEBHOOK_SECRET", SECRET)
    settings = resolve_settings(
        config=config_file(tmp_path, hook.url, slack.url, mailbox),
        data_dir=tmp_path / "data",
        database_url=database_url,
    )
    farm = Farm(settings)
    db = farm.database(write=True)
    good = done_job(db, plan, Verdict.PASS)
    bad = done_job(db, plan, Verdict.FAIL)
    notifier = Notifier(db, settings, QUICK)

    notifier.step()  # the webhook answers 500 first
    until(lambda: (notifier.deliver_due(), all(n.state is not DeliveryState.PENDING for n in farm.notifications()))[1])

    sent = {(n.job_id, n.topic, n.channel, n.target): n for n in farm.notifications()}
    assert set(sent) == {
        (good, "job.done", Channel.WEBHOOK, hook.url),
        (good, "job.done", Channel.EMAIL, "producers@studio.example"),
        (bad, "edit.failed_qc", Channel.WEBHOOK, hook.url),
        (bad, "edit.failed_qc", Channel.SLACK, slack.url),
        (bad, "edit.failed_qc", Channel.EMAIL, "editor@studio.example"),  # the job's submitter asked for it
    }
    assert all(n.state is DeliveryState.DELIVERED for n in sent.values())
    retried = [n for n in sent.values() if n.attempts == 2]
    assert len(retried) == 1 and retried[0].channel is Channel.WEBHOOK and retried[0].last_status == "200"

    bodies = [verified(request, SECRET) for request in hook.received]
    assert len(bodies) == 3  # two notifications, one of them twice (500, then 200)
    done = next(body for body in bodies if body["type"] == "job.done")
    assert done["data"]["job"] == good and done["data"]["edit"]["verdict"] == "pass"  # type: ignore[index]
    [text] = [json.loads(request.body)["text"] for request in slack.received]
    assert text.startswith(f":warning: job {bad} (") and text.endswith("edit v1 failed its continuity checks")
    assert "webhook-signature" not in slack.received[0].headers
    subjects = sorted((m["To"], m["Subject"]) for m in mailbox.messages)
    assert [to for to, _ in subjects] == ["editor@studio.example", "producers@studio.example"]
    assert all(subject.startswith("[farm] job ") for _, subject in subjects)


def test_a_receiver_that_is_down_gets_its_notification_after_a_restart_once(
    plan: Plan, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    path = tmp_path / "farm.toml"
    path.write_text(f'[[notifications.webhook]]\nurl = "{hook}"\n', encoding="utf-8")
    settings = resolve_settings(config=path, data_dir=tmp_path / "data", database_url=database_url)
    farm = Farm(settings)
    db = farm.database(write=True)
    job = done_job(db, plan, Verdict.PASS)

    Notifier(db, settings, QUICK).step()  # nobody listens: the attempt fails and is kept
    [pending] = farm.notifications()
    assert (pending.state, pending.attempts, pending.last_status) == (DeliveryState.PENDING, 1, "ConnectError")

    # a new manager (a new Notifier) once the receiver is up: it sends what is due, and makes nothing twice
    with webhook_receiver(port=port) as receiver:
        restarted = Notifier(db, settings, QUICK)
        until(lambda: restarted.step() and receiver.received)
        restarted.step()

    [note] = farm.notifications()
    assert (note.state, note.attempts, note.job_id) == (DeliveryState.DELIVERED, 2, job)
    assert len(receiver.received) == 1


def test_what_was_sent_is_read_back_by_the_command_and_the_api(plan: Plan, database_url: str, tmp_path: Path) -> None:
    with webhook_receiver([503, 503, 503, 503]) as hook:
        path = tmp_path / "farm.toml"
        path.write_text(f'[[notifications.webhook]]\nurl = "{hook.url}"\nevents = ["job.done"]\n', encoding="utf-8")
        settings = resolve_settings(config=path, data_dir=tmp_path / "data", database_url=database_url)
        farm = Farm(settings)
        job = done_job(farm.database(write=True), plan, Verdict.PASS)
        notifier = Notifier(farm.database(write=True), settings, QUICK)
        until(lambda: notifier.step() and farm.notifications()[0].state is DeliveryState.FAILED)

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    listed = subprocess.run(
        [sys.executable, "-m", "farm", "notifications", str(job), "--json", "--config", str(path),
         "--data-dir", str(tmp_path / "data"), "--db", database_url],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    with served(farm) as api:
        answer = api.call("pat", "GET", "/api/notifications", params={"job": job}).json()

    assert listed.returncode == 0, listed.stderr
    [note] = json.loads(listed.stdout)["notifications"]
    assert (note["state"], note["attempts"], note["last_status"]) == ("failed", 4, "503")  # gave up after 4
    assert note["payload"]["type"] == "job.done" and len(hook.received) == 4
    assert [entry["id"] for entry in answer["notifications"]] == [note["id"]]
