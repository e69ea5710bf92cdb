"""The notifier: turns the event log into notifications for the config file's targets, and sends them.

``Notifier.step()`` does one round: read the events after its cursor, record a notification per event and
target (and move the cursor) in one transaction, then send every notification that is due, recording
each attempt. A failed delivery is retried with exponential backoff and jitter until ``max_attempts``.
Everything lives in the database, so a manager that restarts sends what its predecessor could not.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from farm.config import EmailConfig, SmtpConfig, WebhookConfig
from farm.db.columns import utcnow
from farm.db.kinds import Channel
from farm.db.notifications import (
    NewNotification,
    NotifiableEvent,
    NotificationRecord,
    due_notifications,
    notifiable_events,
    record_attempt,
    record_notifications,
)
from farm.db.session import Database
from farm.db.states import LostRace
from farm.notify.messages import event_payload, slack_payload, topic_of
from farm.notify.transports import Delivery, post_json, send_email
from farm.settings import Settings, named_secret


@dataclass(frozen=True)
class NotifierOptions:
    poll_seconds: float = 1.0
    settle_seconds: float = 2.0
    """How old an event must be before it is read (see ``notifiable_events``)."""
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0
    max_attempts: int = 10
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Target:
    channel: Channel
    address: str


class Notifier:
    def __init__(self, db: Database, settings: Settings, options: NotifierOptions | None = None) -> None:
        self.db = db
        self.settings = settings
        self.options = options or NotifierOptions()
        self._rng = random.Random()

    @property
    def configured(self) -> bool:
        config = self.settings.config
        return bool(config.webhooks or config.emails or any(person.notify for person in config.people))

    def step(self) -> tuple[int, int]:
        """One round; returns (notifications recorded, attempts made)."""
        return self.record_new(), self.deliver_due()

    def record_new(self) -> int:
        cursor, read_to, events = notifiable_events(self.db, settle_seconds=self.options.settle_seconds)
        if read_to == cursor:
            return 0
        items = [item for event in events for item in self._notifications(event)]
        try:
            return record_notifications(self.db, read_from=cursor, read_to=read_to, items=items)
        except LostRace:  # another manager's notifier read them: it sends them
            return 0

    def deliver_due(self) -> int:
        due = due_notifications(self.db)
        for notification in due:
            delivery = self._send(notification)
            retry_at = None
            if not delivery.delivered and notification.attempts + 1 < self.options.max_attempts:
                retry_at = utcnow() + timedelta(seconds=self._backoff(notification.attempts))
            record_attempt(
                self.db,
                notification.id,
                delivered=delivery.delivered,
                status=delivery.status,
                response=delivery.response,
                retry_at=retry_at,
            )
        return len(due)

    def _backoff(self, attempts: int) -> float:
        """Exponential from ``retry_base_seconds``, capped, with +-20 % jitter so receivers that come back
        are not hit by every farm at once."""
        delay = min(self.options.retry_base_seconds * 2**attempts, self.options.retry_max_seconds)
        return delay * self._rng.uniform(0.8, 1.2)

    # ---- what to send -------------------------------------------------------------------------------------

    def _notifications(self, event: NotifiableEvent) -> Iterator[NewNotification]:
        topic = topic_of(event)
        if topic is None:
            return
        seen: set[tuple[Channel, str]] = set()
        for target in self._targets(topic, event):
            if (target.channel, target.address) in seen:
                continue
            seen.add((target.channel, target.address))
            payload = event_payload(topic, event, notification_id=f"farm-{event.event_id}-{len(seen)}")
            if target.channel is Channel.SLACK:
                payload = {**slack_payload(payload), "farm": payload}
            yield NewNotification(event.event_id, event.job_id, topic, target.channel, target.address, payload)

    def _targets(self, topic: str, event: NotifiableEvent) -> Iterator[Target]:
        config = self.settings.config
        for hook in config.webhooks:
            if _wants(hook, topic, event.show):
                channel = Channel.SLACK if hook.format == "slack" else Channel.WEBHOOK
                yield Target(channel, hook.url)
        for mail in config.emails:
            if _wants(mail, topic, event.show):
                yield from (Target(Channel.EMAIL, address) for address in mail.to)
        for person in config.people:
            if person.name == event.submitted_by and person.email and topic in person.notify:
                yield Target(Channel.EMAIL, person.email)

    # ---- sending ------------------------------------------------------------------------------------------

    def _send(self, notification: NotificationRecord) -> Delivery:
        payload = dict(notification.payload)
        message_id = f"farm-notification-{notification.id}"
        timeout = self.options.timeout_seconds
        if notification.channel is Channel.EMAIL:
            smtp = self.settings.config.smtp or SmtpConfig()
            password = named_secret(smtp.password_env)
            return send_email(smtp, payload, to=notification.target, password=password, timeout=timeout)
        if notification.channel is Channel.SLACK:
            payload.pop("farm", None)
            return post_json(notification.target, payload, message_id=message_id, secret=None, timeout=timeout)
        secret_env = next(
            (hook.secret_env for hook in self.settings.config.webhooks if hook.url == notification.target), None
        )
        secret = named_secret(secret_env)
        if secret_env and secret is None:
            return Delivery(False, "no secret", f"{secret_env} is not set in farm serve's environment; set it")
        return post_json(notification.target, payload, message_id=message_id, secret=secret, timeout=timeout)


def _wants(target: WebhookConfig | EmailConfig, topic: str, show: str) -> bool:
    return topic in target.events and (not target.shows or show in target.shows)
