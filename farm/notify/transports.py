"""Sending one notification: an HTTP POST (signed per Standard Webhooks) or an email over SMTP.

Each returns a Delivery (did the receiver take it, its status, what it said) and never raises for the
receiver's sake: a refusal, a timeout or a dead server is an outcome the notifier records and retries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from farm.config import SmtpConfig
from farm.notify.messages import email_message

SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    status: str
    """The HTTP status, the SMTP reply, or the error's name."""
    response: str


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks' ``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` keyed
    with the secret's bytes (``whsec_`` + base64)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def post_json(url: str, payload: dict[str, Any], *, message_id: str, secret: str | None, timeout: float) -> Delivery:
    """POST ``payload``; 2xx is delivered. Signed when ``secret`` is given."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "farm-notifier",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = signature(secret, message_id, timestamp, body)
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as error:
        return Delivery(False, type(error).__name__, str(error) or type(error).__name__)
    return Delivery(response.is_success, str(response.status_code), response.text[:2000])


def send_email(smtp: SmtpConfig, payload: dict[str, Any], *, to: str, password: str | None, timeout: float) -> Delivery:
    message = email_message(payload, sender=smtp.sender, to=to)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username and password:
                client.login(smtp.username, password)
            refused = client.send_message(message)
            code, reply = client.noop()
    except (OSError, smtplib.SMTPException) as error:
        return Delivery(False, type(error).__name__, str(error) or type(error).__name__)
    if refused:
        return Delivery(False, "refused", json.dumps({address: str(answer) for address, answer in refused.items()}))
    return Delivery(True, str(code), reply.decode(errors="replace"))
