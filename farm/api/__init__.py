"""farm's HTTP API: the same library calls as the ``farm`` command, over HTTP, for people without the database.

A laptop with a token submits shot lists (by their path on the studio's shared storage, or uploaded as a
bundle), follows jobs and their events live (Server-Sent Events), reads attempt logs and edits, and
cancels, retries or reprioritises jobs; an admin sets the shows' shares, quotas and budgets. Like the CLI
it is a thin shell over ``farm.jobs.Farm``; the two are siblings on the top floor and never import each
other. The modules: ``app`` (the FastAPI app and its OpenAPI docs), ``auth`` (bearer tokens and which
role may do what), ``errors`` (every error as one JSON shape, each farm error mapped to its status),
``routes`` (one module per resource), ``responses`` (JSON bodies), ``server`` (uvicorn in a thread, for
``farm serve`` and the tests).
"""

from farm.api.app import create_app
from farm.api.server import ApiServer

__all__ = ["ApiServer", "create_app"]
