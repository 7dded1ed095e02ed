"""The CQL2 1.0 conformance tests (Abstract Test Suite, Annex A), as the ogc-cql2 crate
implements them.

1. On the ATS data set: the Natural Earth layers (countries, populated places, rivers) are
   GeoParquet files in ``ats/``, and ``ats/predicates.json`` holds 459 filter expressions
   with the result counts the crate's tests expect.
2. On hand-built features: ``ats/cases.json`` holds the crate's other tests (48), each a
   few typed features and filters with the outcome expected for each feature: true,
   false, null (unknown) or an error. Each becomes a small GeoParquet file; a feature is
   true when the filter returns it, false when ``NOT (filter)`` does, null when neither
   does (CQL2's three-valued logic; ``lenient``: a property a feature lacks is null).

Provenance: ``ats/NOTICE``, ``ats/make_data.py``. Every filter runs through
:func:`dafab_static.search.search` as a user would run it on a GeoParquet file. The
expectations that contradict CQL2 are checked against the correct answer instead
(``DIFFERENT``, ``DIFFERENT_CASES``), with the reason for each.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import cql2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from dafab_static.errors import QueryError
from dafab_static.search import search

ATS = Path(__file__).parent / "ats"
PREDICATES: list[dict[str, Any]] = json.loads((ATS / "predicates.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = json.loads((ATS / "cases.json").read_text("utf-8"))

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


@pytest.mark.parametrize("entry", PREDICATES, ids=[_id(e) for e in PREDICATES])
def test_conformance_filter_count_as_cql2_json(entry: dict[str, Any]) -> None:
    """The same filter in the JSON encoding, as cql2-rs (an independent parser) writes it:
    the JSON parser must give the same answer as the text one."""
    path = str(ATS / f"{entry['dataset']}.parquet")
    expected, _why = DIFFERENT.get((entry["dataset"], entry["filter"]), (entry["expected"], ""))
    encoded = cql2.Expr(entry["filter"]).to_json()
    assert search(path, filter=encoded).count() == expected, encoded


@pytest.fixture(scope="module")
def ats_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ATS data set as a STAC catalog that ``dafab_static.build`` made: one collection
    per layer, each feature an item whose properties are its attributes, dates and
    timestamps as RFC 3339 text (as STAC JSON holds every date but the item's own). The
    catalog, not the GeoParquet files, is what users search; its summaries prune files and
    its dates are text, which the files above never show."""
    import dafab_static

    folder = tmp_path_factory.mktemp("ats")
    lines = []
    for name in _DATASETS:
        for row in pq.read_table(ATS / f"{name}.parquet").to_pylist():
            geom = shapely.from_wkb(row.pop("geom"))
            properties = {"datetime": "2020-01-01T00:00:00Z"}
            for key, value in row.items():
                if isinstance(value, dt.datetime):
                    value = value.isoformat().replace("+00:00", "Z")
                elif isinstance(value, dt.date):
                    value = value.isoformat()
                if value is not None:
                    properties[key] = value
            item = {
                "type": "Feature", "stac_version": "1.1.0", "id": f"{name}-{row['fid']}",
                "collection": name, "geometry": shapely.geometry.mapping(geom),
                "bbox": list(geom.bounds), "properties": properties, "links": [], "assets": {},
            }  # fmt: skip
            lines.append(json.dumps(item) + "\n")
    source = folder / "ats.ndjson"
    source.write_text("".join(lines))
    dest = folder / "catalog"
    dafab_static.build([str(source)], str(dest))
    return dest


@pytest.mark.parametrize("entry", PREDICATES, ids=[_id(e) for e in PREDICATES])
def test_conformance_filter_count_on_a_built_catalog(
    entry: dict[str, Any], ats_catalog: Path
) -> None:
    """The ATS through the catalog: "date" = DATE('2022-04-16') found nothing there (the
    collection summary of the text dates pruned the file) while the file alone found it."""
    expected, _why = DIFFERENT.get((entry["dataset"], entry["filter"]), (entry["expected"], ""))
    text = re.sub(r"(?<![\w\"'])geom(?!\w)", "geometry", entry["filter"])
    result = search(str(ats_catalog), filter=text, collections=[entry["dataset"]])
    assert len(list(result)) == expected, text


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


# (test, filter) → (the correct outcome per feature, why the crate's expectation is not).
DIFFERENT_CASES: dict[tuple[str, str], tuple[dict[str, str], str]] = {
    ("tests/a4/test_10.rs::test_outcome_4", "NAME like '\\%\\_'"): (
        {"0": "F", "1": "F", "2": "F", "3": "F", "4": "F"},
        "a backslash makes the next wildcard literal (CQL2 LIKE), so the pattern \\%\\_ "
        "matches only the text '%_', which none of the five names is; the crate expects "
        "'%d' and '_d' to match",
    ),
    ("tests/a13/test_51.rs::test", "min(a, b) + max(a, b) = 2 * avg(a, b)"): (
        {"1": "ERR"},
        "min, max and avg are custom functions, which the crate registers for this test; "
        "dafab-static defines none, so the filter is an error naming the function",
    ),
}

_ARROW = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "geometry": pa.binary(),
}


def _value(prop: dict[str, Any]) -> Any:
    kind, value = prop["type"], prop["value"]
    if kind == "timestamp":
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "geometry":
        return shapely.to_wkb(shapely.from_wkt(value))
    return value


def _features_table(features: list[dict[str, Any]]) -> pa.Table:
    """The features as one GeoParquet table: a column per property (null where a feature
    lacks it), ``fid``, and the first geometry property as the primary geometry."""
    kinds: dict[str, set[str]] = {}
    for feature in features:
        for name, prop in feature["props"].items():
            kind = f"array:{prop['of']}" if prop["type"] == "array" else prop["type"]
            kinds.setdefault(name, set()).add(kind)
    columns = {"fid": pa.array([f["fid"] for f in features], pa.int64())}
    geometry = None
    for name, found in kinds.items():
        (kind,) = {"float"} if found == {"int", "float"} else found
        arrow = pa.list_(_ARROW[kind.split(":")[1]]) if kind.startswith("array:") else _ARROW[kind]
        values = [_value(f["props"][name]) if name in f["props"] else None for f in features]
        if kind == "float":
            values = [None if v is None else float(v) for v in values]
        columns[name] = pa.array(values, arrow)
        geometry = geometry or (name if kind == "geometry" else None)
    table = pa.table(columns)
    if geometry:
        geo = {
            "version": "1.1.0",
            "primary_column": geometry,
            "columns": {geometry: {"encoding": "WKB"}},
        }
        table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    return table


def _outcomes(path: str, cql2_filter: Any, fids: list[str]) -> dict[str, str]:
    """Each feature's outcome: T when the filter returns it, F when its negation does, N
    when neither (null), ERR when the filter is an error. Text or JSON."""
    if isinstance(cql2_filter, str):
        negated: Any = f"NOT ({cql2_filter})"
    else:
        negated = {"op": "not", "args": [cql2_filter]}
    try:
        true = search(path, filter=cql2_filter, lenient=True).to_arrow()["fid"].to_pylist()
        false = search(path, filter=negated, lenient=True).to_arrow()["fid"].to_pylist()
    except QueryError:
        return {fid: "ERR" for fid in fids}
    return {fid: "T" if int(fid) in true else "F" if int(fid) in false else "N" for fid in fids}


@pytest.mark.parametrize("encoding", ["text", "json"])
@pytest.mark.parametrize("test", CASES, ids=[c["test"].removeprefix("tests/") for c in CASES])
def test_conformance_outcomes_on_hand_built_features(
    test: dict[str, Any], encoding: str, tmp_path: Path
) -> None:
    """Each filter as written (CQL2 text), and in CQL2 JSON as cql2-rs encodes it (one
    filter, an escaped quote ``'abc\\'def'``, cql2-rs cannot parse: text only)."""
    path = tmp_path / "features.parquet"
    pq.write_table(_features_table(test["features"]), path)
    for case in test["cases"]:
        expected, _why = DIFFERENT_CASES.get((test["test"], case["filter"]), (case["expected"], ""))
        cql2_filter: Any = case["filter"]
        if encoding == "json":
            try:
                cql2_filter = cql2.Expr(case["filter"]).to_json()
            except Exception:  # cql2-rs raises a bare Exception on parse errors
                continue
        assert _outcomes(str(path), cql2_filter, list(case["expected"])) == expected, case


def test_the_hand_built_cases_are_all_there() -> None:
    assert len(CASES) == 48
    assert sum(len(c["cases"]) for c in CASES) == 149
    listed = {(c["test"], case["filter"]) for c in CASES for case in c["cases"]}
    assert set(DIFFERENT_CASES) <= listed
