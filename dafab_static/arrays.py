"""Arrow helpers for the hot paths of the scan and of CQL2: no copy that is not needed.

Both matter for wide stac-geoparquet schemas, where one Sentinel-2 row group has 272 leaf
columns (24 assets) and every whole-table operation pays a fixed cost per leaf.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def one_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``column`` as one Array. A single chunk is returned as it is: ``combine_chunks``
    concatenates even then (2.5 ms for a Sentinel-2 ``assets`` struct)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


_RUNS_MAX = 8  # runs of rows that pick_rows copies by slicing; more go through take


def pick_rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Rows ``rows`` of ``table``, in that order, as a compact copy (or ``table`` itself when
    every row is asked for, in order).

    Zero-copy slices were tried and are wrong here: a slice keeps its whole decoded row
    group alive, so a search matching one row in each of 230 Sentinel-2 row groups held
    5.4 GB (benchmarks/bench_search.py, 1M items, ``small_bbox``). ``take`` costs a fixed
    2-4 ms a row group of 272 leaves, which is the price of giving that memory back, but
    the matches of a spatial search come in a few runs of consecutive rows (Hilbert order):
    up to ``_RUNS_MAX`` runs are sliced and concatenated into new buffers instead, 0.5-0.9
    ms for 1 to 3 runs against 1.9-2.1 ms for ``take`` (measured; 20 runs: 3.7 against 2.3).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == table.num_rows and np.array_equal(rows, np.arange(table.num_rows)):
        return table
    starts = np.flatnonzero(np.diff(rows, prepend=rows[:1] - 2) != 1)
    if 0 < len(starts) <= _RUNS_MAX:
        ends = np.append(starts[1:], len(rows))
        pieces = [
            table.slice(int(rows[a]), int(b - a))
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
        # With one piece, combine_chunks would keep it as it is, the whole group behind it:
        # an empty second chunk makes it concatenate, which copies.
        return pa.concat_tables([*pieces, table.slice(0, 0)]).combine_chunks()
    return table.take(pa.array(rows))
