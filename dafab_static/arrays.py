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


def pick_rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Rows ``rows`` of ``table``, in that order, as a compact copy (or ``table`` itself when
    every row is asked for, in order).

    Zero-copy slices were tried and are wrong here: a slice keeps its whole decoded row
    group alive, so a search matching one row in each of 230 Sentinel-2 row groups held
    5.4 GB (benchmarks/bench_search.py, 1M items, ``small_bbox``). ``take`` costs a fixed
    3.7 ms a row group of 272 leaves, which is the price of giving that memory back.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == table.num_rows and np.array_equal(rows, np.arange(table.num_rows)):
        return table
    return table.take(pa.array(rows))
