"""Bad parameters are reported with the parameter and value, never an empty result."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dafab_static import QueryError, search
from dafab_static.search.params import parse_bbox, parse_datetime, parse_fields, parse_sortby

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        ([1, 2, 3], "expected 4 or 6 numbers, got 3"),
        ([0, 50, 1, 40], "south 50.0 is north of north 40.0"),
        ([0, 0, 200, 1], "east 200.0 is outside [-180, 180]"),
        ([0, -95, 1, 1], "south -95.0 is outside [-90, 90]"),
        ("1,2,x,4", "is not a list of numbers"),
    ],
)
def test_bad_bbox(bbox: object, message: str) -> None:
    with pytest.raises(QueryError, match=r"^bbox: ") as error:
        parse_bbox(bbox)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_bbox_crossing_the_antimeridian_and_3d() -> None:
    box = parse_bbox([170, -10, -170, 10])
    assert (box.x1, box.x2, box.y1, box.y2) == (170, -170, -10, 10)
    box = parse_bbox([1, 2, 0, 3, 4, 100])
    assert (box.x1, box.x2, box.y1, box.y2) == (1, 3, 2, 4)


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("2024-07-01T10:00:00Z", dt.datetime(2024, 7, 1, 10, tzinfo=UTC), None),
        (
            "2024",
            dt.datetime(2024, 1, 1, tzinfo=UTC),
            dt.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ),
        (
            "2024-02",
            dt.datetime(2024, 2, 1, tzinfo=UTC),
            dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        ),
        ("2024-07-01/..", dt.datetime(2024, 7, 1, tzinfo=UTC), None),
        ("/2024-07-01", None, dt.datetime(2024, 7, 1, 23, 59, 59, 999999, tzinfo=UTC)),
        ("../2024-07-01T00:00:00+02:00", None, dt.datetime(2024, 6, 30, 22, tzinfo=UTC)),
        # RFC 3339 5.8's leap second: its last instant Python can hold.
        (
            "1990-12-31T23:59:60Z/..",
            dt.datetime(1990, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            None,
        ),
        (
            "1990-12-31T15:59:60-08:00/..",
            dt.datetime(1990, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            None,
        ),
    ],
)
def test_datetime_forms(value: str, start: dt.datetime | None, end: dt.datetime | None) -> None:
    got = parse_datetime(value)
    assert got[0] == start
    if value.startswith("2024-07-01T10"):
        assert got == (start, start)  # an instant
    else:
        assert got[1] == end


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-13", "'2024-13' in '2024-13' is not an RFC 3339"),
        ("2024-07-02/2024-07-01", "start 2024-07-02 is after end 2024-07-01"),
        ("../..", "open at both ends"),
        ("a/b/c", "more than one '/'"),
        ("yesterday", "'yesterday'"),
        # ISO 8601 forms that RFC 3339 (what STAC API asks for) is not
        ("2024-07-01T10:00:00", "'2024-07-01T10:00:00' in"),  # no offset
        ("20240701", "'20240701' in"),
        ("2024-W27", "'2024-W27' in"),
        ("2024-07-01T10", "'2024-07-01T10' in"),
        ("2024-07-01T10:00:00.Z", "'2024-07-01T10:00:00.Z' in"),
        ("2020-07-23T00:00:00+05:75", "'2020-07-23T00:00:00+05:75' in"),  # time-minute 00-59
        ("2020-07-23T00:00:00+24:00", "'2020-07-23T00:00:00+24:00' in"),
        ("2020-07-23T10:00:60Z", "'2020-07-23T10:00:60Z' in"),  # 60 ends a minute 59 only
    ],
)
def test_bad_datetime(value: str, message: str) -> None:
    with pytest.raises(QueryError, match=r"^datetime: ") as error:
        parse_datetime(value)
    assert message in str(error.value)


def test_sortby_and_fields_forms() -> None:
    assert [(k.field, k.ascending) for k in parse_sortby("-eo:cloud_cover,+datetime,id")] == [
        ("eo:cloud_cover", False),
        ("datetime", True),
        ("id", True),
    ]
    keys = parse_sortby([{"field": "properties.datetime", "direction": "desc"}])
    assert [(k.field, k.ascending) for k in keys] == [("properties.datetime", False)]
    with pytest.raises(QueryError, match="direction"):
        parse_sortby([{"field": "id", "direction": "up"}])
    fields = parse_fields("id,properties.eo:cloud_cover,-assets")
    assert fields.include == ("id", "properties.eo:cloud_cover")
    assert fields.exclude == ("assets",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sortby": "-nope"}, "sortby: unknown property 'nope'"),
        ({"filter": "eo:cloud_cov < 3"}, "did you mean 'eo:cloud_cover'"),
        ({"filter": "platform = 3"}, "type mismatch: property 'platform' is string"),
        ({"filter": "eo:cloud_cover LIKE 'x%'"}, "LIKE needs text"),
        ({"filter": "S_INTERSECTS(platform, POINT(0 0))"}, "'platform' is string, not a geometry"),
        ({"filter": "A_CONTAINS(platform, ('a'))"}, "not an array"),
        ({"filter": "avg(eo:cloud_cover) > 3"}, "unknown function 'avg'"),
        ({"filter": "eo:cloud_cover <"}, "line 1 column 16: unexpected end of filter"),
        ({"filter": '{"op": "<", "args": [{"propertee": "x"}, 1]}'}, "CQL2 JSON at $.args[0]"),
        ({"filter": "x = 1", "filter_lang": "cql3"}, "filter-lang must be cql2-text or cql2-json"),
        ({"limit": 0}, "limit must be a positive integer"),
        (
            {"filter": "x = 1", "filter_crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
            "filter-crs: only CRS84 (http://www.opengis.net/def/crs/OGC/1.3/CRS84) is supported",
        ),
        (
            {"bbox": [1, 2, 3, 4], "intersects": {"type": "Point", "coordinates": [1, 2]}},
            "not both",
        ),
        (
            {"intersects": {"type": "Polygon", "coordinates": "x"}},
            "intersects: not a valid GeoJSON",
        ),
        # Wrong Python types name the parameter (found by fuzzing the Python API).
        ({"collections": -1}, "collections: expected comma-separated text or a list, not -1"),
        ({"bbox": 5}, "bbox: expected comma-separated text or a list, not 5"),
        ({"datetime": ["2024"]}, "datetime: expected text such as 2024-07"),
        ({"fields": ["id", None]}, "fields: names must be text"),
        ({"sortby": {"field": "id"}}, "sortby: expected comma-separated text or a list"),
        ({"collections": [None]}, "collections: expected strings, not [None]"),
        ({"bbox": [0, 0, 9, 1, 1, 3]}, "bbox: lowest elevation 9.0 is above highest 3.0"),
        (
            {"intersects": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}},
            "a Polygon ring is not closed (RFC 7946",
        ),
    ],
)
def test_bad_queries_are_errors(catalog: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError) as error:
        search(str(catalog), **kwargs).count()  # type: ignore[arg-type]
    assert message in str(error.value)


def test_bad_property_is_caught_even_when_every_file_is_pruned(catalog: Path) -> None:
    # The bbox misses every partition, so no file would be scanned: still an error.
    with pytest.raises(QueryError, match="unknown property 'nope'"):
        search(str(catalog), bbox=[-10, -10, -9, -9], filter="nope = 1").count()


def test_filter_crs_crs84_is_the_default(catalog: Path) -> None:
    where = "S_INTERSECTS(geometry, BBOX(10, 45, 11, 46))"
    plain = [it["id"] for it in search(str(catalog), filter=where)]
    crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert (
        plain and [it["id"] for it in search(str(catalog), filter=where, filter_crs=crs84)] == plain
    )


def test_lenient_follows_null_semantics(catalog: Path) -> None:
    assert search(str(catalog), filter="nope = 1", lenient=True).count() == 0
    assert search(str(catalog), filter="nope IS NULL", lenient=True).count() == 60


def test_a_limit_past_any_index_is_no_limit(catalog: Path) -> None:
    """10**20 does not fit Arrow's 64-bit slice lengths (it was an OverflowError)."""
    assert len(list(search(str(catalog), limit=10**20))) == search(str(catalog)).count()


def test_sorting_by_a_geometry_names_it(catalog: Path) -> None:
    with pytest.raises(QueryError, match="sortby: 'geometry' is binary, which cannot be sorted"):
        list(search(str(catalog), sortby="geometry"))


def test_ids_in_a_list_are_exact_and_text_is_trimmed(tmp_path: Path) -> None:
    """An id is never changed: " a" is an id of its own, which ids=[" a"] must find, and
    not "a". Comma-separated text (the CLI, a GET query) is trimmed: "a, b"."""
    import dafab_static
    from tests.builds.generate import item, write_ndjson

    plain, spaced = item(1), item(2)
    plain["id"], spaced["id"] = "a", " a"
    dest = tmp_path / "cat"
    dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", [plain, spaced]))], str(dest))
    assert [it["id"] for it in search(str(dest), ids=[" a"])] == [" a"]
    assert [it["id"] for it in search(str(dest), ids=["a"])] == ["a"]
    assert [it["id"] for it in search(str(dest), ids="a ,b")] == ["a"]
    assert list(search(str(dest), ids=["a "])) == []
