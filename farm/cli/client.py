"""The ``farm`` command as a client of a farm manager's HTTP API (``--server URL``): no database, no Ray.

``FarmClient`` answers the reads the commands make with the same names and records as ``farm.jobs.Farm``
(``jobs``, ``status``, ``events``, ``logs``, ``cancel``, ``retry``), rebuilt from the API's JSON, so
``farm status --server`` prints the very views ``farm status`` does. What goes wrong is a FarmError the
command prints as one line: the server's own message (exit 2 when the request was at fault, 1 when the
server was), or, when nothing answers, where the client looked and how to start a manager.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from farm.db.records import EventRecord, JobDetail, JobSummary, job_detail_from_json, record_from_json
from farm.errors import EXIT_BAD_INPUT, EXIT_WORK_FAILED, FarmError, UsageError
from farm.jobs import ShotState
from farm.jobs.bundle import pack_bundle
from farm.jobs.logs import AttemptLog
from farm.settings import ServerSettings

TIMEOUT = httpx.Timeout(30.0, write=600.0)
"""Reads answer in well under a second; an upload of a bundle may take minutes to send."""


class ManagerUnreachable(FarmError):
    """No farm manager answered at the URL (not started, another host or port, a network in the way)."""

    exit_code = EXIT_WORK_FAILED


class ManagerRefused(FarmError):
    """The farm manager answered with an error: the request's fault (exit 2) or the manager's (exit 1)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.exit_code = EXIT_BAD_INPUT if 400 <= status < 500 else EXIT_WORK_FAILED


class FarmClient:
    """The farm manager at ``server.url``, spoken to with ``server.token``."""

    def __init__(self, server: ServerSettings) -> None:
        if not server.token:
            raise UsageError(
                f"the farm manager at {server.url} needs a token: give --token or set FARM_TOKEN "
                "(an admin makes one with `farm token create NAME --role editor`)"
            )
        self.url = server.url
        self._http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=TIMEOUT
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FarmClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # ---- what Farm reads, over HTTP ---------------------------------------------------------------------

    def jobs(self, *, limit: int = 20) -> tuple[JobSummary, ...]:
        payload = self._call("GET", "/api/jobs", params={"limit": limit})
        return tuple(record_from_json(JobSummary, job) for job in payload["jobs"])

    def status(
        self, job_id: int, *, shot_states: Iterable[ShotState] | None = None, all_shots_up_to: int = 0
    ) -> JobDetail:
        params: dict[str, Any] = {"all_shots_up_to": all_shots_up_to}
        if shot_states is not None:
            params["state"] = [str(state) for state in shot_states]
        return job_detail_from_json(self._call("GET", f"/api/jobs/{job_id}", params=params))

    def events(self, job_id: int, *, limit: int | None = None) -> tuple[EventRecord, ...]:
        params = {"limit": limit} if limit is not None else {}
        payload = self._call("GET", f"/api/jobs/{job_id}/events", params=params)
        return tuple(record_from_json(EventRecord, event) for event in payload["events"])

    def logs(
        self,
        job_id: int,
        shot_id: str | None = None,
        attempt: int | None = None,
        *,
        latest: bool = False,
        offset: int | None = None,
    ) -> tuple[AttemptLog, ...]:
        params: dict[str, Any] = {"latest": latest}
        for name, value in (("shot", shot_id), ("attempt", attempt), ("offset", offset)):
            if value is not None:
                params[name] = value
        payload = self._call("GET", f"/api/jobs/{job_id}/logs", params=params)
        return tuple(record_from_json(AttemptLog, log) for log in payload["logs"])

    # ---- what Farm changes, over HTTP -------------------------------------------------------------------

    def cancel(self, job_id: int) -> int:
        return int(self._call("POST", f"/api/jobs/{job_id}/cancel")["cancelled_shots"])

    def retry(self, job_id: int, *, shots: Sequence[str] | None = None) -> int:
        body = {"shots": list(shots)} if shots is not None else None
        return int(self._call("POST", f"/api/jobs/{job_id}/retry", json=body)["requeued_shots"])

    def review(
        self, job_id: int, review: str, *, comment: str, shots: Sequence[str], version: int | None
    ) -> dict[str, Any]:
        body = {"review": review, "comment": comment, "shots": list(shots), "version": version}
        return self._call("POST", f"/api/jobs/{job_id}/review", json=body)

    def submit_path(
        self, path: Path, *, quality: str | None, priority: int, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Submit the shot list at ``path`` as the manager sees it (the studio's shared storage)."""
        body = {"path": str(path), "quality": quality, "priority": priority}
        return self._call("POST", "/api/jobs", json=body, headers=_key_header(idempotency_key))

    def submit_bundle(
        self, shot_list: Path, *, quality: str | None, priority: int, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Upload the shot list's folder (media included) as a tar.gz and submit the shot list in it."""
        fields: dict[str, Any] = {"shot_list": shot_list.name, "priority": str(priority)}
        if quality is not None:
            fields["quality"] = quality
        with tempfile.TemporaryFile() as bundle:
            pack_bundle(shot_list.parent, bundle)
            bundle.seek(0)
            files = {"bundle": (f"{shot_list.stem}.tar.gz", bundle, "application/gzip")}
            return self._call("POST", "/api/jobs", data=fields, files=files, headers=_key_header(idempotency_key))

    # ---- HTTP -------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **request: Any) -> Any:
        try:
            response = self._http.request(method, path, **request)
        except httpx.TransportError as exc:
            raise ManagerUnreachable(
                f"cannot reach the farm manager at {self.url}: {_reason(exc)}; start it with `farm serve` "
                "(or check --server / FARM_SERVER)"
            ) from exc
        if response.is_error:
            raise ManagerRefused(_error_message(response), status=response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise ManagerRefused(
                f"{self.url} answered {path} with something that is not JSON; is it a farm manager?", status=502
            ) from exc


def _key_header(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _error_message(response: httpx.Response) -> str:
    """The server's message (a shot list's errors one a line, like ``farm validate``), or what came back if
    it is not farm's error shape."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"the farm manager answered {response.status_code}: {response.text[:300].strip()}"
