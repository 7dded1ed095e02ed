"""NDJSON and stac-geoparquet files split into batches of lines or rows, not yet parsed.

Splitting is the cheap, sequential part of reading such a file; parsing and checking the
items (:class:`dafab_static.ingest.stac.Reader`) is the costly part, which the readers of
a large file (:mod:`dafab_static.ingest.striped`) share out batch by batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dafab_static.errors import InputError
from dafab_static.ingest._fetch import open_bytes, readline, seekable
from dafab_static.media_types import NDJSON

#: NDJSON lines or Parquet rows read at a time: a few MB of dicts for wide hub items.
BATCH_ROWS = 1000
#: What reading or converting a file that is not stac-geoparquet raises, besides Arrow's
#: own errors; stac-geoparquet checks its input with assert, so AssertionError is one.
NOT_STAC_GEOPARQUET: tuple[type[Exception], ...] = (
    AssertionError, KeyError, TypeError, ValueError, OSError,
)  # fmt: skip


@dataclass(frozen=True)
class RawBatch:
    """Up to :data:`BATCH_ROWS` lines of NDJSON or rows of stac-geoparquet, not yet parsed.

    Attributes:
        first: The number of its first line (1-based) or row (0-based), for messages.
        rows: The lines (``bytes``), or a ``pyarrow.RecordBatch``.
        error: Set when the file cannot be read on from here; ``rows`` is then empty.
    """

    first: int
    rows: Any
    error: InputError | None = None


def raw_batches(loc: str, kind: str, rows: int = 0) -> Iterator[RawBatch]:
    """Read an NDJSON (``kind`` :data:`NDJSON`) or stac-geoparquet (:data:`PARQUET`) file in
    batches, without parsing them: the cheap, sequential part of reading a file, which
    :mod:`~dafab_static.ingest.striped` readers each run over the whole file. A file that
    cannot be opened or read on ends with a batch that carries the error. Batches hold
    ``rows`` lines or rows (default :data:`BATCH_ROWS`)."""
    size = rows or BATCH_ROWS
    if kind == NDJSON:
        try:
            stream = open_bytes(loc)
        except InputError as error:
            yield RawBatch(1, (), error)
            return
        with stream:
            number, lines = 1, []
            while line := readline(stream, loc):
                lines.append(line)
                if len(lines) == size:
                    yield RawBatch(number, lines)
                    number, lines = number + len(lines), []
            if lines:
                yield RawBatch(number, lines)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    with contextlib.ExitStack() as stack:
        row = 0
        try:
            batches = pq.ParquetFile(seekable(loc, stack)).iter_batches(size)
            for batch in batches:
                yield RawBatch(row, batch)
                row += batch.num_rows
        except InputError as error:
            yield RawBatch(row, None, error)
        except (pa.ArrowException, *NOT_STAC_GEOPARQUET) as error:
            yield RawBatch(row, None, InputError(f"{loc}#{row}: not stac-geoparquet: {error}"))


def modern(batch: Any) -> Any:
    """Check a stac-geoparquet batch has its core columns, and bring a pandas-era one (bbox
    as a list, a pandas index column) to today's layout (:func:`index_items.modern`)."""
    from dafab_static.index_items import modern as _modern

    names = [n for n in batch.schema.names if not n.startswith("__index_level_")]
    if missing := [name for name in ("id", "geometry", "bbox") if name not in names]:
        raise ValueError(f"no {', '.join(repr(name) for name in missing)} column")
    return _modern(batch)
