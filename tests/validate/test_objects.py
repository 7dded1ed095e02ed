"""One STAC object at a time: spec examples, real hub items, and items broken on purpose."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dafab_static._schemas import SCHEMA_DIR, SchemaRegistry, is_date_time
from dafab_static.validator import Problem, Validator, validate_object

from .conftest import Item

V11 = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema"
EO_V1 = "https://stac-extensions.github.io/eo/v1.0.0/schema.json"
USGS = "https://landsat.usgs.gov/stac/landsat-extension/v1.1.1/schema.json"


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def spec_files(spec_examples: Path) -> list[Path]:
    return sorted(spec_examples.rglob("*.json"))


def test_vendored_schemas_match_the_manifest() -> None:
    import hashlib

    manifest = json.loads((SCHEMA_DIR / "MANIFEST.json").read_text())
    schema_map = json.loads((SCHEMA_DIR / "schema-map.json").read_text())["schemas"]
    assert len(manifest) == len(schema_map) == 90
    for record in manifest:
        data = (SCHEMA_DIR / record["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"], record["path"]
        assert schema_map[record["url"]] == record["path"]


@pytest.mark.parametrize("version", ["v1.0.0", "v1.1.0"])
def test_every_spec_example_is_valid(
    spec_examples: Path, validator: Validator, version: str
) -> None:
    files = spec_files(spec_examples / version)
    assert len(files) == 10
    for path in files:
        assert validator.validate(json.loads(path.read_text()), href=str(path)) == [], path


def test_real_sentinel2_items_validate_without_problems(
    parquet_items: Callable[[str], list[Item]], validator: Validator
) -> None:
    items = parquet_items("pc-sentinel-2-l2a-1000.parquet")[:200]
    assert len(items) == 200
    assert items[0]["stac_version"] == "1.0.0"
    assert validator.validate_many((item["id"], item) for item in items) == []


def test_landsat_usgs_extension_is_one_unknown_warning(
    parquet_items: Callable[[str], list[Item]], validator: Validator
) -> None:
    item = parquet_items("pc-landsat-c2-l2-100.parquet")[0]
    index = item["stac_extensions"].index(USGS)
    assert validator.validate(item, href="landsat.json") == [
        Problem(
            "landsat.json",
            f"$.stac_extensions[{index}]",
            "dafab:unknown-extension",
            f"extension schema {USGS} is not vendored; not checked",
            "warning",
        )
    ]


def test_raw_parquet_nulls_are_reported(shared_data: Path, validator: Validator) -> None:
    # Without dropping Arrow's filler nulls, link titles fail the schema: ingest must drop them.
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import stac_table_to_items

    table = pq.read_table(shared_data / "stac-items" / "pc-sentinel-2-l2a-1000.parquet")
    raw = next(iter(stac_table_to_items(table)))
    problems = validator.validate(raw, href="raw")
    assert {p.json_path for p in problems} == {f"$.links[{i}].title" for i in range(5)} | {
        "$.links[4].type"
    }


@pytest.fixture
def core_item(spec_examples: Path) -> Item:
    item: Item = json.loads((spec_examples / "v1.1.0" / "core-item.json").read_text())
    return item


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_missing_datetime(core_item: Item, validator: Validator) -> None:
    del core_item["properties"]["datetime"]
    problem = only(validator.validate(core_item, href="core-item.json"))
    assert problem.json_path == "$.properties.datetime"
    assert problem.rule == (
        f"{V11}/item.json#/definitions/core/allOf/2/properties/properties/allOf/1/anyOf/0/required"
    )
    assert problem.message == "'datetime' is a required property"
    assert problem.severity == "error"
    assert str(problem) == (
        "core-item.json: $.properties.datetime: error: 'datetime' is a required property "
        f"[{problem.rule}]"
    )


def test_bbox_as_string(core_item: Item, validator: Validator) -> None:
    core_item["bbox"] = "172.9,1.3,173,1.4"
    problems = validator.validate(core_item, href="x.json")
    assert [p.json_path for p in problems] == ["$.bbox", "$.bbox"]
    assert problems[0].rule == "https://geojson.org/schema/Feature.json#/properties/bbox/type"
    assert problems[0].message == "'172.9,1.3,173,1.4' is not of type 'array'"
    # The oneOf (geometry+bbox, or neither) explained by its first alternative's bbox type.
    assert (
        problems[1].rule
        == f"{V11}/item.json#/definitions/core/allOf/1/oneOf/0/properties/bbox/type"
    )


def test_a_geometry_type_the_schema_does_not_allow_names_every_allowed_type(
    core_item: Item, validator: Validator
) -> None:
    """STAC 1.1 items refer to GeoJSON's Geometry.json, which has no GeometryCollection:
    the message lists the six types its oneOf allows, not only the first alternative's."""
    core_item["geometry"] = {
        "type": "GeometryCollection",
        "geometries": [{"type": "Point", "coordinates": [172.95, 1.35]}],
    }
    messages = {
        p.message for p in validator.validate(core_item) if p.json_path == "$.geometry.type"
    }
    assert messages == {
        "'GeometryCollection' is not one of ['Point', 'LineString', 'Polygon', 'MultiPoint', "
        "'MultiLineString', 'MultiPolygon']"
    }


def test_a_ring_too_short_is_blamed_on_the_ring_not_on_another_geometry_type(
    core_item: Item, validator: Validator
) -> None:
    """A 3-position Polygon ring: the Polygon alternative says what is wrong; the deeper
    MultiPolygon one ("10 is not of type 'array'") only mistakes the object's type."""
    core_item["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[172.9, 1.3], [173.0, 1.3], [172.9, 1.3]]],
    }
    problems = validator.validate(core_item)
    assert {p.json_path for p in problems} == {"$.geometry.coordinates[0]"}
    assert {p.message for p in problems} == {
        "a linear ring has 3 positions; GeoJSON needs at least 4, the last repeating the first"
    }
    assert all(p.rule.endswith("/properties/coordinates/items/minItems") for p in problems)


def test_datetime_not_rfc3339(core_item: Item, validator: Validator) -> None:
    core_item["properties"]["datetime"] = "2020-02-30T00:00:00Z"
    problem = only(validator.validate(core_item))
    assert problem.json_path == "$.properties.datetime"
    assert problem.rule == f"{V11}/datetime.json#/properties/datetime/format"
    assert problem.href == ""
    assert str(problem).startswith("<object>: $.properties.datetime: error: ")


def test_extension_field_with_wrong_type(
    parquet_items: Callable[[str], list[Item]], validator: Validator
) -> None:
    item = parquet_items("pc-sentinel-2-l2a-1000.parquet")[0]
    item["properties"]["eo:cloud_cover"] = "cloudy"
    problem = only(validator.validate(item, href=item["id"]))
    assert problem.json_path == "$.properties['eo:cloud_cover']"
    assert problem.rule == f"{EO_V1}#/definitions/fields/properties/eo:cloud_cover/type"


def test_old_version_is_unsupported(core_item: Item) -> None:
    core_item["stac_version"] = "1.0.0-rc.2"
    problem = only(validate_object(core_item, href="old.json"))
    assert (problem.json_path, problem.rule, problem.severity) == (
        "$.stac_version",
        "dafab:stac_version",
        "error",
    )
    assert "older than 1.0.0" in problem.message


def test_newer_version_is_a_warning(core_item: Item) -> None:
    core_item["stac_version"] = "1.2.0"
    problem = only(validate_object(core_item))
    assert (problem.json_path, problem.severity) == ("$.stac_version", "warning")


@pytest.mark.parametrize(
    ("obj", "path"),
    [({"type": "FeatureCollection", "features": []}, "$.type"), ([1, 2], "$")],
)
def test_not_a_stac_object(obj: Any, path: str) -> None:
    problem = only(validate_object(obj))
    assert (problem.json_path, problem.rule) == (path, "dafab:type")


def test_validation_does_not_change_the_object(
    parquet_items: Callable[[str], list[Item]], validator: Validator
) -> None:
    # A validator must never write schema defaults (or anything else) into the items.
    items = parquet_items("pc-landsat-c2-l2-100.parquet")[:5]
    before = copy.deepcopy(items)
    validator.validate_many(("", i) for i in items)
    assert items == before


def test_is_date_time() -> None:
    assert [
        is_date_time(v)
        for v in ("2024-02-29T23:59:60.5+01:00", "2023-02-29T00:00:00Z", "2024-01-01", 5)
    ] == [True, False, False, True]


def _mutations(item: Item) -> list[Item]:
    """Small, deterministic damage in many places of one item."""
    out = []
    for path, value in [
        (("bbox",), [1, 2, 3]),
        (("geometry", "type"), "Circle"),
        (("properties", "datetime"), None),
        (("properties", "gsd"), -1),
        (("properties", "eo:cloud_cover"), 101),
        (("properties", "proj:epsg"), "32613"),
        (("properties", "view:sun_elevation"), 100),
        (("links", 0, "href"), 3),
        (("assets",), []),
        (("stac_extensions",), "eo"),
        (("id",), 7),
    ]:
        damaged = copy.deepcopy(item)
        target = damaged
        try:
            for key in path[:-1]:
                target = target[key]
        except (KeyError, IndexError, TypeError):
            continue  # e.g. no geometry in a catalog
        target[path[-1]] = value
        out.append(damaged)
    return out


def test_fast_and_detailed_engines_agree(
    spec_examples: Path, parquet_items: Callable[[str], list[Item]]
) -> None:
    schemas = SchemaRegistry()
    objects = [json.loads(p.read_text()) for p in spec_files(spec_examples)]
    objects += parquet_items("pc-sentinel-2-l2a-1000.parquet")[:50]
    objects += parquet_items("pc-landsat-c2-l2-100.parquet")[:10]
    objects += [m for obj in objects[:20] + objects[-3:] for m in _mutations(obj)]
    verdicts = {True: 0, False: 0}
    combined = {True: 0, False: 0}
    for obj in objects:
        kind = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}[obj["type"]]
        core = f"https://schemas.stacspec.org/v{obj['stac_version']}/{kind}-spec/json-schema/"
        extensions = obj.get("stac_extensions")
        extensions = extensions if isinstance(extensions, list) else []
        urls = [f"{core}{kind}.json", *(u for u in extensions if u in schemas)]
        each = []
        for url in urls:
            fast = schemas.fast(url)
            assert fast is not None, url
            fast_ok = fast.is_valid(obj)
            detailed_ok = not any(True for _ in schemas.detailed(url).iter_errors(obj))
            assert fast_ok == detailed_ok, (obj.get("id"), url)
            verdicts[fast_ok] += 1
            each.append(fast_ok)
        # One validator for all of an object's schemas: valid exactly when valid under each.
        every = schemas.fast_all(tuple(urls)).is_valid(obj)
        assert every == all(each), (obj.get("id"), urls)
        combined[every] += 1
    assert verdicts == {True: 731, False: 209}
    assert combined[False] > 0 and combined[True] > 0


def test_schemas_the_fast_engine_cannot_build_fall_back() -> None:
    schemas = SchemaRegistry()
    uncompiled = sorted(url for url in schemas if schemas.fast(url) is None)
    assert uncompiled == [
        "https://stac-extensions.github.io/mlm/v1.0.0/schema.json",
        "https://stac-extensions.github.io/mlm/v1.1.0/schema.json",
        "https://stac-extensions.github.io/mlm/v1.2.0/schema.json",
        "https://stac-extensions.github.io/storage/v2.0.0/schema.json",
    ]
    core = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
    assert schemas.fast_all((core, uncompiled[0])) is None  # checked one by one instead


def test_unvendored_reference_is_a_warning_not_a_fetch(
    core_item: Item, validator: Validator, no_network: list[str]
) -> None:
    storage = "https://stac-extensions.github.io/storage/v2.0.0/schema.json"
    core_item["stac_extensions"] = [storage]
    core_item["properties"]["storage:schemes"] = {"a": {"type": "aws-s3", "platform": "s3://x"}}
    problem = only(validator.validate(core_item, href="s.json"))
    assert (problem.rule, problem.severity) == (f"{storage}#$ref", "warning")
    assert "https://stac-extensions.github.io/storage/v2.0.0/platforms/aws-s3.json" in (
        problem.message
    )
    assert no_network == []


def test_a_list_among_stac_extensions_is_a_problem_not_a_crash() -> None:
    """Found by fuzzing: an unhashable entry reached the schema lookup as a TypeError."""
    from dafab_static.validator import validate_object

    obj = {"type": "Feature", "stac_version": "1.1.0", "stac_extensions": [["x"]], "id": "a",
           "geometry": None, "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
           "assets": {}}  # fmt: skip
    problems = validate_object(obj, href="a.json")
    assert problems and all(p.json_path.startswith("$.stac_extensions") for p in problems)


def test_the_fast_engine_sees_only_date_time_formats() -> None:
    from dafab_static._schemas import _only_date_time_formats

    schema = {
        "properties": {
            "href": {"type": "string", "format": "iri-reference"},
            "when": {"type": "string", "format": "date-time"},
            "format": {"type": "string", "format": "uri"},  # a property named "format"
            "kind": {"const": {"format": "uri"}, "enum": [{"format": "x"}]},  # data
        }
    }
    assert _only_date_time_formats(schema) == {
        "properties": {
            "href": {"type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "format": {"type": "string"},
            "kind": {"const": {"format": "uri"}, "enum": [{"format": "x"}]},
        }
    }
    assert schema["properties"]["href"]["format"] == "iri-reference"  # a copy, not in place
    # The documents the detailed engine reads keep every format, as published.
    item = SchemaRegistry().contents(
        "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
    )
    assert '"format":"iri-reference"' in json.dumps(item, separators=(",", ":"))


def test_a_bad_date_time_is_still_rejected_fast(core_item: Item) -> None:
    schemas = SchemaRegistry()
    url = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
    core_item["properties"]["datetime"] = "2024-02-30T00:00:00Z"
    assert schemas.fast(url).is_valid(core_item) is False
    core_item["properties"]["datetime"] = "2024-02-29T00:00:00Z"
    assert schemas.fast(url).is_valid(core_item) is True


def test_a_polygon_ring_that_is_not_closed_is_an_error(validator: Validator) -> None:
    """RFC 7946 3.1.6: a ring's first and last positions are equal. The GeoJSON schemas
    check array shapes only, so validate called such an item valid, and build failed on it."""
    from tests.builds.generate import item

    closed = item(1)
    del closed["collection"]  # a collection id needs a collection link: none here
    assert validator.validate(closed, href="a.json") == []
    square = closed["geometry"]["coordinates"][0]
    open_ring = [*square[:-1], [9.0, 9.0]]
    geometries = {
        "$.geometry.coordinates[0]": {"type": "Polygon", "coordinates": [open_ring]},
        "$.geometry.coordinates[1][1]": {
            "type": "MultiPolygon", "coordinates": [[square], [square, open_ring]],
        },
        "$.geometry.geometries[1].coordinates[0]": {
            "type": "GeometryCollection",
            "geometries": [{"type": "Point", "coordinates": [1, 2]},
                           {"type": "Polygon", "coordinates": [open_ring]}],
        },
    }  # fmt: skip
    for path, geometry in geometries.items():
        broken = {**closed, "geometry": geometry}
        problems = validator.validate(broken, href="a.json")
        problem = only([p for p in problems if p.rule == "dafab:closed-ring"])
        assert problem.json_path == path, geometry["type"]
        assert problem.severity == "error" and "RFC 7946 3.1.6" in problem.message


def test_a_collection_id_without_a_collection_link_is_said_plainly(validator: Validator) -> None:
    """STAC 1.1 forbids it through a "not": {} in its schema, which jsonschema words as
    "'gen' should not be valid under {}"; and a report of one object said "1 objects"."""
    from tests.builds.generate import item

    problem = only(validator.validate(item(1), href="a.json"))
    assert problem.json_path == "$.collection"
    assert problem.message == (
        "collection 'gen' is set, but no link has rel 'collection': STAC 1.1 allows the field "
        "only beside that link"
    )


def test_a_position_off_the_world_is_a_warning(validator: Validator) -> None:
    """Longitude 185 (a footprint that ran on past the antimeridian) passed every schema."""
    from tests.builds.generate import item

    broad = item(1)
    del broad["collection"]
    broad["geometry"] = {"type": "Polygon", "coordinates": [
        [[175.0, 8.0], [185.0, 8.0], [185.0, 10.0], [175.0, 10.0], [175.0, 8.0]]]}  # fmt: skip
    broad["bbox"] = [175.0, 8.0, 185.0, 10.0]
    problem = only([p for p in validator.validate(broad) if p.rule == "dafab:position-range"])
    assert problem.severity == "warning" and "position [185.0, " in problem.message
    inside = item(2)
    assert not [p for p in validator.validate(inside) if p.rule == "dafab:position-range"]


def _item(**properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": "x",
        "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}, "bbox": [1.0, 2.0, 1.0, 2.0],
        "properties": {"datetime": "2024-07-01T00:00:00Z", **properties}, "links": [],
        "assets": {},
    }  # fmt: skip


def test_a_schema_with_a_missing_reference_still_checks_the_rest(validator: Validator) -> None:
    """storage 2.0.0 refers to ./platforms/*.json, which is not vendored: the first such
    reference replaced every error with one warning, and an invalid item passed."""
    item = _item(**{"storage:schemes": {"aws": {"type": 7, "platform": 5}}})
    item["stac_extensions"] = ["https://stac-extensions.github.io/storage/v2.0.0/schema.json"]
    problems = validator.validate(item, href="x.json")
    errors = [p for p in problems if p.severity == "error"]
    assert errors and all("storage:schemes" in p.json_path for p in errors)
    assert any("not of type 'string'" in p.message for p in errors)
    warnings = [p for p in problems if p.severity == "warning"]
    assert len(warnings) == 1 and "not fully checked" in warnings[0].message
    good = _item(
        **{
            "storage:schemes": {
                "aws": {"type": "aws-s3", "platform": "https://{bucket}.s3.amazonaws.com"}
            }
        }
    )
    good["stac_extensions"] = item["stac_extensions"]
    assert [p.severity for p in validator.validate(good, href="x.json")] == ["warning"]


def test_a_pattern_dollar_is_the_end_of_the_text(validator: Validator) -> None:
    """JSON Schema patterns are ECMA-262: '$' does not match before a final newline, as
    Python's does; '1220abcdef\\n' passed the file extension's checksum pattern."""
    item = _item()
    item["stac_extensions"] = ["https://stac-extensions.github.io/file/v2.1.0/schema.json"]
    item["assets"] = {"data": {"href": "a.tif", "file:checksum": "1220abcdef\n"}}
    problems = validator.validate(item, href="x.json")
    assert [p.severity for p in problems] == ["error"], problems
    item["assets"]["data"]["file:checksum"] = "1220abcdef"
    assert validator.validate(item, href="x.json") == []
