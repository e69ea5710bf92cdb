"""A real farm with its HTTP API served on a free local port, and the people who call it (a token each)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from farm.api import ApiServer, create_app
from farm.api.context import ApiSettings
from farm.jobs import Farm

PEOPLE = {"alice": "editor", "bob": "editor", "pat": "producer", "root": "admin"}
"""Two editors (so one can try the other's jobs), a producer and an admin."""


@dataclass
class ServedFarm:
    farm: Farm
    url: str
    tokens: dict[str, str]

    def client(self, who: str | None = None, **headers: str) -> httpx.Client:
        """An HTTP client speaking as ``who`` (None: with no token at all)."""
        auth = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers={**auth, **headers}, timeout=30.0)

    def call(self, who: str | None, method: str, path: str, **request: Any) -> httpx.Response:
        with self.client(who) as client:
            return client.request(method, path, **request)

    def job_count(self) -> int:
        return len(self.farm.jobs(limit=1000))


@contextmanager
def served(farm: Farm, settings: ApiSettings | None = None) -> Iterator[ServedFarm]:
    """``farm``'s API on 127.0.0.1 (a free port), with a new token for each of PEOPLE."""
    tokens = {name: farm.create_token(name, role) for name, role in PEOPLE.items()}
    server = ApiServer(create_app(farm, settings=settings or ApiSettings(poll_seconds=0.05)))
    server.start()
    try:
        yield ServedFarm(farm, server.url, tokens)
    finally:
        server.stop()
