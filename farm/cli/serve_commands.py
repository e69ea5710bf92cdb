"""``farm serve``: the farm manager and its HTTP API, a long-running service (a thin shell over farm.jobs)."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

import click

from farm import defaults, files
from farm.cli.options import address_option, farm_from, settings_options, stdout
from farm.errors import UsageError
from farm.install import require_render_side
from farm.jobs import EngineEvent, EngineEventKind, EngineOptions, Farm
from farm.settings import LOCAL_TOKEN_FILE


@click.command()
@click.option(
    "--listen",
    envvar="FARM_LISTEN",
    metavar="HOST:PORT",
    help="Where the HTTP API listens (port 0 picks a free one); 'none' serves no API [env FARM_LISTEN; "
    f"else the config file's server.listen; default {defaults.API_LISTEN}].",
)
@click.option(
    "--idle-release",
    type=click.FloatRange(min=0),
    default=defaults.IDLE_RELEASE_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Release a worker that has had nothing to render this long, so other models can load.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="At most this many workers per model (default: every slot)."
)
@settings_options
@address_option
def serve(listen: str | None, idle_release: float, workers: int | None, **flags: object) -> None:
    """Run the farm manager: take every queued job and drive it to its edit, with the HTTP API beside it.

    A second farm serve on the same database stands by and takes over within seconds if this one stops.
    Stop it with Ctrl-C or SIGTERM: running shots are queued again, nothing done is lost.

    \b
    Examples:
      farm serve
      farm serve --address head:6379 --listen 0.0.0.0:8765
      farm serve --db postgresql://farm@db/farm --listen none
    """
    require_render_side("farm serve")
    farm = farm_from(**flags)
    farm.database(write=True)  # a service creates (and migrates) its database before anything reads it
    _first_token(farm)
    for show in farm.apply_config_shows():
        _log(f"show {show.name}: share {show.share:g}, GPU quota {show.gpu_quota}, budget {show.gpu_hour_budget} h")
    listen = listen or farm.settings.config.listen or defaults.API_LISTEN
    stop = threading.Event()
    _stop_on_signals(stop)
    api = _start_api(farm, listen)
    if api is not None:
        _log(f"HTTP API on {api.url} (OpenAPI at {api.url}/docs)")
    options = EngineOptions(idle_release_seconds=idle_release, max_workers_per_model=workers)
    try:
        farm.serve(stop=stop, options=options, observer=_log_event, api_url=api.url if api else None)
    finally:
        if api is not None:
            api.stop()
    _log("stopped")


def _first_token(farm: Farm) -> None:
    """On a farm with no API token yet, make an admin token for this machine and keep it in the data dir
    (mode 0600), so ``farm submit --server http://127.0.0.1:PORT`` here works at once; editors and other
    machines get their own with ``farm token create``."""
    if farm.tokens():
        return
    path = farm.settings.data_dir / LOCAL_TOKEN_FILE
    token = farm.create_token("local-admin", "admin")
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_text(path, token + "\n", private=True)  # a credential: the one file farm keeps 0600
    _log(f"made an admin API token for this machine in {path}; give others theirs with farm token create")


def _start_api(farm: object, listen: str):
    if listen.lower() == "none":
        return None
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--listen {listen}: give HOST:PORT (e.g. 127.0.0.1:8765), or none")
    from farm.api.app import create_app
    from farm.api.server import ApiServer

    server = ApiServer(create_app(farm), host, int(port))
    server.start()
    return server


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        _log(f"{signal.Signals(signum).name}: stopping (running shots are queued again)")
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _log_event(event: EngineEvent) -> None:
    if event.kind is EngineEventKind.PROGRESS:
        return
    subject = f" {event.shot_id}" if event.shot_id else ""
    detail = f" {event.message}" if event.message else ""
    worker = f" on {event.worker}" if event.worker else ""
    if event.kind is EngineEventKind.MESSAGE:
        _log(f"{event.message}")
    elif event.kind is EngineEventKind.JOB:
        _log(f"{event.total} shots, {event.fraction:.0%} done already")
    else:
        _log(f"{event.kind}{subject}{worker}{detail}")


def _log(message: str) -> None:
    stdout.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", highlight=False, soft_wrap=True)


COMMANDS = [serve]
