"""Joining the per-row-group tables of a result before they become dicts."""

from __future__ import annotations

import pyarrow as pa

from dafab_static.search.tables import coalesced


def _tables(kinds: list[pa.DataType], rows: int = 1) -> list[pa.Table]:
    out, n = [], 0
    for kind in kinds:
        ids = [f"i{n + k}" for k in range(rows)]
        out.append(pa.table({"id": ids, "v": pa.array(range(rows), kind)}))
        n += rows
    return out


def test_order_kept_and_schemas_never_mixed() -> None:
    tables = _tables([pa.int64()] * 3 + [pa.float64()] * 2 + [pa.int64()])
    joined = list(coalesced(iter(tables)))
    assert [t.num_rows for t in joined] == [3, 2, 1]
    assert [t.schema.field("v").type for t in joined] == [pa.int64(), pa.float64(), pa.int64()]
    assert [i for t in joined for i in t["id"].to_pylist()] == [f"i{k}" for k in range(6)]
    assert all(t["id"].num_chunks == 1 for t in joined)


def test_a_few_row_groups_at_a_time_so_iteration_stays_lazy() -> None:
    tables = _tables([pa.int64()] * 40)
    joined = list(coalesced(iter(tables)))
    assert [t.num_rows for t in joined] == [16, 16, 8]
    big = _tables([pa.int64()] * 3, rows=1500)
    assert [t.num_rows for t in coalesced(iter(big))] == [3000, 1500]
