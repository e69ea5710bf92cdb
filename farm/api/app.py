"""``create_app(farm)``: the FastAPI app serving one Farm: its routes under ``/api``, its docs at ``/docs``,
``/metrics``, and the producer's dashboard (``/``, ``/jobs/{id}``, ``/login``, ``/static``).

``farm serve`` makes one app per manager and runs it with ``ApiServer``; tests do the same on a free port.
The app holds the Farm in its state, so the routes are plain functions of their requests.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from farm import __version__
from farm.api import metrics
from farm.api.context import ApiSettings
from farm.api.errors import install_error_handlers
from farm.api.responses import FarmJSONResponse
from farm.api.routes import events, health, jobs, media, session, shows, submit
from farm.api.web import pages
from farm.jobs import Farm

DESCRIPTION = """\
Submit shot lists to the render farm and follow them: the same operations as the `farm` command.

Every route but `/api/health` needs `Authorization: Bearer <token>`; an admin makes tokens with
`farm token create NAME --role editor|producer|admin`. An **editor** submits, reads, and cancels, retries
and reprioritises its own jobs; a **producer** reads everything; an **admin** does everything, shows
included. Every error is `{"error": {"message", "field", ...}}`.
"""


def create_app(farm: Farm, *, settings: ApiSettings | None = None) -> FastAPI:
    """The API over ``farm``. The caller keeps ``farm`` (and closes it); the app never closes it.

    The farm's database is opened for writing here (created and migrated as needed, as any write would):
    the routes run on many threads at once, and a database first opened read-only would be reopened under
    them by the first write.
    """
    farm.database(write=True)
    app = FastAPI(
        title="farm",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        default_response_class=FarmJSONResponse,
    )
    app.state.farm = farm
    app.state.api_settings = settings or ApiSettings()
    install_error_handlers(app)
    for module in (health, session, submit, jobs, media, events, shows, metrics, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    return app
