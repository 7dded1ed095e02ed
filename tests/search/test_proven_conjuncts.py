"""Row groups whose statistics prove a time conjunct true skip decoding its column, and
the results stay exactly those of the full test."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static import index
from dafab_static.cql2 import nodes
from dafab_static.search import parquet
from dafab_static.search.prune import GroupStats, proven
from tests.builds.generate import item

UTC = dt.timezone.utc


def _items() -> list[dict[str, Any]]:
    """Three row groups of 100: June, July, and July with a range item whose datetime is null."""
    out = [item(i, month=6, day=1 + i % 28) for i in range(100)]
    out += [item(i, month=7, day=1 + i % 28) for i in range(100, 200)]
    for i in range(200, 300):
        it = item(i, month=7, day=1 + i % 28)
        if i == 250:  # 2024-06-20 .. 2024-07-02: intersects July
            it["properties"].update(
                datetime=None,
                start_datetime="2024-06-20T00:00:00Z",
                end_datetime="2024-07-02T00:00:00Z",
            )
        out.append(it)
    return out


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("proven") / "items.parquet"
    # In id order (to_table orders rows by Hilbert key): one month, or part, per group.
    pq.write_table(index.to_table(_items()).sort_by("id"), path, row_group_size=100)
    return path


def _stats(path: Path, group: int) -> GroupStats:
    reader = parquet.Reader(str(path))
    return GroupStats(reader.metadata.row_group(group), reader.paths)


def _within(lo: Any, hi: Any) -> nodes.TimeIntersects:
    from pygeofilter import ast

    return nodes.TimeIntersects(ast.Attribute("datetime"), nodes.Interval(lo, hi))


def _same(name: str) -> str:
    return name


def test_statistics_prove_an_interval_that_covers_the_group(groups: Path) -> None:
    june, july = _stats(groups, 0), _stats(groups, 1)
    whole_june = _within(dt.datetime(2024, 6, 1, tzinfo=UTC), dt.datetime(2024, 7, 1, tzinfo=UTC))
    assert proven(whole_june, june, _same)
    assert not proven(whole_june, july, _same)
    # Open ends, and a DATE end that is its whole day (June 28 23:00 is the last instant).
    assert proven(_within(None, dt.date(2024, 6, 28)), june, _same)
    assert not proven(_within(None, dt.datetime(2024, 6, 28, tzinfo=UTC)), june, _same)
    assert proven(_within(dt.date(2024, 6, 1), None), june, _same)
    assert not proven(_within(dt.datetime(2024, 6, 1, 1, tzinfo=UTC), None), june, _same)


def test_a_group_with_a_null_datetime_is_not_proven(groups: Path) -> None:
    july = _within(dt.datetime(2024, 7, 1, tzinfo=UTC), dt.datetime(2024, 8, 1, tzinfo=UTC))
    assert proven(july, _stats(groups, 1), _same)
    assert not proven(july, _stats(groups, 2), _same)  # the null row is not within


def test_only_timestamp_columns_confirm(groups: Path) -> None:
    from pygeofilter import ast

    # A text column's min/max compare as text; a property bound is no literal.
    text = nodes.TimeIntersects(ast.Attribute("id"), nodes.Interval(None, None))
    assert not proven(text, _stats(groups, 0), _same)
    bound = nodes.TimeIntersects(
        ast.Attribute("datetime"), nodes.Interval(ast.Attribute("datetime"), None)
    )
    assert not proven(bound, _stats(groups, 0), _same)
    assert not proven(_within(None, None), _stats(groups, 0), lambda name: None)


def _truth(lo: str, hi: str, bbox: list[float] | None = None, *, ranges: bool = True) -> list[str]:
    """Ids of the items whose instant (or range, with ``ranges``) meets [lo, hi] (ISO
    text), from the inputs."""
    out = []
    for it in _items():
        p = it["properties"]
        start = (p.get("start_datetime") if ranges else None) or p["datetime"] or "~"
        end = (p.get("end_datetime") if ranges else None) or p["datetime"] or ""
        if bbox is not None:
            x0, y0, x1, y1 = it["bbox"]
            if x0 > bbox[2] or x1 < bbox[0] or y0 > bbox[3] or y1 < bbox[1]:
                continue
        if start[:19] <= hi and end[:19] >= lo:
            out.append(it["id"])
    return sorted(out)


@pytest.mark.parametrize(
    ("query", "lo", "hi"),
    [
        ({"datetime": "2024-07"}, "2024-07-01T00:00:00", "2024-07-31T23:59:59"),
        ({"datetime": "2024-06-01/2024-07-31"}, "2024-06-01T00:00:00", "2024-07-31T23:59:59"),
        ({"datetime": "2024-06-10/.."}, "2024-06-10T00:00:00", "9999"),
        ({"datetime": "../2024-07-05"}, "0000", "2024-07-05T23:59:59"),
        (
            {"filter": "T_INTERSECTS(datetime, INTERVAL('2024-06-01', '2024-06-30'))"},
            "2024-06-01T00:00:00",
            "2024-06-30T23:59:59",
        ),
    ],
)
def test_results_equal_the_inputs_and_proven_groups_skip_the_column(
    groups: Path, query: dict[str, Any], lo: str, hi: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[tuple[int, tuple[str, ...]]] = []
    original = parquet.Reader.read_row_group

    def spy(self: parquet.Reader, group: int, columns: Any, **kwargs: Any) -> pa.Table:
        read.append((group, tuple(columns)))
        return original(self, group, columns, **kwargs)

    monkeypatch.setattr(parquet.Reader, "read_row_group", spy)
    found = sorted(it["id"] for it in dafab_static.search(str(groups), **query))
    assert found == _truth(lo, hi, ranges="filter" not in query) and found
    if "filter" not in query:
        # The range item's July is only its end (a datetime-only T_INTERSECTS misses it).
        assert ("gen-0000250" in found) == (hi >= "2024-06-20" and lo <= "2024-07-02")
    if query.get("datetime") == "2024-07":
        datetime_reads = {g for g, columns in read if columns == ("datetime",)}
        assert datetime_reads == {2}, read  # June pruned, July proven, the last decoded


def test_a_proven_time_still_meets_the_bbox(groups: Path) -> None:
    bbox = [10.0, 45.0, 10.52, 45.3]
    found = sorted(
        it["id"] for it in dafab_static.search(str(groups), datetime="2024-07", bbox=bbox)
    )
    assert found == _truth("2024-07-01T00:00:00", "2024-07-31T23:59:59", bbox) and found


def test_a_timestamp_beyond_python_s_range_is_left_to_the_test(tmp_path: Path) -> None:
    """Parquet holds times after year 9999; their statistics as Python datetimes raised
    OverflowError, and the search with it."""
    table = index.to_table([item(i) for i in range(4)])
    far = 2 * 253402300800000000  # microseconds: about year 18000
    times = pa.array([0, 1_000_000, 2_000_000, far], pa.timestamp("us", tz="UTC"))
    path = tmp_path / "far.parquet"
    pq.write_table(table.append_column("expires", times), path)
    query = "T_INTERSECTS(expires, INTERVAL('1960-01-01', '..'))"
    # An open end is 9999-12-31 to the evaluator: the year-18000 row is past it.
    assert len(list(dafab_static.search(str(path), filter=query))) == 3
