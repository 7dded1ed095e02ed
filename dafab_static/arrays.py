"""Arrow helpers for the hot paths of the scan and of CQL2: avoid copies pyarrow would make.

Both matter for wide stac-geoparquet schemas, where one Sentinel-2 row group has 272 leaf
columns (24 assets) and every whole-table operation pays a fixed cost per leaf.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# At most this many runs of consecutive rows are cut as slices; more are taken. Measured on a
# 2,083-row Sentinel-2 row group (272 leaves): ``take`` costs 3.7 ms whatever the rows (its
# per-leaf cost), slices 0.035 ms a run, so they break even near 100 runs.
_MAX_SLICES = 64


def one_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``column`` as one Array. A single chunk is returned as it is: ``combine_chunks``
    concatenates even then (2.5 ms for a Sentinel-2 ``assets`` struct)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def pick_rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Rows ``rows`` of ``table``, in that order.

    A few runs of consecutive rows come as zero-copy slices (the table then has one chunk
    per run); otherwise ``take`` copies them. A search that matches one row in each of
    hundreds of row groups would spend more on ``take``'s fixed cost than on decoding.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return table.slice(0, 0)
    starts = np.flatnonzero(np.diff(rows, prepend=rows[0] - 2) != 1)
    if len(starts) > _MAX_SLICES:
        return table.take(pa.array(rows))
    ends = np.append(starts[1:], len(rows))
    pieces = [table.slice(int(rows[s]), int(e - s)) for s, e in zip(starts, ends, strict=True)]
    return pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)
