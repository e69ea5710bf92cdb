"""The collector pause around bulk reads and the front end: nests, spans threads, always gives it back."""

from __future__ import annotations

import gc
import threading

import pytest

from farm.collector import collector_paused


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "an inner read must not turn the collector on under an outer one"
    assert gc.isenabled()


def test_an_error_inside_still_gives_the_collector_back() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the read failed")
    assert gc.isenabled()


def test_a_caller_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_reads_on_threads_restore_it_only_when_the_last_ends() -> None:
    inside, release = threading.Barrier(3), threading.Event()

    def read() -> None:
        with collector_paused():
            inside.wait(timeout=30)
            release.wait(timeout=30)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait(timeout=30)
    assert not gc.isenabled()
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert gc.isenabled()
