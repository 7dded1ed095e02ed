"""Large local NDJSON and stac-geoparquet files, read by several processes at once.

Reading another hub's item costs about 100 µs of Python (Arrow to dicts or JSON parsing,
the checks of :class:`~dafab_static.ingest.stac.Reader`, then the caller's ``prepare``,
which for a build checks and serialises it for the spool). In one process that was the
longest serial part of a large build: 1M items spent more time in it than writing every
month on two cores.

Here each of N reader processes runs :func:`~dafab_static.ingest.batches.raw_batches` over the
whole file, which only splits it (lines, or decoded Parquet batches), and handles only its
stripe: batch *i* goes to reader *i* mod N. A reader sends what each batch gave through
its own bounded queue: the items as the caller's ``prepare`` packed them (for a build,
spool lines and counts: the build process then only checks ids), and the items, errors
and notices in their order. The caller takes batch 0 from reader 0, batch 1 from reader 1,
and so on. So everything arrives in file order, exactly as one process would give it (the
first of two duplicates is still the first, ``--strict`` still stops at the first
problem), and at most :data:`QUEUED` batches per reader wait in memory.

Each reader reads the whole file, and the build process still handles every item (an id
check, ~2 µs), so this scales to some tens of readers, not to hundreds.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dafab_static import _processes
from dafab_static.errors import DafabError, InputError
from dafab_static.ingest import batches
from dafab_static.ingest.batches import BATCH_ROWS, raw_batches
from dafab_static.ingest.stac import Prepare, Prepared, Reader
from dafab_static.media_types import NDJSON

#: Files smaller than this are read in one process: starting readers costs about 0.7 s
#: (the forkserver imports what every worker of a build needs), which pays off only on
#: large files. With 2 cores, generated NAIP items (3 kB of ndjson each): ingest of 40k
#: items 2.9-3.7 s striped against 2.3-3.2 s in one process, of 100k 4.3 s against 5.4-5.7 s.
MIN_BYTES = 128 << 20
MIN_ROWS = 50 * BATCH_ROWS
#: Batches each reader may have sent ahead of the caller.
QUEUED = 4
#: How often the caller checks that a reader it waits on is still alive, in seconds.
_POLL_S = 1.0


def readers(loc: str, kind: str, workers: int) -> int:
    """How many reader processes to use for a file: 0 to read it here.

    Only local files are striped (each reader reads the whole file), and only when they are
    large enough and more than one core is allowed; ``workers`` 0 means one per CPU.
    """
    count = workers or os.cpu_count() or 1
    if count < 2 or not _processes.main_reloadable() or not os.path.isfile(loc):
        return 0
    if kind == NDJSON:
        return count if os.path.getsize(loc) >= MIN_BYTES else 0
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(loc).metadata.num_rows
    except (pa.ArrowException, OSError, ValueError):
        return 0  # reading it in one process reports what is wrong with it
    return count if rows >= MIN_ROWS else 0


def read(
    loc: str,
    kind: str,
    *,
    processes: int,
    prepare: Prepare,
    reader: Reader,
) -> Iterator[Prepared]:
    """The prepared items of one file, read by ``processes`` reader processes, in file order.

    Each reader runs ``prepare.item`` on every item of its batches and ``prepare.batch`` on
    each batch's values, and sends that one object back: the caller takes its items as
    ``Prepared(batch, index)``, with no work per item on this side. Errors and notices go
    to ``reader.on_error``/``on_notice`` in their place among the items, as
    :meth:`Reader.stream` gives them (an InputError that ``prepare.item`` raises is an
    error too), and respelled timestamps are counted in ``reader.respelled``.

    Returns:
        An iterator; when it is closed early, or a callback raises, the readers are stopped.

    Raises:
        DafabError: as a reader raised it (a file that became unreadable mid-way).
        RuntimeError: a reader process died.
    """
    _processes.warm_up(processes)
    context: Any = _processes.context()  # typeshed's BaseContext lacks Process and Queue
    queues = [context.Queue(QUEUED) for _ in range(processes)]
    parent = _processes.parent_facts()
    procs = [
        context.Process(
            target=_stripe,
            args=(loc, kind, k, processes, batches.BATCH_ROWS, prepare, queues[k], parent),
            daemon=True,
        )
        for k in range(processes)
    ]
    try:
        for proc in procs:
            proc.start()
        index = 0
        while True:
            k = index % processes
            result = _take(queues[k], procs[k])
            if isinstance(result, _End):
                return
            if isinstance(result, BaseException):
                raise result
            for event in result.events:
                if isinstance(event, int):
                    yield Prepared(result.packed, event)
                elif isinstance(event, InputError):
                    reader.on_error(event)
                else:
                    reader.on_notice(event)
            if result.respelled is not None:
                count, first = reader.respelled or (0, result.respelled[1])
                reader.respelled = (count + result.respelled[0], first)
            if result.broken:
                return
            index += 1
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for q in queues:
            q.cancel_join_thread()  # a reader's unsent batches are dropped, not waited for
            q.close()
        for proc in procs:
            proc.join()


@dataclass(frozen=True)
class _Batch:
    """What one batch gave: its items' values packed by ``prepare.batch``, and in order
    its events: an item (its index among the packed values), an error or a notice."""

    packed: Any
    events: list[int | InputError | str]
    broken: bool
    respelled: tuple[int, tuple[str, str]] | None  # see Reader.respelled


@dataclass(frozen=True)
class _End:
    """The reader's stripe is done: there is no batch at the index the caller waits for."""


def _take(q: Any, proc: Any) -> _Batch | _End | BaseException:
    while True:
        try:
            result: _Batch | _End | BaseException = q.get(timeout=_POLL_S)
            return result
        except queue.Empty:
            if not proc.is_alive():
                raise RuntimeError(
                    f"a reader process exited with code {proc.exitcode} before it was done"
                ) from None


def _stripe(
    loc: str, kind: str, k: int, n: int, rows: int, prepare: Prepare, out: Any,
    parent: tuple[dict[str, str], int],
) -> None:  # fmt: skip
    """Reader process ``k`` of ``n``: handle batches ``k``, ``k + n``, ... of ``rows`` lines
    or rows each (the caller's :data:`~dafab_static.ingest.batches.BATCH_ROWS`); ``parent``
    is :func:`~dafab_static._processes.parent_facts` (its storage variables read s3://)."""
    _processes.init_child(*parent)
    events: list[int | InputError | str] = []
    values: list[Any] = []

    def emit(event: InputError | str) -> None:
        events.append(event)  # the batch's list of the moment: each is sent as it is

    try:
        reader = Reader(emit, emit, set())
        for index, raw in enumerate(raw_batches(loc, kind, rows)):
            if index % n != k:
                if raw.error is not None:
                    break  # the reader whose batch this is reports it; nothing follows
                continue
            for record in reader.batch(loc, kind, raw):
                try:
                    values.append(prepare.item(record.data, record.source))
                except InputError as error:
                    events.append(error)
                else:
                    events.append(len(values) - 1)
            batch = _Batch(prepare.batch(values), events, reader.broken, reader.respelled)
            if not _send(out, batch) or reader.broken:
                return
            events, values, reader.respelled = [], [], None
        _send(out, _End())
    except DafabError as error:
        _send(out, error)
    except Exception:  # a bug: give the caller the traceback's text
        import traceback

        _send(out, RuntimeError(f"reader {k} of {loc}:\n{traceback.format_exc()}"))


def _send(out: Any, message: object) -> bool:
    """Put ``message`` on the reader's queue; False if the caller died meanwhile.

    The queue is bounded, so a reader waits while the caller is busy; if the caller was
    killed (SIGKILL skips its clean-up), nobody will ever take the message, and the reader
    would wait forever. It checks every :data:`_POLL_S` that its caller is still there.
    """
    caller = multiprocessing.parent_process()
    while True:
        try:
            out.put(message, timeout=_POLL_S)
            return True
        except queue.Full:
            if caller is not None and not caller.is_alive():
                out.cancel_join_thread()  # exit without flushing to a pipe nobody reads
                return False
