"""Queryables: built from the index schema, linked from the tree, read back, merged."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

import dafab_static
from dafab_static.errors import InputError
from dafab_static.options import BuildOptions
from dafab_static.queryables import (
    DIALECT,
    GEOMETRY_REF,
    MEDIA_TYPE,
    REL,
    merge_queryables,
    property_type,
    queryables_for_schema,
)

from .builds.crawl import crawl, file_reader, link

EO_1_1 = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
S2 = "sentinel-2-l2a"
IDS = ["landsat-c2-l2", "sentinel-2-l2a", "sentinel-2-l2a-ndvi"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("queryables") / "catalog"
    dafab_static.build([], str(dest), sample=True)
    return dest


@pytest.fixture(scope="module")
def collections(sample: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    objects = crawl((sample / "catalog.json").as_uri(), file_reader)
    return {d["id"]: (u, d) for u, d in objects.items() if d["type"] == "Collection"}


def _linked(url: str, doc: dict[str, Any]) -> dict[str, Any]:
    found = link(doc, REL)
    assert found["type"] == MEDIA_TYPE and found["title"] == "Queryables"
    return dict(json.loads(file_reader(urljoin(url, found["href"]))))


# -- the build ------------------------------------------------------------------------------


def test_collection_queryables_follow_the_index_and_the_summaries(
    sample: Path, collections: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    url, doc = collections[S2]
    q = _linked(url, doc)
    assert link(doc, REL)["href"] == "sentinel-2-l2a/queryables.json"
    assert (sample / "sensors" / "sentinel-2" / "sentinel-2-l2a" / "queryables.json").is_file()
    # Without --base-url, $id is the file's own name: it resolves to where it was fetched.
    assert q["$schema"] == DIALECT and q["$id"] == "queryables.json"
    assert (q["type"], q["title"], q["additionalProperties"]) == (
        "object", "Queryables of sentinel-2-l2a", False,
    )  # fmt: skip
    props = q["properties"]
    assert list(props)[:4] == ["id", "collection", "geometry", "datetime"]
    assert props["geometry"] == {"title": "Geometry", "$ref": GEOMETRY_REF}
    assert props["datetime"]["type"] == "string" and props["datetime"]["format"] == "date-time"
    assert props["datetime"]["title"] == "Date and Time"
    assert props["collection"]["enum"] == [S2]
    summaries = doc["summaries"]
    assert summaries["eo:cloud_cover"] == {"minimum": 0.8, "maximum": 64.0}
    assert props["eo:cloud_cover"] == {
        "title": "Cloud Cover", "type": "number", "minimum": 0.8, "maximum": 64.0,
    }  # fmt: skip
    assert props["platform"] == {
        "title": "Platform", "type": "string", "enum": ["sentinel-2a", "sentinel-2b"],
    }  # fmt: skip
    assert props["platform"]["enum"] == summaries["platform"]
    assert props["proj:code"] == {
        "title": "Projection code", "type": "string",
        "enum": ["EPSG:32632", "EPSG:32633", "EPSG:32701"],
    }  # fmt: skip
    # the sat schema's bound stays beside the summary's values
    assert props["sat:relative_orbit"] == {"type": "integer", "enum": [108], "minimum": 1}
    assert props["instruments"] == {
        "title": "Instruments", "type": "array", "items": {"type": "string", "enum": ["msi"]},
    }  # fmt: skip
    assert props["proj:shape"] == {"title": "Shape", "type": "array", "items": {"type": "integer"}}
    assert not {"bbox", "links", "assets", "stac_version", "stac_extensions", "type"} & set(props)
    assert len(props) == 23


def test_catalog_queryables_are_the_union(
    sample: Path, collections: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    root = json.loads((sample / "catalog.json").read_bytes())
    assert link(root, REL)["href"] == "queryables.json"
    catalog = _linked((sample / "catalog.json").as_uri(), root)
    assert catalog["title"] == "Queryables of dafab-static catalog"
    parts = {cid: _linked(*collections[cid]) for cid in IDS}
    union = set().union(*(p["properties"] for p in parts.values()))
    assert set(catalog["properties"]) == union
    props = catalog["properties"]
    assert props["collection"]["enum"] == IDS
    assert parts["landsat-c2-l2"]["properties"]["eo:cloud_cover"]["minimum"] == 7.9
    assert props["eo:cloud_cover"] == {
        "title": "Cloud Cover", "type": "number", "minimum": 0.8, "maximum": 64.0,
    }  # fmt: skip
    assert props["view:sun_azimuth"]["minimum"] == 138.4  # landsat's, below sentinel-2's
    assert props["platform"]["enum"] == ["landsat-8", "landsat-9", "sentinel-2a", "sentinel-2b"]
    assert props["instruments"]["items"]["enum"] == ["msi", "oli", "tirs"]
    assert props["landsat:wrs_path"] == {"type": "string", "enum": ["193", "194"]}


def test_library_and_links_agree(
    sample: Path, collections: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    assert dafab_static.queryables(str(sample)) == json.loads(
        (sample / "queryables.json").read_bytes()
    )
    for cid in IDS:
        assert dafab_static.queryables(str(sample), collection=cid) == _linked(*collections[cid])
    url, _ = collections[S2]
    one = dafab_static.queryables(url[len("file://") :])  # a Collection JSON as the source
    assert one["properties"]["collection"]["enum"] == [S2]


def test_a_catalog_built_for_its_url_is_read_from_its_folder(tmp_path: Path) -> None:
    """With --base-url the queryables links are absolute (as a STAC API client resolves
    them); read from the folder before it is served there, they are followed in the folder."""
    dest = tmp_path / "catalog"
    base = "https://example.com/stac"
    dafab_static.build([], str(dest), sample=True, options=BuildOptions(base_url=base))
    root = json.loads((dest / "catalog.json").read_bytes())
    assert link(root, REL)["href"] == f"{base}/queryables.json"
    assert dafab_static.queryables(str(dest)) == json.loads((dest / "queryables.json").read_bytes())
    one = dafab_static.queryables(str(dest), collection=S2)
    assert one["$id"] == f"{base}/sensors/sentinel-2/{S2}/queryables.json"
    assert one == json.loads((dest / f"sensors/sentinel-2/{S2}/queryables.json").read_bytes())


def test_a_catalog_without_queryables_falls_back_to_its_indexes(
    sample: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(sample, bare)
    for path in bare.rglob("*.json"):
        if path.name == "queryables.json":
            path.unlink()
            continue
        doc = json.loads(path.read_bytes())
        if isinstance(doc, dict) and "links" in doc:
            doc["links"] = [ln for ln in doc["links"] if ln["rel"] != REL]
            path.write_text(json.dumps(doc))

    def published(**kw: Any) -> dict[str, Any]:
        doc = dafab_static.queryables(str(sample), **kw)
        assert doc.pop("$id") == "queryables.json"  # a file's own name: relocatable
        return doc

    assert dafab_static.queryables(str(bare)) == published()
    for cid in IDS:
        computed = dafab_static.queryables(str(bare), collection=cid)
        assert computed == published(collection=cid)  # computed: no document, no $id


def test_base_url_makes_queryables_links_and_ids_absolute(tmp_path: Path) -> None:
    dest = tmp_path / "pub"
    base = "https://example.com/stac"
    dafab_static.build([], str(dest), sample=True, options=BuildOptions(base_url=base + "/"))
    root = json.loads((dest / "catalog.json").read_bytes())
    assert link(root, REL)["href"] == f"{base}/queryables.json"
    assert json.loads((dest / "queryables.json").read_bytes())["$id"] == f"{base}/queryables.json"
    collection = json.loads((dest / "sensors" / "landsat" / "landsat-c2-l2.json").read_bytes())
    href = f"{base}/sensors/landsat/landsat-c2-l2/queryables.json"
    assert link(collection, REL)["href"] == href
    q = json.loads(
        (dest / "sensors" / "landsat" / "landsat-c2-l2" / "queryables.json").read_bytes()
    )
    assert q["$id"] == href


# -- from an Arrow schema -------------------------------------------------------------------


def test_arrow_types_map_to_json_schema() -> None:
    schema = pa.schema(
        [
            ("id", pa.string()), ("geometry", pa.binary()),
            ("bbox", pa.struct([("xmin", pa.float64())])),
            ("s", pa.large_string()), ("i", pa.int32()), ("u", pa.uint8()), ("f", pa.float32()),
            ("b", pa.bool_()), ("t", pa.timestamp("ms", tz="UTC")), ("d", pa.date32()),
            ("li", pa.list_(pa.int64())), ("ls", pa.large_list(pa.string())),
            ("st", pa.struct([("a", pa.float64()), ("raw", pa.binary())])),
            ("dict", pa.dictionary(pa.int8(), pa.string())),
            ("m", pa.map_(pa.string(), pa.int64())),
            ("wkb", pa.binary()), ("nothing", pa.null()), ("start_datetime", pa.timestamp("us")),
        ]
    )  # fmt: skip
    props = queryables_for_schema(schema, title="T")["properties"]
    assert list(props) == [
        "id", "collection", "geometry", "datetime", "start_datetime",
        "b", "d", "dict", "f", "i", "li", "ls", "m", "s", "st", "t", "u",
    ]  # fmt: skip
    assert props["start_datetime"]["format"] == "date-time"
    assert {n: props[n] for n in ("b", "d", "dict", "f", "i", "m", "s", "t", "u")} == {
        "b": {"type": "boolean"}, "d": {"type": "string", "format": "date"},
        "dict": {"type": "string"}, "f": {"type": "number"}, "i": {"type": "integer"},
        "m": {"type": "object"}, "s": {"type": "string"},
        "t": {"type": "string", "format": "date-time"}, "u": {"type": "integer"},
    }  # fmt: skip
    assert props["li"] == {"type": "array", "items": {"type": "integer"}}
    assert props["ls"] == {"type": "array", "items": {"type": "string"}}
    assert props["st"] == {"type": "object", "properties": {"a": {"type": "number"}}}


def test_vendored_schemas_and_summaries_describe_fields() -> None:
    names = ["eo:cloud_cover", "gsd", "eo:snow_cover", "sat:orbit_state"]
    types = [pa.float64(), pa.int64(), pa.float64(), pa.string()]
    schema = pa.schema(list(zip(names, types, strict=True)))
    collection = {
        "id": "c1",
        "stac_extensions": ["https://stac-extensions.github.io/sat/v1.0.0/schema.json"],
        "summaries": {"eo:cloud_cover": {"minimum": 1.5, "maximum": 9}, "gsd": [10, 20],
                      "sat:orbit_state": ["ascending"], "eo:snow_cover": ["not", "numbers"]},
    }  # fmt: skip
    q = queryables_for_schema(schema, collection=collection, extensions=[EO_1_1],
                              title="Mine", id_url="https://x.org/q.json")  # fmt: skip
    assert (q["$id"], q["title"]) == ("https://x.org/q.json", "Mine")
    props = q["properties"]
    assert props["eo:cloud_cover"] == {
        "title": "Cloud Cover", "type": "number", "minimum": 1.5, "maximum": 9,
    }  # fmt: skip
    # a summary whose values do not fit the column type is not an enum
    assert props["eo:snow_cover"] == {
        "title": "Snow and Ice Cover", "type": "number", "minimum": 0, "maximum": 100,
    }  # fmt: skip
    assert props["gsd"] == {
        "title": "Ground Sample Distance", "type": "integer", "enum": [10, 20],
        "exclusiveMinimum": 0,
    }  # fmt: skip
    assert props["sat:orbit_state"] == {"title": "Orbit State", "type": "string",
                                        "enum": ["ascending"]}  # fmt: skip
    # without the extension named, nothing describes its fields
    bare = queryables_for_schema(schema)["properties"]
    assert bare["eo:cloud_cover"] == {"type": "number"}


def test_members_of_a_core_field_do_not_describe_a_property_of_their_name() -> None:
    """``count`` and ``mean`` are members of ``statistics``, ``url`` of a provider, ``rel``
    of a link: an item property called so is described by its column alone, not by the
    constraints of those (``count`` minimum 0 would reject the item's own -1)."""
    names = ["count", "mean", "url", "rel", "statistics", "providers", "platform"]
    schema = pa.schema([(n, pa.int64()) for n in names[:2]] + [(n, pa.string()) for n in names[2:]])
    props = queryables_for_schema(schema)["properties"]
    assert [props[n] for n in names[:4]] == [
        {"type": "integer"}, {"type": "integer"}, {"type": "string"}, {"type": "string"},
    ]  # fmt: skip
    assert props["statistics"]["title"] == "Statistics"  # the fields themselves still are
    assert props["providers"]["title"] == "Providers"
    assert props["platform"]["title"] == "Platform"


# -- merging and types ----------------------------------------------------------------------


def _doc(**props: dict[str, Any]) -> dict[str, Any]:
    return {"properties": props}


def test_merge_widens_types_and_constraints() -> None:
    a = _doc(
        gsd={"title": "GSD", "type": "integer", "minimum": 10, "maximum": 60, "enum": [10, 60]},
        code={"type": "string", "enum": ["b", "a"]},
        when={"type": "string", "format": "date-time"},
        tags={"type": "array", "items": {"type": "string", "enum": ["x"]}},
        mixed={"type": "integer", "minimum": 0},
        only_a={"type": "boolean"},
    )
    b = _doc(
        gsd={"type": "number", "minimum": 0.5, "maximum": 30, "description": "metres"},
        code={"type": "string", "enum": ["c", "a"]},
        when={"type": "string"},
        tags={"type": "array", "items": {"type": "string", "enum": ["y"]}},
        mixed={"type": "string", "enum": ["s"]},
    )
    merged = merge_queryables([a, b], title="All", id_url="https://x.org/q")
    assert (merged["title"], merged["$id"]) == ("All", "https://x.org/q")
    props = merged["properties"]
    assert props["gsd"] == {
        "title": "GSD", "description": "metres", "type": "number", "minimum": 0.5, "maximum": 60,
    }  # fmt: skip
    assert props["code"] == {"type": "string", "enum": ["a", "b", "c"]}
    assert props["when"] == {"type": "string"}
    assert props["tags"] == {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}}
    assert props["mixed"] == {"type": ["integer", "string"]}
    assert props["only_a"] == {"type": "boolean"}
    assert list(props) == ["code", "gsd", "mixed", "only_a", "tags", "when"]


def test_property_type() -> None:
    q = _doc(
        geometry={"$ref": GEOMETRY_REF}, datetime={"type": "string", "format": "date-time"},
        n={"type": "number"}, i={"type": "integer"}, s={"type": ["string", "null"]},
        two={"type": ["integer", "string"]}, a={"type": "array"}, free={},
    )  # fmt: skip
    got = {name: property_type(q, name) for name in [*q["properties"], "missing"]}
    assert got == {
        "geometry": "geometry", "datetime": "timestamp", "n": "number", "i": "integer",
        "s": "string", "two": None, "a": "array", "free": None, "missing": None,
    }  # fmt: skip


# -- Parquet sources --------------------------------------------------------------------------


def _write_parquet(path: Path) -> None:
    when = dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)
    point = shapely.to_wkb(shapely.Point(1, 2), flavor="iso")
    table = pa.table(
        {
            "type": ["Feature", "Feature"], "stac_version": ["1.1.0", "1.1.0"],
            "stac_extensions": [[EO_1_1], []], "id": ["a", "b"],
            "geometry": pa.array([point, point], pa.binary()),
            "datetime": pa.array([when, when], pa.timestamp("us", tz="UTC")),
            "eo:cloud_cover": [10.5, 20.0], "gsd": pa.array([10, 20], pa.int32()),
            "my:tags": [["a"], ["b", "c"]],
        }
    )  # fmt: skip
    pq.write_table(table, path)


def test_a_plain_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    _write_parquet(path)
    q = dafab_static.queryables(str(path))
    assert q["title"] == f"Queryables of {path}"
    assert q["properties"] == {
        "id": {"title": "Item ID", "description": "The item's identifier", "type": "string"},
        "collection": {"title": "Collection ID",
                       "description": "The ID of the STAC Collection this Item references to.",
                       "type": "string"},
        "geometry": {"title": "Geometry", "$ref": GEOMETRY_REF},
        "datetime": {"title": "Date and Time",
                     "description": "The searchable date/time of the data, in UTC "
                     "(Formatted in RFC 3339)", "type": "string", "format": "date-time"},
        "eo:cloud_cover": {"title": "Cloud Cover", "type": "number", "minimum": 0, "maximum": 100},
        "gsd": {"title": "Ground Sample Distance", "type": "integer", "exclusiveMinimum": 0},
        "my:tags": {"type": "array", "items": {"type": "string"}},
    }  # fmt: skip
    folder = dafab_static.queryables(str(tmp_path))  # a folder of Parquet, no catalog.json
    assert folder["properties"] == q["properties"]


def test_real_sentinel_2_parquet(shared_data: Path) -> None:
    path = shared_data / "stac-items" / "pc-sentinel-2-l2a-1000.parquet"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    q = dafab_static.queryables(str(path))
    props = q["properties"]
    assert props["eo:cloud_cover"] == {
        "title": "Cloud Cover", "type": "number", "minimum": 0, "maximum": 100,
    }  # fmt: skip
    assert props["sat:orbit_state"]["enum"] == ["ascending", "descending", "geostationary"]
    assert props["s2:mgrs_tile"] == {"type": "string"}
    assert props["s2:vegetation_percentage"] == {"type": "number"}
    assert property_type(q, "datetime") == "timestamp"
    assert property_type(q, "proj:epsg") == "integer"
    assert len(props) == 36  # 33 property columns, plus id, collection and geometry


def test_errors_name_the_source(sample: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match=f"^{missing}: no such file or folder$"):
        dafab_static.queryables(str(missing))
    with pytest.raises(
        InputError,
        match=rf"^{sample}: no collection 'nope' \(collections: {', '.join(IDS)}\)$",
    ):
        dafab_static.queryables(str(sample), collection="nope")
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=f"^{fake}: not a Parquet file"):
        dafab_static.queryables(str(fake))
    with pytest.raises(dafab_static.StorageError, match="no such file"):
        dafab_static.queryables(str(tmp_path / "gone.parquet"))


def test_parquet_files_that_type_one_field_differently(tmp_path: Path) -> None:
    # Both are valid STAC (raster nodata 0 or "nan"); one queryables schema cannot say both.
    for name, nodata in (("a", 0), ("b", "nan")):
        bands = pa.array([[{"nodata": nodata}]])
        pq.write_table(pa.table({"id": [name], "bands": bands}), tmp_path / f"{name}.parquet")
    with pytest.raises(InputError, match=rf"^{tmp_path}: its Parquet files have incompatible "
                       r"schemas \(field 'bands\[\]\.nodata' is int64 in one file"):  # fmt: skip
        dafab_static.queryables(str(tmp_path))


def test_s3_catalog_and_index(s3_bucket: str, sample: Path) -> None:
    dest = f"s3://{s3_bucket}/stac"
    dafab_static.build([], dest, sample=True)
    root = json.loads(dafab_static.open_store(dest).get("catalog.json"))
    href = link(root, REL)["href"]  # inside the release: published atomically with it
    assert href.startswith("releases/") and href.endswith("/queryables.json")
    assert dafab_static.queryables(dest) == dafab_static.queryables(str(sample))
    s2 = dafab_static.queryables(dest, collection=S2)
    assert s2 == dafab_static.queryables(str(sample), collection=S2)
    folder = f"s3://{s3_bucket}/stac/{href.rsplit('/', 1)[0]}/index/{S2}"
    from_index = dafab_static.queryables(folder, collection=S2)  # a bare Parquet folder
    # the files embed only id, title, description, licence: no summaries, so no enums
    assert from_index["properties"]["eo:cloud_cover"] == {
        "title": "Cloud Cover", "type": "number", "minimum": 0, "maximum": 100,
    }  # fmt: skip
    assert set(from_index["properties"]) == set(s2["properties"])


def test_merge_keeps_a_shared_ref_and_drops_a_one_sided_type() -> None:
    a = _doc(geometry={"title": "Geometry", "$ref": GEOMETRY_REF}, free={"type": "string"})
    b = _doc(geometry={"title": "Footprint", "$ref": GEOMETRY_REF}, free={"description": "any"})
    props = merge_queryables([a, b])["properties"]
    assert props["geometry"] == {"title": "Geometry", "$ref": GEOMETRY_REF}
    assert props["free"] == {"description": "any"}
