"""Open index files once per process: parsed footers are the cost of a warm search.

A stac-geoparquet footer with a few hundred leaf columns (Sentinel-2 assets) takes
milliseconds to parse, and a catalog partitioned by month has hundreds of files, so a
search that reopened every file would spend most of its time in footers. Open readers
are kept in a bounded LRU, keyed by what proves the content unchanged: the manifest's
checksum, or a local file's size and modification time. Remote files without a checksum
are not cached (nothing cheap proves they did not change).

A cached file also keeps its parsed footer while :data:`FOOTERS` has room for it: see
:class:`FooterBudget`.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import urlsplit

from dafab_static.errors import QueryError
from dafab_static.search.sources import IndexFile

T = TypeVar("T")
R = TypeVar("R")

_CAPACITY = 2048  # open readers kept; local ones hold a file descriptor each
_WORKERS = max(2, min(8, os.cpu_count() or 2))
# Remote reads wait on the network, not the CPU: more files in flight hide the round trips.
REMOTE_WORKERS = 4
# ordered_map's window when results are small (see there). Measured on the 1M catalog,
# `search --filter '"eo:cloud_cover" BETWEEN 10 AND 12' --format ndjson` (8,000 items from
# 288 files): 10.05 s with 4 files in flight, 9.06 s with 32.
WIDE_WINDOW = 32
WINDOW_BYTES = 64 * 1024 * 1024


class Cache:
    """An LRU of opened files; ``open`` is safe to call from several threads."""

    def __init__(self, capacity: int = _CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: IndexFile, make: Callable[[], T]) -> tuple[T, bool]:
        """The cached object for ``index``, or a new one from ``make``; and whether it is
        shared (cached), in which case the caller must not close it."""
        key = _key(index)
        if key is None:
            return make(), False
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key], True  # type: ignore[return-value]
        value = make()
        with self._lock:
            if key in self._entries:  # another thread won the race: keep one
                _close(value)
                self._entries.move_to_end(key)
                return self._entries[key], True  # type: ignore[return-value]
            self._entries[key] = value
            while len(self._entries) > self.capacity:
                _close(self._entries.popitem(last=False)[1])
        return value, True

    def clear(self) -> None:
        """Close and forget every cached file."""
        with self._lock:
            for value in self._entries.values():
                _close(value)
            self._entries.clear()


class FooterBudget:
    """How many bytes of parsed Parquet footers the process keeps between searches.

    Parsing a footer, then freeing it, is a fixed cost of every file a search opens: for a
    Sentinel-2 file of 272 leaf columns, 1.35 ms to open and close a reader against 0.46 ms
    when it is handed the parsed footer (measured). On the 1M benchmark catalog (432 files),
    keeping them took ``small_bbox`` as STAC dicts from 4.4-5.3 s to 3.3-3.6 s. Parsed
    footers are large, though: those 432 (31 MB serialized) held 263 MB, 8.5 times their
    size. So footers are kept first come, first kept, until ``limit`` bytes (estimated from
    :data:`EXPANSION`), and the next files parse theirs at each use. Not least recently
    used: a search reads every file in turn, and an LRU smaller than that cycle would evict
    each footer just before its next use.

    The limit is ``DAFAB_FOOTER_CACHE_MB`` megabytes from the environment, 256 by default;
    0 keeps none.
    """

    EXPANSION = 9  # parsed bytes per serialized footer byte (8.5 measured, rounded up)

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self.used = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        if self._limit is None:
            self._limit = _megabytes("DAFAB_FOOTER_CACHE_MB", 256)
        return self._limit

    def admit(self, serialized: int) -> int:
        """Reserve room for a footer of ``serialized`` bytes: the bytes reserved (to give
        back with :meth:`release`), or 0 when it does not fit."""
        cost = serialized * self.EXPANSION
        with self._lock:
            if self.used + cost > self.limit:
                return 0
            self.used += cost
        return cost

    def release(self, cost: int) -> None:
        with self._lock:
            self.used -= cost


def _megabytes(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default * 1024 * 1024
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise QueryError(f"{name}={value!r}: expected a number of megabytes (0 or more)")
    return int(number * 1024 * 1024)


def _close(value: object) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()


def _key(index: IndexFile) -> tuple[object, ...] | None:
    parts = urlsplit(index.url)
    if parts.scheme in ("", "file"):
        try:
            stat = os.stat(parts.path if parts.scheme == "file" else index.url)
        except OSError:
            return None  # let the open report it
        return (index.url, stat.st_size, stat.st_mtime_ns)
    if index.checksum:
        return (index.url, index.checksum)
    return None


def ordered_map(
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    window: int | None = None,
    workers: int | None = None,
    weight: Callable[[R], int] | None = None,
) -> Iterator[R]:
    """``map`` on a thread pool, results in input order, at most ``window`` in flight.

    Parquet decoding and Arrow kernels release the GIL, so files scan in parallel; a
    consumer that stops early (``limit``) leaves at most ``window`` tasks to finish.

    With ``weight`` (a result's size in bytes), the window grows while results are small,
    up to ``WIDE_WINDOW`` tasks or about ``WINDOW_BYTES`` of results waiting: a consumer
    that spends time on each result (turning rows into JSON) then keeps the workers busy,
    where a window of ``2 * workers`` left them idle while it worked. A search that keeps
    whole files stays at the narrow window, and so within its memory.
    """
    iterator = iter(items)
    workers = workers or _WORKERS
    window = narrow = window or 2 * workers
    done = total = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dafab-scan") as pool:
        pending: list[Future[R]] = []
        try:
            for item in iterator:
                pending.append(pool.submit(function, item))
                while len(pending) >= window:
                    result = pending.pop(0).result()
                    if weight is not None:
                        done, total = done + 1, total + weight(result)
                        fits = WINDOW_BYTES * done // max(total, 1)
                        window = max(narrow, min(WIDE_WINDOW, fits))
                    yield result
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()


CACHE = Cache()
FOOTERS = FooterBudget()
# Close cached readers before the interpreter tears down: a Parquet reader freed by the
# garbage collector during shutdown can release its buffers on an Arrow I/O thread after
# Python is gone and abort the process (seen about once in seven 1M-item runs; see
# apache/arrow#34314).
atexit.register(CACHE.clear)
