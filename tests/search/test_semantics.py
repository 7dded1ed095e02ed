"""STAC API Item Search semantics on a catalog whose answers are known."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cql2
import pyarrow as pa
import pytest

from dafab_static import search
from dafab_static.errors import QueryError
from dafab_static.search.files import CACHE
from tests.builds.generate import item as generated_item
from tests.search.conftest import ids


def test_no_parameters_returns_every_item_and_counts_without_reading(
    catalog: Path, items: list[dict[str, Any]]
) -> None:
    result = search(str(catalog))
    assert ids(result) == {it["id"] for it in items}
    counted = search(str(catalog))
    # The catalog's documents that lead to the index are counted (--verbose said 0 for
    # them): root, branch and platform catalogs, collections and their manifests.
    documents = sorted(p for p in catalog.rglob("*.json") if "/20" not in str(p)
                       and "queryables" not in p.name and not p.name.startswith("."))  # fmt: skip
    read = counted.stats.requests
    assert 0 < read <= len(documents)
    assert counted.stats.bytes <= sum(p.stat().st_size for p in documents)
    assert counted.count() == 60
    assert counted.stats.requests == read  # the manifest has the row counts: no Parquet read


def test_items_equal_the_tree_json(catalog: Path) -> None:
    """What search returns is the item the tree holds, field for field."""
    tree = {
        p.stem: json.loads(p.read_text())
        for p in catalog.rglob("*.json")
        if json.loads(p.read_text()).get("type") == "Feature"
    }
    got = {it["id"]: it for it in search(str(catalog))}
    assert set(got) == set(tree)
    for key, item in got.items():
        expected = tree[key]
        assert item["geometry"] == expected["geometry"]
        assert item["properties"] == expected["properties"]
        assert item["assets"] == expected["assets"]
        assert item["bbox"] == expected["bbox"]


def test_ids_and_collections(catalog: Path) -> None:
    assert ids(search(str(catalog), ids=["gen-0000003", "gen-0000100", "zzz"])) == {
        "gen-0000003",
        "gen-0000100",
    }
    assert len(ids(search(str(catalog), collections=["other"]))) == 16
    assert search(str(catalog), collections="other,gen").count() == 60


def test_datetime_uses_start_end_intervals(catalog: Path) -> None:
    # June 20-30: the June items of those days, plus the item spanning May 20 - July 5.
    got = ids(search(str(catalog), datetime="2024-06-20/2024-06-30"))
    assert "span-may-july" in got
    assert "span-september" not in got
    june = {it for it in got if it.startswith("gen-")}
    assert all(int(i[4:]) % 3 == 0 for i in june)  # month 6 is i % 3 == 0
    # Both ends are inclusive: an instant equal to an item's datetime matches.
    # (span-may-july's interval holds that instant too.)
    got = ids(search(str(catalog), datetime="2024-07-02T01:00:00Z"))
    assert got == {"gen-0000001", "span-may-july"}
    # A partial date covers its period; open ends work.
    assert ids(search(str(catalog), datetime="2024-09")) == {"span-september"}
    assert "span-may-july" in ids(search(str(catalog), datetime="../2024-05-21"))
    assert search(str(catalog), datetime="2024-10-01/..").count() == 0


@pytest.mark.parametrize("encoding", ["text", "json"])
def test_a_cql2_date_is_the_whole_day(catalog: Path, encoding: str) -> None:
    """OGC 21-065r2 clause 6: a date is "an instant with a granularity of a day". Read as
    its midnight, T_INTERSECTS with DATE('2024-07-02') missed the items taken later that
    day (which the datetime parameter finds), T_AFTER took them, and an INTERVAL ending on
    that date left it out."""
    day = {"gen-0000001", "cloudless"}  # the items of 2024-07-02, taken after midnight
    # the datetime parameter also takes span-may-july, by its start/end_datetime
    assert ids(search(str(catalog), datetime="2024-07-02/2024-07-02")) - {"span-may-july"} == day

    def found(text: str) -> set[str]:
        query = text if encoding == "text" else cql2.Expr(text).to_json()
        return ids(search(str(catalog), filter=query))

    assert found("T_INTERSECTS(datetime, DATE('2024-07-02'))") == day
    assert found("T_DURING(datetime, DATE('2024-07-02'))") == day
    assert found("T_INTERSECTS(datetime, INTERVAL('2024-07-02', '2024-07-02'))") == day
    assert day <= found("T_DURING(datetime, INTERVAL('2024-06-20', '2024-07-02'))")
    assert not day & found("T_AFTER(datetime, DATE('2024-07-02'))")
    assert day <= found("T_AFTER(datetime, DATE('2024-07-01'))")


def test_bbox_crossing_the_antimeridian(catalog: Path) -> None:
    assert ids(search(str(catalog), bbox=[179.8, -17, -179.8, -16])) == {"dateline"}
    assert ids(search(str(catalog), bbox=[-179.9, -17, -179.8, -16])) == {"dateline"}
    assert ids(search(str(catalog), bbox=[179.6, -17, 179.7, -16])) == {"dateline"}
    assert search(str(catalog), bbox=[170, -17, 175, -16]).count() == 0


def test_intersects_polygon(catalog: Path) -> None:
    # gen-0000000 spans lon 10..10.05, lat 45..45.05; gen-0000001 starts at lon 10.1.
    polygon = {
        "type": "Polygon",
        "coordinates": [[[10.01, 45.01], [10.06, 45.01], [10.06, 45.02], [10.01, 45.01]]],
    }
    assert ids(search(str(catalog), intersects=polygon)) == {"gen-0000000"}


def test_sortby_several_keys_nulls_last_and_limit(catalog: Path) -> None:
    result = list(search(str(catalog), sortby="-eo:cloud_cover,id", limit=5))
    covers = [it["properties"].get("eo:cloud_cover") for it in result]
    assert covers == sorted(covers, reverse=True)
    assert len(result) == 5
    everything = [it["id"] for it in search(str(catalog), sortby=["+eo:cloud_cover", "-id"])]
    assert everything[-1] == "cloudless"  # no eo:cloud_cover: last, whatever the direction
    # cover 0, then id descending
    assert everything[:3] == ["span-may-july", "gen-0000100", "gen-0000000"]


def test_limit_without_sortby_stops_early(catalog: Path) -> None:
    CACHE.clear()
    one = search(str(catalog), limit=1)
    assert len(list(one)) == 1
    CACHE.clear()
    full = search(str(catalog))
    list(full)
    assert one.stats.bytes < full.stats.bytes / 2


def test_count_ignores_limit_and_pages(catalog: Path) -> None:
    result = search(str(catalog), filter="eo:cloud_cover < 10", limit=3)
    # cover = i % 100: gen 0..9, other 100..109, and the span and dateline items 200..202
    assert result.count() == 23
    pages = list(search(str(catalog), filter="eo:cloud_cover < 10").pages(10))
    assert [len(p) for p in pages] == [10, 10, 3]


def test_fields_include_and_exclude(catalog: Path) -> None:
    """The Fields extension's semantics: the default set (id, type, geometry, bbox, links,
    assets, properties.datetime) plus ``include``, minus ``exclude``; so an include-only
    request still returns valid STAC Items (its example
    ``fields=id,type,geometry,properties.eo:cloud_cover`` "must return a valid STAC Item")."""
    from dafab_static.validator import validate_object

    def first(fields: object) -> dict[str, object]:
        return next(iter(search(str(catalog), ids=["gen-0000001"], fields=fields)))  # type: ignore[arg-type]

    whole = first(None)
    default = {"type", "stac_version", "id", "collection", "geometry", "bbox", "links", "assets"}
    slim = first("id,type,geometry,properties.eo:cloud_cover")
    assert set(slim) == default | {"properties"}
    assert slim["properties"] == {"datetime": whole["properties"]["datetime"], "eo:cloud_cover": 1}  # type: ignore[index]
    assert validate_object(slim, href="slim.json") == []
    for empty in ("", [], {}, {"include": [], "exclude": []}):  # the default set alone
        assert first(empty)["properties"] == {"datetime": whole["properties"]["datetime"]}  # type: ignore[index]
    no_assets = first("-assets")  # subtracted from the default set
    assert set(no_assets) == (default - {"assets"}) | {"properties"}
    everything_but = first("properties,-assets,-properties.eo:cloud_cover")
    assert "assets" not in everything_but and "geometry" in everything_but
    props = dict(whole["properties"])  # type: ignore[call-overload]
    del props["eo:cloud_cover"]
    assert everything_but["properties"] == props


def test_fields_rules_for_missing_include_nesting_and_conflicts(catalog: Path) -> None:
    """The Fields extension's rules 3, 5 and 6: no ``include`` member at all means every
    field but the excluded; an excluded path inside a member drops that path only; a field
    both included and excluded is included; ``properties`` excluded keeps what is included
    by name."""

    def first(fields: object) -> dict[str, Any]:
        return next(iter(search(str(catalog), ids=["gen-0000001"], fields=fields)))  # type: ignore[arg-type]

    whole = first(None)
    everything_but = first({"exclude": ["geometry"]})
    assert everything_but == {k: v for k, v in whole.items() if k != "geometry"}
    assert first({"include": [], "exclude": ["geometry"]})["properties"] == {
        "datetime": whole["properties"]["datetime"]
    }  # include empty, not missing: the default set, less the excluded
    (key, asset), *_ = whole["assets"].items()
    nested = first(f"-assets.{key}.type")
    assert nested["assets"][key] == {k: v for k, v in asset.items() if k != "type"}
    assert nested["assets"].keys() == whole["assets"].keys()
    both = first("properties.eo:cloud_cover,-properties.eo:cloud_cover,assets,-assets")
    assert both["properties"]["eo:cloud_cover"] == 1 and both["assets"] == whole["assets"]
    only = first("properties.eo:cloud_cover,-properties")
    assert set(only["properties"]) <= {"eo:cloud_cover", "datetime"}
    assert only["properties"]["eo:cloud_cover"] == 1


def test_items_without_assets_come_back_with_the_required_empty_object(tmp_path: Path) -> None:
    """The index stores no column for an empty ``assets`` object; a search returns it, as
    STAC requires the member (the items were invalid), unless Fields excludes it."""
    import dafab_static
    from dafab_static.validator import validate_object
    from tests.builds.generate import item, write_ndjson

    bare = item(1)
    bare["assets"] = {}
    dest = tmp_path / "cat"
    dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", [bare]))], str(dest))
    (found,) = search(str(dest))
    assert found["assets"] == {} and isinstance(found["links"], list)
    assert validate_object(found, href="found.json") == []
    (slim,) = search(str(dest), fields="-assets")
    assert "assets" not in slim


def test_to_arrow_is_stac_geoparquet(catalog: Path) -> None:
    table = search(str(catalog), filter="platform = 'landsat-9'").to_arrow()
    assert isinstance(table, pa.Table)
    assert table.num_rows == 16
    assert {"id", "geometry", "bbox", "datetime", "eo:cloud_cover"} <= set(table.column_names)
    assert search(str(catalog), ids=["nope"]).to_arrow().num_rows == 0


def test_manifest_and_statistics_prune(catalog: Path) -> None:
    CACHE.clear()  # count the footers too
    everything = search(str(catalog), filter="eo:cloud_cover >= 0")
    everything.count()
    CACHE.clear()
    one_month = search(str(catalog), datetime="2024-08-02/2024-08-03", filter="eo:cloud_cover >= 0")
    assert ids(one_month) == {"gen-0000002", "gen-0000029"}  # Aug 3 and Aug 2
    assert one_month.stats.bytes < everything.stats.bytes / 3


def test_catalog_and_info_publish_the_cql2_conformance_classes(catalog: Path) -> None:
    from dafab_static import info
    from dafab_static.cql2 import CONFORMANCE

    root = json.loads((catalog / "catalog.json").read_text())
    assert root["conformsTo"] == list(CONFORMANCE)
    assert "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions" in CONFORMANCE
    assert info(str(catalog)).conformance == list(CONFORMANCE)
    assert "temporal-functions" in info(str(catalog)).text()


def test_geodataframe(catalog: Path) -> None:
    geopandas = pytest.importorskip("geopandas", reason="the optional [geo] extra is not installed")
    frame = search(str(catalog), collections=["other"], sortby="id").to_geodataframe()
    assert isinstance(frame, geopandas.GeoDataFrame)
    assert len(frame) == 16 and str(frame.crs) == "OGC:CRS84"
    assert frame["id"].iloc[0] == "gen-0000100"
    assert frame.geometry.iloc[0].bounds == pytest.approx((-70.0, 45.1, -69.95, 45.15))


def test_collection_summaries_prune_whole_collections(catalog: Path) -> None:
    """dafab-static's summaries list every platform of a collection: ``platform =
    'landsat-9'`` need not open the files of the Sentinel-2 collection at all."""
    CACHE.clear()
    landsat = search(str(catalog), filter="platform = 'landsat-9'")
    assert landsat.count() == 16
    CACHE.clear()
    everything = search(str(catalog), filter="platform <> 'nothing'")
    assert everything.count() == 60
    assert landsat.stats.bytes < everything.stats.bytes / 3
    CACHE.clear()
    assert search(str(catalog), filter="eo:cloud_cover > 1000").count() == 0


@pytest.mark.parametrize(
    "constant",
    [
        "S_INTERSECTS(POINT(0 0), POINT(0 0))",
        "S_WITHIN(POINT(0.5 0.5), POLYGON((0 0, 1 0, 1 1, 0 1, 0 0)))",
    ],
)
def test_a_spatial_test_of_two_literals_prunes_nothing(catalog: Path, constant: str) -> None:
    """Only a test of the item geometry bounds where items are: a predicate true for every
    item keeps every item wherever it lies (CQL2 evaluates it per item)."""
    assert search(str(catalog), filter=constant).count() == 60
    assert search(str(catalog), filter=f"NOT ({constant})").count() == 0
    gen = search(str(catalog), filter="id LIKE 'gen-%'").count()
    assert search(str(catalog), filter=f"{constant} AND id LIKE 'gen-%'").count() == gen == 56


@pytest.mark.parametrize("encoding", ["text", "json"])
def test_thousands_of_or_terms_are_one_flat_filter(catalog: Path, encoding: str) -> None:
    """A generated filter (a list of ids joined by OR, a few AND-ed conditions) is a normal
    query, not a RecursionError: chains are balanced, not thousands of levels deep."""
    wanted = ["gen-0000003", "gen-0000100", "cloudless"]
    names = [f"nope-{i}" for i in range(3000)] + wanted
    if encoding == "text":
        query: Any = " OR ".join(f"id = '{name}'" for name in names)
        query = f"({query}) AND " + " AND ".join(["eo:cloud_cover >= 0"] * 1000)
    else:
        ors = [{"op": "=", "args": [{"property": "id"}, name]} for name in names]
        ands = [{"op": ">=", "args": [{"property": "eo:cloud_cover"}, 0]}] * 1000
        query = {"op": "and", "args": [{"op": "or", "args": ors}, *ands]}
    assert ids(search(str(catalog), filter=query)) == {"gen-0000003", "gen-0000100"}


@pytest.mark.parametrize("encoding", ["text", "json"])
def test_nesting_past_recursion_is_a_query_error(catalog: Path, encoding: str) -> None:
    query: Any = "NOT " * 5000 + "id = 'x'"
    if encoding == "json":
        query = {"op": "=", "args": [{"property": "id"}, "x"]}
        for _ in range(5000):
            query = {"op": "not", "args": [query]}
    with pytest.raises(QueryError, match="nested too deeply"):
        search(str(catalog), filter=query).count()


def test_a_signed_number_literal(catalog: Path) -> None:
    """CQL2's BNF: signedNumericLiteral = [sign] exactNumericLiteral, sign "+" or "-"."""
    plus = search(str(catalog), filter="eo:cloud_cover > +10")
    assert ids(plus) == ids(search(str(catalog), filter="eo:cloud_cover > 10")) != set()
    with pytest.raises(QueryError, match="'\\+' stands only before a number"):
        search(str(catalog), filter="+eo:cloud_cover > 10").count()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("datetime > TIMESTAMP('2024-07-01')", "is not an RFC 3339 timestamp"),
        ("datetime > TIMESTAMP('2024-07-01T00:00:00')", "is not an RFC 3339 timestamp"),
        (
            "T_INTERSECTS(datetime, INTERVAL('2024-08-01', '2024-07-01'))",
            "INTERVAL starts (2024-08-01) after it ends (2024-07-01)",
        ),
    ],
)
def test_cql2_temporal_literals_are_checked(catalog: Path, text: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        search(str(catalog), filter=text).count()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("S_INTERSECTS(geometry, ENVELOPE(0,1,0,1))", "ENVELOPE(...) is not a geometry"),
        (
            "INTERVAL('2021-01-01','2022-01-01')",
            "INTERVAL(DATE('2021-01-01'), DATE('2022-01-01')) is not a condition",
        ),
        ("BBOX(geometry,0,0,1,1)", "BBOX takes 4 or 6 numbers, got (property 'geometry', 0, 0,"),
        ("CASEI(eo:cloud_cover) = 'a'", "CASEI takes a string, got property 'eo:cloud_cover'"),
        # a string where a condition belongs (it said CASEI was an unknown function)
        ("CASEI(platform)", "CASEI(...) is not a condition"),
        ('{"op": "accenti", "args": [{"property": "platform"}]}', "ACCENTI(...) is not a"),
        ("eo:cloud_cover = 'open", "line 1 column 18: a 'string' is not closed"),
        (
            "S_INTERSECTS(geometry, LINESTRING(1 2))",
            "CQL2 text: each LineString line needs 2 or more positions",
        ),
        (
            {"op": "=", "args": [{"bbox": 5}, 1]},
            "CQL2 JSON at $.args[0]: 'bbox' is a list of 4 or 6 numbers",
        ),
        (
            {"op": "s_intersects", "args": [{"property": "geometry"},
                                            {"type": "Point", "coordinates": []}]},
            "CQL2 JSON at $.args[1]: Point: a position is 2 or more numbers, got []",
        ),
        (
            {"op": "s_intersects", "args": [{"property": "geometry"},
                                            {"type": "Point", "coordinates": [1, True]}]},
            "a position is 2 or more numbers, got [1, true]",
        ),
        (
            {"op": "s_intersects", "args": [{"property": "geometry"},
                                            {"type": "GeometryCollection"}]},
            "a GeometryCollection needs a 'geometries' list",
        ),
        (
            {"op": "s_intersects", "args": [{"property": "geometry"},
                                            {"type": "Polygon", "coordinates": []}]},
            "a Polygon with no coordinates matches nothing",
        ),
    ],
)  # fmt: skip
def test_errors_show_cql2_not_python(catalog: Path, text: Any, message: str) -> None:
    """Every malformed filter is a QueryError naming what is wrong, in CQL2's terms; GEOS,
    Python or Arrow errors (a traceback at the command line) never escape."""
    with pytest.raises(QueryError) as error:
        search(str(catalog), filter=text).count()
    assert message in str(error.value)
    assert "datetime.date(" not in str(error.value) and "ATTRIBUTE" not in str(error.value)


def test_intersects_must_be_valid_geojson(catalog: Path) -> None:
    with pytest.raises(QueryError, match=r"intersects: .*LineString line needs 2 or more"):
        search(str(catalog), intersects={"type": "LineString", "coordinates": [[1, 2]]}).count()


def test_a_geojson_literal_may_carry_a_bbox_member(catalog: Path) -> None:
    """RFC 7946 allows ``bbox`` on any geometry: it is still the geometry, not a BBOX."""
    polygon = {"type": "Polygon",
               "coordinates": [[[10, 45], [10.5, 45], [10, 45.5], [10, 45]]]}  # fmt: skip
    plain = {"op": "s_within", "args": [{"property": "geometry"}, polygon]}
    boxed = {"op": "s_within", "args": [{"property": "geometry"},
                                        {**polygon, "bbox": [10, 45, 11, 46]}]}  # fmt: skip
    expected = ids(search(str(catalog), filter=plain))
    assert 0 < len(expected) < len(ids(search(str(catalog), filter={"op": "s_within", "args": [
        {"property": "geometry"}, {"bbox": [10, 45, 11, 46]}]})))  # fmt: skip
    assert ids(search(str(catalog), filter=boxed)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("eo:cloud_cover div 0 < 0", lambda c: False),  # no value, so unknown: was INT64_MIN
        ("NOT (eo:cloud_cover div 0 < 0)", lambda c: False),
        ("eo:cloud_cover % 0 = 1", lambda c: False),  # an Arrow error before
        ("eo:cloud_cover + 9223372036854775807 > 0", lambda c: True),  # wrapped to < 0 before
        ("eo:cloud_cover * 9223372036854775807 * 2 >= 0", lambda c: True),
        ("eo:cloud_cover - 9223372036854775807 - 5 < 0", lambda c: True),
        ("eo:cloud_cover div 7 = 2", lambda c: c // 7 == 2),
        ("eo:cloud_cover % 7 = 0 AND eo:cloud_cover < 14", lambda c: c % 7 == 0 and c < 14),
    ],
)
def test_arithmetic_has_no_64_bit_wrap_and_no_value_for_division_by_zero(
    catalog: Path, items: list[dict[str, Any]], text: str, expected: Any
) -> None:
    """CQL2 numbers are numbers (clause 7.10): no wrap at 64 bits; x div 0 has no value."""
    covers = [it["properties"].get("eo:cloud_cover") for it in items]
    want = {it["id"] for it, c in zip(items, covers, strict=True) if c is not None and expected(c)}
    assert ids(search(str(catalog), filter=text)) == want


def test_a_summary_lists_values_only_when_every_month_is_listed(tmp_path: Path) -> None:
    """A month of whole numbers and a month of decimals: the collection's summary of the
    field must hold both, so that ``= 20.5`` (pruned by it) still finds its item."""
    import dafab_static
    from tests.builds.generate import item, write_ndjson

    whole, decimal = item(1, month=1), item(2, month=2)
    whole["properties"]["eo:cloud_cover"] = 10
    decimal["properties"]["eo:cloud_cover"] = 20.5
    dest = tmp_path / "cat"
    dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", [whole, decimal]))], str(dest))
    manifest = json.loads((dest / "index" / "gen" / "_partitions.json").read_text())
    assert manifest["summaries"]["eo:cloud_cover"] == {"minimum": 10, "maximum": 20.5}
    assert ids(search(str(dest), filter="eo:cloud_cover = 20.5")) == {decimal["id"]}
    assert ids(search(str(dest), filter="eo:cloud_cover IN (10, 20.5)")) == {
        whole["id"],
        decimal["id"],
    }
    assert dafab_static.validate(str(dest)).ok


def test_a_six_number_bbox_filters_on_height_with_2d_items_at_zero(tmp_path: Path) -> None:
    """STAC API Item Search: "When filtering with a 3D bbox over Items with 2D geometries, it
    is assumed that the 2D geometries are at elevation 0." The heights were ignored."""
    import dafab_static
    from tests.builds.generate import item, write_ndjson

    flat = [item(i) for i in range(2)]
    tall = [item(i, collection="tall") for i in (10, 11)]
    for k, it in enumerate(tall, 1):
        x, y = it["bbox"][:2]
        it["geometry"] = {"type": "Point", "coordinates": [x, y, 100.0 * k]}
        it["bbox"] = [x, y, 100.0 * k, x, y, 100.0 * k + 50]
    dest = tmp_path / "cat"
    dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", flat + tall))], str(dest))
    flat_ids = {it["id"] for it in flat}

    def found(box: list[float]) -> set[str]:
        result = search(str(dest), bbox=box)
        assert result.count() == len(ids(search(str(dest), bbox=box)))
        return ids(result)

    assert found([-180, -90, -1000, 180, 90, 1000]) == flat_ids | {"gen-0000010", "gen-0000011"}
    assert found([-180, -90, 1, 180, 90, 120]) == {"gen-0000010"}  # no 2D item: 0 is outside
    assert found([-180, -90, 160, 180, 90, 210]) == {"gen-0000011"}
    assert found([-180, -90, -5, 180, 90, 5]) == flat_ids
    assert len(found([-180, -90, 180, 90])) == 4  # a 2D bbox says nothing of heights


def test_fields_include_of_a_path_inside_a_property_keeps_that_path(tmp_path: Path) -> None:
    """Fields extension: ``include`` names dot-notation paths. ``properties.nest.b``
    returned the whole ``nest``, and a path that is not there returned it too."""
    import pyarrow.parquet as pq

    from dafab_static import index

    it = generated_item(0)
    it["properties"]["nest"] = {"a": 1, "b": {"c": 2, "d": 3}}
    path = tmp_path / "items.parquet"
    pq.write_table(index.to_table([it]), path)

    def nest(fields: object) -> object:
        found = next(iter(search(str(path), fields=fields)))  # type: ignore[arg-type]
        return found["properties"].get("nest", "absent")

    assert nest("properties.nest.b") == {"b": {"c": 2, "d": 3}}
    assert nest("properties.nest.b.c") == {"b": {"c": 2}}
    assert nest("properties.nest.b.c,properties.nest.a") == {"a": 1, "b": {"c": 2}}
    assert nest("properties.nest.zz") == "absent"
    assert nest("properties.nest,properties.nest.b.c") == it["properties"]["nest"]  # whole
    assert nest("properties,properties.nest.b.c") == it["properties"]["nest"]
    assert nest("properties.nest.b,-properties.nest.b.d") == {"b": {"c": 2}}


def test_fields_an_excluded_field_keeps_the_paths_included_inside_it(tmp_path: Path) -> None:
    """Fields extension, rule 5.1: "If a field is in exclude, and a nested field of that
    field is in include, the nested field should be included, but no other nested fields
    in the field should be included" (``["a.b"] | ["a"]``: a.b is the only field in a).
    The excluded parent dropped the included path with it."""
    import pyarrow.parquet as pq

    from dafab_static import index

    it = generated_item(0)
    it["properties"]["nest"] = {"a": 1, "b": {"c": 2, "d": 3}}
    it["assets"]["thumb"] = {"href": "https://example.com/t.png", "type": "image/png"}
    path = tmp_path / "items.parquet"
    pq.write_table(index.to_table([it]), path)

    def found(fields: object) -> dict[str, Any]:
        return next(iter(search(str(path), fields=fields)))  # type: ignore[arg-type]

    assert set(it["assets"]) > {"data"}
    assert found("assets.data,-assets")["assets"] == {"data": it["assets"]["data"]}
    rule = {"include": ["assets.data"], "exclude": ["assets"]}
    assert found(rule)["assets"] == {"data": it["assets"]["data"]}
    deep = found({"include": ["assets.data.href"], "exclude": ["assets.data"]})["assets"]
    assert deep == {**it["assets"], "data": {"href": it["assets"]["data"]["href"]}}
    nested = found({"include": ["properties.nest.a"], "exclude": ["properties.nest"]})
    assert nested["properties"]["nest"] == {"a": 1}
    assert "assets" not in found("-assets")


def test_a_date_literal_finds_a_text_date_that_a_summary_lists(tmp_path: Path) -> None:
    """A date-time property other than the three time columns is text in STAC JSON and in
    the index; the collection's summary lists its strings. ``= DATE(...)`` and ``IN`` must
    still match it (OGC CQL2 ATS, basic-cql2), not prune the file because a date is not
    among the strings."""
    import dafab_static
    from tests.builds.generate import item, write_ndjson

    first, second = item(1), item(2)
    first["properties"].update(day="2022-04-16", at="2022-04-16T10:13:19Z")
    second["properties"].update(day="2023-04-16", at="2023-04-16T10:13:19Z")
    dest = tmp_path / "cat"
    dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", [first, second]))], str(dest))
    manifest = json.loads((dest / "index" / "gen" / "_partitions.json").read_text())
    assert manifest["summaries"]["day"] == ["2022-04-16", "2023-04-16"]
    assert ids(search(str(dest), filter="day = DATE('2022-04-16')")) == {first["id"]}
    assert ids(search(str(dest), filter="at = TIMESTAMP('2022-04-16T10:13:19Z')")) == {first["id"]}
    both = "day IN (DATE('2022-04-16'), DATE('2023-04-16'))"
    assert ids(search(str(dest), filter=both)) == {first["id"], second["id"]}
    # Strings against the strings still prune by the summary.
    CACHE.clear()
    pruned = search(str(dest), filter="day = '1999-01-01'")
    assert pruned.count() == 0 and ids(pruned) == set()


@pytest.mark.parametrize(
    "text",
    [
        "T_EQUALS(day, DATE('2022-04-16'))",
        "T_EQUALS(DATE('2022-04-16'), day)",
        "T_EQUALS(day, INTERVAL('2022-04-16', '2022-04-16'))",
        "T_DURING(TIMESTAMP('2022-04-16T10:00:00Z'), day)",
        "T_FINISHES(INTERVAL('2022-04-16T12:00:00Z', '2022-04-16T23:59:59.999999Z'), day)",
    ],
)
def test_a_text_date_is_a_whole_day_in_temporal_predicates(tmp_path: Path, text: str) -> None:
    """CQL2 makes a date "an instant with a granularity of a day" (OGC 21-065r2 clause 6);
    a date held as text, as STAC JSON holds every date, was its midnight alone, so it never
    equalled a DATE literal (OGC CQL2 ATS, temporal-functions: t_equals("date", date(...)))."""
    import dafab_static
    from tests.builds.generate import item, write_ndjson

    first, second, stamped = item(1), item(2), item(3)
    first["properties"]["day"] = "2022-04-16"
    second["properties"]["day"] = "2023-04-16"
    stamped["properties"]["day"] = "2022-04-16T00:00:00Z"  # an instant, not the day
    source = write_ndjson(tmp_path / "a.ndjson", [first, second, stamped])
    dest = tmp_path / "cat"
    dafab_static.build([str(source)], str(dest))
    assert ids(search(str(dest), filter=text)) == {first["id"]}


def test_a_text_literal_spells_control_characters_with_a_backslash(tmp_path: Path) -> None:
    """OGC 21-065r2 /req/cql2-text/escaping C: '\\n', '\\t' and the other control escapes
    are the characters; they stayed a backslash and a letter. LIKE's own escapes (\\%,
    \\_, \\\\) still reach the pattern."""
    import dafab_static
    from tests.builds.generate import item, write_ndjson

    lines, tabs, percent, plain = item(1), item(2), item(3), item(4)
    lines["properties"]["note"] = "a\nb"
    tabs["properties"]["note"] = "a\tb\r"
    percent["properties"]["note"] = "50%\\"
    plain["properties"]["note"] = "a\\nb"  # a backslash and an n, as written
    source = write_ndjson(tmp_path / "a.ndjson", [lines, tabs, percent, plain])
    dest = tmp_path / "cat"
    dafab_static.build([str(source)], str(dest))

    def found(text: str) -> set[str]:
        return ids(search(str(dest), filter=text))

    assert found(r"note = 'a\nb'") == {lines["id"]}
    assert found(r"note = 'a\tb\r'") == {tabs["id"]}
    assert found(r"note LIKE 'a\n%'") == {lines["id"]}
    assert found(r"note LIKE '50\%\\'") == {percent["id"]}
    assert found(r"note LIKE 'a\\n%'") == {plain["id"]}
    assert found("note = 'it''s'") == found(r"note = 'it\'s'") == set()
