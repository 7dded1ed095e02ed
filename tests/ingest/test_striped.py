"""Large files read by several processes give exactly what one process gives, in its order."""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static import entries
from dafab_static.errors import InputError
from dafab_static.ingest import Prepared, Record, iter_records
from dafab_static.options import BuildOptions
from tests.builds.generate import item

stac = importlib.import_module("dafab_static.ingest.stac")
batches = importlib.import_module("dafab_static.ingest.batches")
striped = importlib.import_module("dafab_static.ingest.striped")


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe every file, in batches of 7 lines or rows: many batches per reader."""
    monkeypatch.setattr(striped, "MIN_BYTES", 0)
    monkeypatch.setattr(striped, "MIN_ROWS", 0)
    monkeypatch.setattr(batches, "BATCH_ROWS", 7)


def _flawed_lines() -> list[str]:
    """100 items with one flaw of each kind the readers and ``entries.prepare`` report."""
    items = [item(i, month=1 + i % 3) for i in range(100)]
    del items[30]["properties"]["datetime"]  # no datetime: the reader's error
    items[45]["id"] = items[3]["id"]  # a duplicate in another batch and stripe: the spool's
    items[50]["properties"]["datetime"] = "2024-01-02 05:00:00+00:00"  # respelled: a notice
    items[51]["properties"]["datetime"] = "2024-01-02 06:00:00+00:00"
    items[60]["id"] = "../escape"  # prepare's error
    items[70]["stac_version"] = "0.8.0"  # migrated by pystac: a notice
    items[70]["properties"]["datetime"] = "2024-02-03T00:00:00Z"
    lines = [json.dumps(it) for it in items]
    lines[10] = "{not json"
    lines[20] = ""
    return lines


def _log(source: str, workers: int) -> tuple[list[tuple[str, str]], int]:
    """What reading ``source`` gives, in order, and how many items came from readers."""
    log: list[tuple[str, str]] = []
    seen: set[bytes] = set()
    from_readers = 0

    def error(e: InputError) -> None:
        log.append(("error", str(e)))

    def notice(message: str) -> None:
        log.append(("notice", message))

    prepare = entries.Preparer()
    for record in iter_records([source], on_error=error, on_notice=notice, workers=workers,
                               prepare=prepare):  # fmt: skip
        if isinstance(record, Prepared):
            packed, i = record.batch, record.index
            key, where, item_id = packed.keys[i], packed.sources[i], packed.ids[i]
            from_readers += 1
        else:
            assert isinstance(record, Record)
            try:
                entry = prepare.item(record.data, record.source)
            except InputError as e:
                error(e)
                continue
            key, where, item_id = entry.key, entry.source, entry.item_id
        if key in seen:
            log.append(("duplicate", where))
            continue
        seen.add(key)
        log.append(("item", f"{where} {item_id}"))
    return log, from_readers


def _parquet(path: Path, items: list[dict[str, Any]]) -> Path:
    from dafab_static.index import to_table

    pq.write_table(to_table(items), path, row_group_size=40)
    return path


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("methods", [None, ["spawn"]], ids=["here", "no-forkserver"])
def test_readers_give_what_one_process_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, methods: list[str] | None
) -> None:
    if methods is not None:  # as on Windows: readers are spawned, and import what they need
        monkeypatch.setattr("multiprocessing.get_all_start_methods", lambda: methods)
    from dafab_static import _processes

    started: list[str] = []
    context = _processes.context

    def spy() -> Any:
        started.append((made := context()).get_start_method())
        return made

    monkeypatch.setattr(_processes, "context", spy)
    src = tmp_path / "flawed.ndjson"
    src.write_text("\n".join(_flawed_lines()) + "\n")
    alone, none = _log(str(src), workers=1)
    striped_log, from_readers = _log(str(src), workers=3)
    assert started == ["spawn" if methods else "forkserver"]
    assert none == 0
    assert from_readers == sum(kind == "item" for kind, _ in alone) + 1  # + the duplicate
    assert striped_log == alone
    kinds = [kind for kind, _ in alone]
    assert kinds.count("item") == 95 and kinds.count("duplicate") == 1
    assert kinds.count("error") == 3  # invalid JSON, no datetime, the escaping id
    notices = [text for kind, text in alone if kind == "notice"]
    assert len(notices) == 2  # one migration, then one line for both respelled timestamps
    assert "2 item(s) with timestamps spelled otherwise than as STAC's" in notices[-1]


@pytest.mark.usefixtures("small_batches")
def test_striped_parquet_rows_keep_their_numbers(tmp_path: Path) -> None:
    items = [item(i, month=1 + i % 4) for i in range(150)]
    items[99]["id"] = items[0]["id"]
    src = _parquet(tmp_path / "items.parquet", items)
    alone, _ = _log(str(src), workers=1)
    striped_log, from_readers = _log(str(src), workers=2)
    assert striped_log == alone and from_readers == 150
    (duplicate,) = [where for kind, where in alone if kind == "duplicate"]
    assert duplicate.startswith(f"{src}#")  # to_table orders rows: which row is not known


@pytest.mark.usefixtures("small_batches")
def test_a_file_that_is_not_stac_geoparquet_fails_once(tmp_path: Path) -> None:
    src = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"id": [f"x{i}" for i in range(50)], "value": list(range(50))}), src)
    alone, _ = _log(str(src), workers=1)
    striped_log, _ = _log(str(src), workers=2)
    assert striped_log == alone
    assert alone == [("error", f"{src}#0: not stac-geoparquet: no 'geometry', 'bbox' column")]


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.usefixtures("small_batches")
def test_a_striped_build_publishes_the_same_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src = tmp_path / "flawed.ndjson"
    src.write_text("\n".join(_flawed_lines()) + "\n")
    started: list[int] = []
    read = striped.read

    def spy(*args: Any, **kwargs: Any) -> Any:
        started.append(kwargs["processes"])
        return read(*args, **kwargs)

    monkeypatch.setattr(striped, "read", spy)
    reports = {}
    for workers in (2, 1):
        options = BuildOptions(workers=workers)
        reports[workers] = dafab_static.build([str(src)], str(tmp_path / f"out{workers}"),
                                              options=options)  # fmt: skip
    assert started == [2]
    assert reports[2].items == reports[1].items == 95
    assert reports[2].skipped == reports[1].skipped and len(reports[1].skipped) == 4
    assert reports[2].warnings == reports[1].warnings
    assert _digests(tmp_path / "out2") == _digests(tmp_path / "out1")


@pytest.mark.usefixtures("small_batches")
def test_strict_stops_at_the_same_first_problem(tmp_path: Path) -> None:
    src = tmp_path / "flawed.ndjson"
    lines = _flawed_lines()
    src.write_text("\n".join(lines[:10] + lines[11:]) + "\n")  # first flaw: line 20, blank
    messages = []
    for workers in (2, 1):
        with pytest.raises(InputError) as caught:
            dafab_static.build([str(src)], str(tmp_path / f"out{workers}"),
                               options=BuildOptions(workers=workers, strict=True))  # fmt: skip
        messages.append(str(caught.value))
        assert not (tmp_path / f"out{workers}").exists()
    assert messages[0] == messages[1]
    assert "no datetime" in messages[0]
    assert multiprocessing.active_children() == []  # the readers were stopped


def test_small_files_and_urls_are_read_here(tmp_path: Path) -> None:
    src = tmp_path / "few.ndjson"
    src.write_text("\n".join(json.dumps(item(i)) for i in range(5)) + "\n")
    assert striped.readers(str(src), stac.NDJSON, 4) == 0  # below MIN_BYTES
    assert striped.readers("https://example.com/big.ndjson", stac.NDJSON, 4) == 0
    table = _parquet(tmp_path / "few.parquet", [item(i) for i in range(5)])
    assert striped.readers(str(table), stac.PARQUET, 4) == 0  # below MIN_ROWS
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert striped.readers(str(broken), stac.PARQUET, 4) == 0  # read here, to be reported


@pytest.mark.usefixtures("small_batches")
def test_one_core_reads_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "some.ndjson"
    src.write_text("\n".join(json.dumps(item(i)) for i in range(5)) + "\n")
    assert striped.readers(str(src), stac.NDJSON, 2) == 2
    assert striped.readers(str(src), stac.NDJSON, 1) == 0
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert striped.readers(str(src), stac.NDJSON, 0) == 0


_KILLED = """
import multiprocessing
import sys

from dafab_static import entries
from dafab_static.ingest import batches, stac, striped

if __name__ == "__main__":
    striped.MIN_BYTES = 0
    batches.BATCH_ROWS = 2
    prepare = entries.Preparer()
    records = stac.read(sys.argv[1], on_error=print, on_notice=print, prepare=prepare, workers=2)
    next(records)
    print(*[child.pid for child in multiprocessing.active_children()], flush=True)
    sys.stdin.read()  # until killed
"""


def test_readers_exit_when_their_caller_is_killed(tmp_path: Path) -> None:
    # SIGKILL skips every clean-up: the readers, blocked on their full queues, see that the
    # caller is gone and exit instead of waiting forever.
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "many.ndjson"
    src.write_text("\n".join(json.dumps(item(i)) for i in range(200)) + "\n")
    script = tmp_path / "killed.py"
    script.write_text(_KILLED)
    with subprocess.Popen([sys.executable, str(script), str(src)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        pids = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(pids) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 20
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in pids if _running(pid)]
    assert alive == []


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
