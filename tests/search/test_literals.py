"""Literals Arrow cannot take as written: integers past int64, array literals whose
elements are of another type than the property's. Answers, not tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

import dafab_static
from tests.builds.generate import item, write_ndjson
from tests.search.conftest import ids


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("literals")
    items = [item(i) for i in range(3)]
    items[0]["properties"]["instruments"] = ["msi"]
    items[1]["properties"]["instruments"] = ["oli", "tirs"]
    for i, it in enumerate(items):
        it["properties"]["view:off_nadir"] = i + 0.5  # a double column
        it["properties"]["big"] = 2**53 + i  # an integer column past what a double holds
    source = write_ndjson(root / "items.ndjson", items)
    report = dafab_static.build([str(source)], str(root / "cat"))
    assert report.ok, report.summary()
    return root / "cat"


BIG = "999999999999999999999999999999"  # past int64: CQL2 numbers have no size limit


@pytest.mark.parametrize(
    ("cql2", "expected"),
    [
        (f"eo:cloud_cover < {BIG}", ["gen-0000000", "gen-0000001", "gen-0000002"]),
        (f"eo:cloud_cover > -{BIG}", ["gen-0000000", "gen-0000001", "gen-0000002"]),
        (f"eo:cloud_cover IN ({BIG}, 1)", ["gen-0000001"]),
        ("eo:cloud_cover IN (1.5, 2.0)", ["gen-0000002"]),
        (f"eo:cloud_cover + {BIG} > 0", ["gen-0000000", "gen-0000001", "gen-0000002"]),
        # within int64 but past 2^53: Arrow's safe cast to the double column refused it
        (f"view:off_nadir < {2**53 + 1}", ["gen-0000000", "gen-0000001", "gen-0000002"]),
        (
            f"view:off_nadir BETWEEN -{2**53 + 1} AND {2**53 + 1}",
            ["gen-0000000", "gen-0000001", "gen-0000002"],
        ),
        (f"view:off_nadir IN ({2**53 + 1}, 1.5)", ["gen-0000001"]),
        # the integer column meets doubles: the nearest doubles (an Arrow error before)
        (f"big IN ({float(2**53)}, 2.5)", ["gen-0000000", "gen-0000001"]),
        ("a_contains(instruments, (1))", []),
        ("a_overlaps(instruments, ('msi', 2))", ["gen-0000000"]),
        ("a_containedby(instruments, ('oli', 'tirs', 7))", ["gen-0000001"]),
        ("a_equals(instruments, ('msi', 2))", []),
        (f"a_overlaps(instruments, ({BIG}))", []),
    ],
)
def test_literal_answers(catalog: Path, cql2: str, expected: list[str]) -> None:
    assert ids(dafab_static.search(str(catalog), filter=cql2)) == set(expected)


def test_a_big_integer_against_a_boolean_is_a_query_error(catalog: Path) -> None:
    with pytest.raises(dafab_static.QueryError, match="cannot compare True"):
        dafab_static.search(str(catalog), filter=f"true > {BIG}").count()


@pytest.mark.parametrize(
    ("cql2", "message"),
    [
        ("S_INTERSECTS(geometry, POINT(90 180))", "CQL2 text: Point: latitude 180.0 is outside"),
        (
            "S_WITHIN(geometry, POLYGON((0 0, 181 0, 181 1, 0 0)))",
            r"CQL2 text: Polygon: longitude 181.0 is outside \[-180, 180\]",
        ),
        ("S_INTERSECTS(geometry, BBOX(-190, 0, 10, 10))", "BBOX: longitude -190 is outside"),
        (
            '{"op": "s_intersects", "args": [{"property": "geometry"},'
            ' {"type": "LineString", "coordinates": [[0, 0], [10, -91]]}]}',
            r"CQL2 JSON at \$.args\[1\]: LineString: latitude -91.0 is outside \[-90, 90\]",
        ),
    ],
)
def test_a_geometry_literal_outside_crs84_is_an_error(
    catalog: Path, cql2: str, message: str
) -> None:
    # CQL2 literals are CRS84 longitude, latitude: swapped axes must not pass as "no match".
    with pytest.raises(dafab_static.QueryError, match=message):
        dafab_static.search(str(catalog), filter=cql2).count()


def test_the_intersects_parameter_outside_crs84_is_an_error(catalog: Path) -> None:
    point = {"type": "Point", "coordinates": [45.0, 100.0]}
    with pytest.raises(dafab_static.QueryError, match=r"intersects: .*latitude 100\.0"):
        dafab_static.search(str(catalog), intersects=point).count()


@pytest.mark.parametrize(("cql2", "count"), [(True, 3), (False, 0), ("true", 3), ("FALSE", 0)])
def test_a_bare_boolean_is_a_whole_filter(catalog: Path, cql2: object, count: int) -> None:
    # CQL2 JSON `true` is a boolean expression on its own (cql2-rs encodes `TRUE` so).
    assert dafab_static.search(str(catalog), filter=cql2).count() == count  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [7, 2.5, ["eo:cloud_cover < 5"]])
def test_a_filter_of_another_type_is_a_query_error(catalog: Path, value: object) -> None:
    with pytest.raises(dafab_static.QueryError, match="filter: expected CQL2 text"):
        dafab_static.search(str(catalog), filter=value).count()  # type: ignore[arg-type]
