"""The Arrow helpers of the scan's hot path: the same rows as ``take``, in every order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dafab_static.arrays import one_array, pick_rows


@pytest.fixture
def table() -> pa.Table:
    n = 300
    assets = pa.StructArray.from_arrays(
        [pa.array([f"s3://b/{i}.tif" for i in range(n)]), pa.array([[f"r{i}"] for i in range(n)])],
        ["href", "roles"],
    )
    return pa.table({"id": [f"item-{i}" for i in range(n)], "assets": assets})


@pytest.mark.parametrize(
    "rows",
    [
        [0],
        [299],
        [3, 4, 5, 90, 91, 7],  # runs, out of order (a sortby fetch)
        [10, 9, 8],  # descending
        list(range(0, 300, 2)),
        list(range(300)),
    ],
)
def test_pick_rows_equals_take(table: pa.Table, rows: list[int]) -> None:
    picked = pick_rows(table, np.array(rows))
    assert picked.schema == table.schema
    assert picked.to_pylist() == table.take(pa.array(rows)).to_pylist()


def test_pick_rows_of_nothing_keeps_the_schema(table: pa.Table) -> None:
    picked = pick_rows(table, np.array([], dtype=np.int64))
    assert picked.num_rows == 0 and picked.schema == table.schema


@pytest.mark.parametrize(
    "rows",
    [[5], [5, 6, 7], [5, 6, 7, 40, 41, 9], list(range(0, 60, 3))],  # 1, 1, 3, 20 runs
)
def test_pick_rows_copies_so_the_row_group_can_be_freed(table: pa.Table, rows: list[int]) -> None:
    picked = pick_rows(table, np.array(rows))
    assert picked.to_pylist() == table.take(pa.array(rows)).to_pylist()
    for column in picked.columns:
        assert column.num_chunks == 1 and column.chunk(0).offset == 0
    # Buffers held, not bytes referenced: a slice would hold the whole table's.
    assert picked.get_total_buffer_size() < table.get_total_buffer_size() / 10


def test_pick_rows_of_every_row_is_the_table(table: pa.Table) -> None:
    assert pick_rows(table, np.arange(table.num_rows)) is table


def test_one_array() -> None:
    single = pa.chunked_array([pa.array([1, 2])])
    assert one_array(single).equals(pa.array([1, 2]))
    two = pa.chunked_array([pa.array([1]), pa.array([2])])
    assert one_array(two).equals(pa.array([1, 2]))
    plain = pa.array([3])
    assert one_array(plain) is plain
