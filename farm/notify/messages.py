"""What an event says to a person or a program: its topic, a line of text, farm's JSON event, a Slack
message, an email."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from farm.db.kinds import EventKind
from farm.db.notifications import NotifiableEvent
from farm.verdicts import Verdict


def topic_of(event: NotifiableEvent) -> str | None:
    """The notification topic of ``event`` (``farm.config.NOTIFY_EVENTS``), or None if it is not one."""
    if event.kind is EventKind.JOB_STATE and event.new_state == "done":
        return "edit.failed_qc" if event.edit_verdict is Verdict.FAIL else "job.done"
    if event.kind is EventKind.JOB_STATE and event.new_state == "failed":
        return "job.failed"
    if event.kind is EventKind.JOB_HELD:
        return "budget.spent"
    if event.kind is EventKind.RENDER_FINISHED and event.error_class == "Stuck":
        return "shot.stuck"
    return None


def summary(topic: str, event: NotifiableEvent) -> str:
    """One line a person reads first: what happened to which job of which show."""
    job = f"job {event.job_id} ({event.show} {event.episode})".replace(" )", ")")
    edit = f"edit v{event.edit_version}" if event.edit_version else "its edit"
    lines = {
        "job.done": f"{job} is done: {edit} passed its checks ({event.edit_verdict})",
        "edit.failed_qc": f"{job} finished, but {edit} failed its continuity checks",
        "job.failed": f"{job} failed: {event.message}",
        "budget.spent": f"{job} is on hold: {event.message.removeprefix('held: ')}",
        "shot.stuck": f"{job}: shot {event.shot_id} was stuck and its worker was killed; it renders again",
    }
    return lines[topic]


def event_payload(topic: str, event: NotifiableEvent, *, notification_id: str) -> dict[str, Any]:
    """farm's JSON event (Standard Webhooks' ``type``, ``timestamp``, ``data`` envelope)."""
    data: dict[str, Any] = {
        "id": notification_id,
        "job": event.job_id,
        "show": event.show,
        "episode": event.episode,
        "submitted_by": event.submitted_by,
        "summary": summary(topic, event),
        "message": event.message,
    }
    if event.shot_id:
        data["shot"] = event.shot_id
    if event.edit_version is not None and topic in ("job.done", "edit.failed_qc"):
        data["edit"] = {
            "version": event.edit_version,
            "verdict": str(event.edit_verdict) if event.edit_verdict else None,
            "video": event.edit_video,
            "report": event.edit_report,
        }
    return {"type": topic, "timestamp": event.at.isoformat(), "data": data}


def slack_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message (``text``, which Mattermost and Teams' Slack mode also read)."""
    icons = {"job.done": ":white_check_mark:", "edit.failed_qc": ":warning:", "job.failed": ":x:",
             "budget.spent": ":moneybag:", "shot.stuck": ":hourglass:"}  # fmt: skip
    data = payload["data"]
    text = f"{icons.get(payload['type'], '')} {data['summary']}".strip()
    if "edit" in data and data["edit"].get("report"):
        text += f"\nreport: {data['edit']['report']}"
    return {"text": text}


def email_message(payload: dict[str, Any], *, sender: str, to: str) -> EmailMessage:
    data = payload["data"]
    message = EmailMessage()
    message["Subject"] = f"[farm] {data['summary']}"
    message["From"] = sender
    message["To"] = to
    lines = [data["summary"], "", f"show: {data['show']}", f"episode: {data['episode']}", f"job: {data['job']}"]
    if "shot" in data:
        lines.append(f"shot: {data['shot']}")
    if "edit" in data:
        edit = data["edit"]
        lines += [
            f"edit: v{edit['version']} ({edit['verdict']})",
            f"video: {edit['video']}",
            f"report: {edit['report']}",
        ]
    lines += ["", f"farm status {data['job']} shows the rest."]
    message.set_content("\n".join(lines))
    return message
