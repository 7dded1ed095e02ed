"""The CQL2 1.0 conformance tests (Abstract Test Suite, Annex A) on their own data set.

The Natural Earth layers the ATS is written against (countries, populated places, rivers)
are GeoParquet files in ``ats/``, and ``ats/predicates.json`` holds the 459 filter
expressions with the result counts that the ogc-cql2 crate's conformance tests expect
(provenance: ``ats/NOTICE``, ``ats/make_data.py``). Each filter runs through
:func:`dafab_static.search.search` exactly as a user would run it on a GeoParquet file.

Eight expected counts are not what CQL2 specifies, and are checked against the correct
answer instead (``DIFFERENT``, with the reason for each).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dafab_static.errors import QueryError
from dafab_static.search import search

ATS = Path(__file__).parent / "ats"
PREDICATES: list[dict[str, Any]] = json.loads((ATS / "predicates.json").read_text("utf-8"))

_RUSSIA = (
    "the data set stores Russia's easternmost longitude as 180.00000000000006, so exactly "
    "(DE-9IM, as CQL2 specifies) Russia is not within the world box and overlaps it; the "
    "crate compares geometries rounded to 7 decimals (ST_ReducePrecision)"
)
_OPEN_END = (
    "'..' as an interval's end is an unbounded end (CQL2 1.0, intervalInstance): "
    "INTERVAL(date,'..') "
    "is [date, +∞). The crate's counts read it as -∞. The 3 dated places start 2021-04-16 "
    "(overlapped by 2021: intersects), 2022-04-16 and 2023-04-16 (after and disjoint)"
)
_DATES = "INTERVAL(date,'..'),INTERVAL('2021-01-01','2021-12-31'))"
# (data set, filter) → (the correct count, why the crate's expected count is not).
DIFFERENT: dict[tuple[str, str], tuple[int, str]] = {
    ("countries", "S_WITHIN(geom,BBOX(-180,-90,180,90))"): (176, _RUSSIA),
    (
        "countries",
        "S_WITHIN(geom,POLYGON((-180 -90,180 -90,180 90,-180 90,-180 -90)))",
    ): (176, _RUSSIA),
    (
        "countries",
        "S_OVERLAPS(geom,POLYGON((-180 -90,180 -90,180 90,-180 90,-180 -90)))",
    ): (1, _RUSSIA),
    ("places", f"T_BEFORE(      {_DATES}"): (0, _OPEN_END),
    ("places", f"T_DISJOINT(    {_DATES}"): (2, _OPEN_END),
    ("places", f"T_INTERSECTS(  {_DATES}"): (1, _OPEN_END),
    ("places", f"T_DURING(      {_DATES}"): (0, _OPEN_END),
    ("places", f"T_OVERLAPPEDBY({_DATES}"): (1, _OPEN_END),
}


_DATASETS = ("countries", "places", "rivers")


def _id(entry: dict[str, Any]) -> str:
    return f"{entry['test'].split('::')[0].removeprefix('tests/')}-{entry['dataset']}"


def test_the_data_set_is_the_one_the_counts_were_made_for() -> None:
    counts = {name: search(str(ATS / f"{name}.parquet")).count() for name in _DATASETS}
    assert counts == {"countries": 177, "places": 243, "rivers": 13}
    assert len(PREDICATES) == 459
    listed = {(e["dataset"], e["filter"]) for e in PREDICATES}
    assert set(DIFFERENT) <= listed  # every correction names a real entry


@pytest.mark.parametrize("entry", PREDICATES, ids=[_id(e) for e in PREDICATES])
def test_conformance_filter_count(entry: dict[str, Any]) -> None:
    path = str(ATS / f"{entry['dataset']}.parquet")
    expected, _why = DIFFERENT.get((entry["dataset"], entry["filter"]), (entry["expected"], ""))
    result = search(path, filter=entry["filter"])
    assert result.count() == expected
    # The rows themselves, not only the count (which may come from statistics).
    rows = result.to_arrow()
    assert rows.num_rows == expected
    assert len(set(rows["fid"].to_pylist())) == expected


@pytest.mark.parametrize(
    ("dataset", "cql2"),
    [
        # /conf/basic-spatial-functions (A.7 test 25) and A.8/A.9: an invalid coordinate
        # must fail, not return an empty result.
        ("countries", "S_INTERSECTS(geom,POINT(90 180))"),
        ("countries", "S_DISJOINT(geom,POINT(90 180))"),
        ("places", "S_INTERSECTS(geom,MULTIPOINT((7.02 49.92), (90 180)))"),
        ("places", "S_INTERSECTS(geom,MULTIPOINT(7.02 49.92, 90 180))"),
    ],
)
def test_an_invalid_coordinate_is_an_error(dataset: str, cql2: str) -> None:
    with pytest.raises(QueryError, match=r"latitude 180\.0 is outside \[-90, 90\]"):
        search(str(ATS / f"{dataset}.parquet"), filter=cql2).count()


def test_a_coordinate_on_the_edge_of_crs84_is_valid() -> None:
    path = str(ATS / "countries.parquet")
    assert search(path, filter="S_INTERSECTS(geom,POINT(180 -16.3))").count() == 1  # Fiji
    assert search(path, filter="S_INTERSECTS(geom,BBOX(-180,-90,180,90))").count() == 177
