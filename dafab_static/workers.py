"""Phase 2's process pool: months, then partition rewrites, largest first.

Months are independent, so with enough items they are written by one process per core
(:class:`Workers`); below :data:`PARALLEL_MIN_ITEMS`, or with one core, they are written
here, in the same order, to the same bytes. The pool's processes fork from a forkserver
that ingest starts early with their imports loaded (:func:`dafab_static._processes.warm_up`).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import TypeVar

from dafab_static import _processes, index
from dafab_static.writer import (
    MonthJob,
    MonthResult,
    MonthWriter,
    Rewrite,
    WriterConfig,
    rewrite_partition,
)

#: Below this many items a process pool costs more (start-up, pickling) than it saves.
PARALLEL_MIN_ITEMS = 5000
#: Ingest starts the writers' forkserver (:func:`~dafab_static._processes.warm_up`) once it
#: has read this many items: early enough to hide its imports, late enough that small
#: builds never start it.
WARM_UP_ITEMS = 1000
_J = TypeVar("_J")
_R = TypeVar("_R")


class Workers:
    """Writes months and rewrites partitions, in a process pool when it pays.

    Use as a context manager; the pool (if any) lives until the block ends, so the
    partition rewrites that follow the months reuse its processes.
    """

    def __init__(self, config: WriterConfig, *, workers: int, items: int, months: int) -> None:
        self.config = config
        processes = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._local: MonthWriter | None = None
        # Without a reloadable __main__ (a script on stdin), months are written here.
        reloadable = _processes.main_reloadable()
        if processes > 1 and items >= PARALLEL_MIN_ITEMS and months > 1 and reloadable:
            # The config goes pickled, to be opened after the environment is set (below).
            initargs = (*_processes.parent_facts(), pickle.dumps(config))
            context = _processes.context()
            self._pool = ProcessPoolExecutor(
                processes, mp_context=context, initializer=_init_worker, initargs=initargs
            )

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=kind is not None)

    def months(self, jobs: Sequence[MonthJob]) -> Iterator[MonthResult]:
        """Write months; results come back in job order."""
        if self._pool is None:
            writer = self._local = self._local or MonthWriter(self.config)
            return map(writer, jobs)
        return _largest_first(self._pool, _write_month, jobs, [j.items for j in jobs])

    def rewrite(self, jobs: list[Rewrite]) -> list[index.PartitionInfo]:
        """Rewrite partitions (:func:`~dafab_static.writer.rewrite_partition`), in order."""
        if self._pool is None or len(jobs) < 2:
            return [rewrite_partition(self.config.release, job) for job in jobs]
        return list(_largest_first(self._pool, _rewrite, jobs, [j.info.rows for j in jobs]))


def _largest_first(
    pool: ProcessPoolExecutor, fn: Callable[[_J], _R], jobs: Sequence[_J], sizes: list[int]
) -> Iterator[_R]:
    """``map(fn, jobs)`` on the pool, submitting the largest jobs first.

    In job order, a large job started last keeps one worker busy while the others have
    nothing left (10k NAIP: months of 3,020, 2,770 and 1,764 items among 13 small ones,
    the large ones late in time order). Results are yielded in job order all the same.
    """
    order = sorted(range(len(jobs)), key=lambda i: -sizes[i])
    futures: dict[int, Future[_R]] = {i: pool.submit(fn, jobs[i]) for i in order}
    for i in range(len(jobs)):
        yield futures.pop(i).result()


_WORKER: MonthWriter | None = None


def _init_worker(environment: dict[str, str], parent: int, config: bytes) -> None:
    """Set up a writer process with the parent's storage environment, then its config.

    An obstore ``S3Store`` pickles its settings but not the credentials it read from the
    environment: unpickled, it reads them again, here. A forkserver child has the
    environment of the forkserver, which is that of the parent when the server started,
    perhaps an earlier build of a long-lived process: with other or no AWS variables, the
    writers failed (seen in the tests: no key, so the instance metadata service was asked).
    """
    global _WORKER
    _processes.init_child(environment, parent)
    _WORKER = MonthWriter(pickle.loads(config))


def _write_month(job: MonthJob) -> MonthResult:
    assert _WORKER is not None
    return _WORKER(job)


def _rewrite(job: Rewrite) -> index.PartitionInfo:
    assert _WORKER is not None
    return rewrite_partition(_WORKER.release, job)
