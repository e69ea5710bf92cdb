"""An attempt's log: what its worker printed, warned and raised while rendering it, in one file.

A worker is a threaded actor (one thread renders while another fetches the next shot's inputs), so
output is routed by thread: ``sys.stdout``/``sys.stderr`` are replaced once by streams that write to
the log of the attempt the calling thread renders, and to the worker's own output otherwise; Python
warnings and log records of that thread go to the same file. The scheduler records the path on the
attempt's row, and ``farm logs`` prints it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_routes: dict[int, TextIO] = {}
_installed = threading.Lock()
_is_installed = False


class _RoutedStream:
    """A text stream that writes to the calling thread's attempt log, or to the stream it replaced."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:
        target = _routes.get(threading.get_ident())
        if target is None:
            return self.fallback.write(text)
        target.write(text)
        target.flush()
        return len(text)

    def flush(self) -> None:
        target = _routes.get(threading.get_ident())
        (target or self.fallback).flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.fallback, name)


class _RoutedHandler(logging.Handler):
    """Log records (and warnings) of a thread that renders an attempt, into that attempt's log."""

    def emit(self, record: logging.LogRecord) -> None:
        target = _routes.get(record.thread or 0)
        if target is not None:
            target.write(self.format(record) + "\n")
            target.flush()


def install() -> None:
    """Route output by thread from now on (once per process; a worker calls it when it starts)."""
    global _is_installed
    with _installed:
        if _is_installed:
            return
        sys.stdout = _RoutedStream(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _RoutedStream(sys.stderr)  # type: ignore[assignment]
        handler = _RoutedHandler(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.captureWarnings(True)
        _is_installed = True


@contextlib.contextmanager
def capture(path: str | None, header: str) -> Iterator[None]:
    """Inside the block, this thread's output goes to ``path`` (nothing happens for None); an exception
    leaving the block is written there with its traceback, then raised on."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {header}\n")
        log.flush()
        _routes[threading.get_ident()] = log
        try:
            yield
        except BaseException as exc:
            log.write("".join(traceback.format_exception(exc)))
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} attempt failed: {type(exc).__name__}: {exc}\n")
            raise
        else:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} attempt finished\n")
        finally:
            _routes.pop(threading.get_ident(), None)
