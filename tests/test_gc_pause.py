"""The cyclic collector is paused over bulk work and comes back as it was."""

from __future__ import annotations

import gc
import importlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dafab_static
from dafab_static import _gc

from .builds.generate import item, write_ndjson


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_and_restored() -> None:
    with _gc.paused():
        assert not gc.isenabled()
        with _gc.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still runs
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with _gc.paused():
        pass
    assert not gc.isenabled()


def test_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), _gc.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_overlapping_threads_restore_once_the_last_ends() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with _gc.paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(10)
    with _gc.paused():
        pass
    assert not gc.isenabled()  # the other thread's block has not ended
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_build_ingests_and_writes_with_the_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = importlib.import_module("dafab_static.spool")
    writer = importlib.import_module("dafab_static.writer")
    seen: dict[str, list[bool]] = {"add": [], "write": []}
    add, write = spool.Spool.add, writer.MonthWriter._write

    def spy_add(self: Any, *args: Any) -> None:
        seen["add"].append(gc.isenabled())
        add(self, *args)

    def spy_write(self: Any, job: Any) -> Any:
        seen["write"].append(gc.isenabled())
        return write(self, job)

    monkeypatch.setattr(spool.Spool, "add", spy_add)
    monkeypatch.setattr(writer.MonthWriter, "_write", spy_write)
    src = write_ndjson(tmp_path / "in.ndjson", [item(i, month=1 + i % 2) for i in range(6)])
    dafab_static.build([str(src)], str(tmp_path / "out"))
    assert seen == {"add": [False] * 6, "write": [False, False]}
    assert gc.isenabled()
