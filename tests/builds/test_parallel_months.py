"""Months written by a process pool: the same catalog as in one process, and writers that
fork from a forkserver which already holds their imports."""

from __future__ import annotations

import hashlib
import importlib
import io
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static import _processes
from dafab_static.options import BuildOptions

from .generate import item, write_ndjson

workers = importlib.import_module("dafab_static.workers")
intake_module = importlib.import_module("dafab_static.intake")


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _uneven_months(sizes: tuple[int, int, int]) -> list[dict[str, Any]]:
    """Items of March, May and July, ``sizes`` of each; only March has ``gen:march``, so
    the other months' partitions are rewritten with its column."""
    items = [item(i, month=m, day=1 + i % 28) for m, n in zip((3, 5, 7), sizes, strict=True)
             for i in range(n * m, n * m + n)]  # fmt: skip
    for it in items[: sizes[0]]:
        it["properties"]["gen:march"] = 1
    return items


class _PoolSpy:
    """What the build's process pools were started with and given."""

    def __init__(self) -> None:
        self.methods: list[str] = []  # start method of each pool
        self.submitted: list[str] = []  # function of each job


@pytest.fixture
def pool_spy(monkeypatch: pytest.MonkeyPatch) -> _PoolSpy:
    """Deterministic, pooled builds of a few items: a pool from 10 items on two cores, the
    release marker's build time fixed, and every pool recorded."""
    spy = _PoolSpy()

    class Pool(workers.ProcessPoolExecutor):  # type: ignore[misc,name-defined]
        def __init__(self, processes: int, **kw: Any) -> None:
            spy.methods.append(kw["mp_context"].get_start_method())
            super().__init__(processes, **kw)

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            spy.submitted.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(workers, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(workers, "PARALLEL_MIN_ITEMS", 10)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    return spy


def test_pool_writes_the_same_catalog_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_spy: _PoolSpy
) -> None:
    # Months of very different sizes, so the pool finishes them out of order.
    items = _uneven_months((40, 400, 90))
    src = write_ndjson(tmp_path / "in.ndjson", items)
    monkeypatch.setattr(intake_module, "WARM_UP_ITEMS", 50)
    calls: list[int] = []

    def warm_up(count: int) -> None:
        calls.append(count)
        _processes.warm_up(count)

    monkeypatch.setattr(intake_module, "warm_up", warm_up)
    pooled = dafab_static.build([str(src)], str(tmp_path / "pooled"),
                                options=BuildOptions(workers=2))  # fmt: skip
    alone = dafab_static.build([str(src)], str(tmp_path / "alone"),
                               options=BuildOptions(workers=1))  # fmt: skip
    assert calls == [2, 1]  # once per build, at the 50th item
    # The first build wrote its months in the pool, largest first, then rewrote May and July.
    assert pool_spy.submitted == ["_write_month"] * 3 + ["_rewrite"] * 2
    assert pooled.items == alone.items == len(items)
    assert pooled.partitions == 3
    assert _digests(tmp_path / "pooled") == _digests(tmp_path / "alone")
    index = pq.read_table(tmp_path / "pooled" / "index" / "gen")
    assert index.column("gen:march").null_count == 490


_PROBE = """
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor


def loaded(name):
    return name in sys.modules


if __name__ == "__main__":
    from dafab_static._processes import PRELOAD, warm_up

    if sys.argv[1] == "warm":
        warm_up(2)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        print(all(pool.map(loaded, PRELOAD)))
"""


@pytest.mark.parametrize(("mode", "expected"), [("warm", "True"), ("cold", "False")])
def test_writers_fork_with_their_imports_loaded(tmp_path: Path, mode: str, expected: str) -> None:
    # A fresh interpreter: the forkserver is one per process, and this one's may be running.
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(_PROBE))
    out = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert out.stdout.strip() == expected


_CTRL_C = """
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor

if __name__ == "__main__":
    from dafab_static._processes import init_child, parent_facts, warm_up

    warm_up(2)  # the forkserver now imports the writers' modules, for about a second
    time.sleep(float(sys.argv[1]))
    try:
        os.killpg(0, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
        time.sleep(5)
    except KeyboardInterrupt:
        pass
    # a worker set up as the build's are stops at Ctrl-C, quietly
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"),
                             initializer=init_child, initargs=parent_facts()) as pool:
        worker = pool.submit(os.getpid).result()
        os.kill(worker, signal.SIGINT)
        while True:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    print("stopped")
"""


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5])
def test_ctrl_c_while_the_forkserver_loads_prints_no_traceback(
    tmp_path: Path, delay: float
) -> None:
    """The forkserver is in the build's process group, so a terminal's Ctrl-C reached it
    while it imported pyarrow, and it printed a traceback under "interrupted"."""
    script = tmp_path / "ctrl_c.py"
    script.write_text(textwrap.dedent(_CTRL_C))
    out = subprocess.run([sys.executable, str(script), str(delay)], capture_output=True,
                         text=True, timeout=120, start_new_session=True)  # fmt: skip
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stdout.strip() == "stopped", out.stderr


def test_no_forkserver_for_one_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    started: list[bool] = []
    preloads: list[list[str]] = []
    monkeypatch.setattr("multiprocessing.forkserver.ensure_running", lambda: started.append(True))
    monkeypatch.setattr(multiprocessing.get_context("forkserver"), "set_forkserver_preload",
                        preloads.append)  # fmt: skip
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    _processes.warm_up(0)
    _processes.warm_up(1)
    assert started == []
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    _processes.warm_up(0)
    assert started == [True]
    assert preloads == [["__main__", *_processes.PRELOAD]]


def test_without_forkserver_writers_are_spawned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_spy: _PoolSpy
) -> None:
    # Windows has no forkserver: no warm-up, and a spawned pool writes the same catalog.
    started: list[bool] = []
    monkeypatch.setattr("multiprocessing.forkserver.ensure_running", lambda: started.append(True))
    monkeypatch.setattr("multiprocessing.get_all_start_methods", lambda: ["spawn"])
    _processes.warm_up(2)
    assert started == []
    src = write_ndjson(tmp_path / "in.ndjson", [item(i, month=1 + i % 3) for i in range(30)])
    dafab_static.build([str(src)], str(tmp_path / "spawned"), options=BuildOptions(workers=2))
    dafab_static.build([str(src)], str(tmp_path / "alone"), options=BuildOptions(workers=1))
    assert pool_spy.methods == ["spawn"]
    assert _digests(tmp_path / "spawned") == _digests(tmp_path / "alone")


def test_a_script_from_stdin_writes_months_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python - < script.py`: children cannot re-run a main module named <stdin>, and a pool
    # would break (BrokenProcessPool); months are written in this process instead.
    import sys

    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    monkeypatch.setattr(workers, "PARALLEL_MIN_ITEMS", 10)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    started: list[bool] = []
    monkeypatch.setattr("multiprocessing.forkserver.ensure_running", lambda: started.append(True))
    monkeypatch.setattr(workers, "ProcessPoolExecutor", None)  # any pool would fail loudly
    _processes.warm_up(2)
    src = write_ndjson(tmp_path / "in.ndjson", [item(i, month=1 + i % 3) for i in range(30)])
    report = dafab_static.build([str(src)], str(tmp_path / "out"), options=BuildOptions(workers=2))
    assert (report.items, started) == (30, [])


def test_pool_writes_and_rewrites_on_s3(s3_bucket: str, tmp_path: Path, pool_spy: _PoolSpy) -> None:
    # The workers get the destination store by pickle, write months to the bucket, and read
    # partitions back from it to rewrite them with the collection's schema.
    from dafab_static.storage import open_store

    items = _uneven_months((20, 60, 30))
    src = write_ndjson(tmp_path / "in.ndjson", items)
    dest = f"s3://{s3_bucket}/stac"
    report = dafab_static.build([str(src)], dest, options=BuildOptions(workers=2))
    assert pool_spy.submitted == ["_write_month"] * 3 + ["_rewrite"] * 2
    assert report.items == len(items) and report.ok, report.summary()
    assert dafab_static.validate(dest).ok
    store = open_store(dest)
    index = [k for k in store.list() if k.endswith("items.parquet")]
    assert len(index) == 3
    tables = [pq.read_table(io.BytesIO(store.get(k))) for k in index]
    assert all(t.schema.get_field_index("gen:march") >= 0 for t in tables)
    assert sum(t.column("gen:march").null_count for t in tables) == 90


_STALE_FORKSERVER = """
import json
import multiprocessing
import os
import sys
from multiprocessing import forkserver

if __name__ == "__main__":
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    multiprocessing.get_context("forkserver")
    forkserver.ensure_running()  # started by an earlier step, before the credentials were set
    os.environ.update(saved)

    import dafab_static
    from dafab_static import workers
    from dafab_static.options import BuildOptions

    workers.PARALLEL_MIN_ITEMS = 10
    report = dafab_static.build([sys.argv[1]], sys.argv[2], options=BuildOptions(workers=2))
    print(json.dumps({"items": report.items, "ok": report.ok}))
"""


def test_writers_use_the_credentials_of_the_build_not_of_the_forkserver(
    s3_bucket: str, tmp_path: Path
) -> None:
    import json
    import os

    src = write_ndjson(tmp_path / "in.ndjson", [item(i, month=1 + i % 3) for i in range(30)])
    script = tmp_path / "stale.py"
    script.write_text(_STALE_FORKSERVER)
    out = subprocess.run(
        [sys.executable, str(script), str(src), f"s3://{s3_bucket}/stac"],
        capture_output=True, text=True, timeout=180, env={**os.environ},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1]) == {"items": 30, "ok": True}
