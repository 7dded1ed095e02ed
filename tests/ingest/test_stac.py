"""Reading other hubs' STAC: real hub files, the spec's example catalogs, generated edge cases."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pystac
import pytest
from stac_geoparquet.arrow import parse_stac_items_to_arrow, stac_table_to_items, to_parquet

from dafab_static.errors import InputError, StorageError
from dafab_static.ingest import stac
from dafab_static.ingest.stac import Record

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT.parent / "shared" / "data" / "stac-items"
# Written out rather than imported, so a change to the module's set fails here.
STRUCTURAL = {"self", "root", "parent", "collection", "child", "item", "items"}
SAMPLES = [
    "3dep-lidar-copc-pc",
    "3dep-lidar-dsm-pc",
    "cop-dem-glo-30-pc",
    "io-lulc-annual-v02-pc",
    "io-lulc-pc",
    "landsat-c2-l1-pc",
    "landsat-c2-l2-pc",
    "naip-pc",
    "planet-nicfi-analytic-pc",
    "sentinel-1-rtc-pc",
    "sentinel-2-l2a-pc",
    "umbra-sar",
    "us-census-pc",
]


def shared(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"shared test data {path} is not here")
    return path


def collect(source: Path | str) -> tuple[list[Record], list[str], list[str]]:
    errors: list[str] = []
    notices: list[str] = []

    def on_error(error: InputError) -> None:
        errors.append(str(error))

    records = list(stac.read(str(source), on_error=on_error, on_notice=notices.append))
    return records, errors, notices


def item(item_id: str, **extra: Any) -> dict[str, Any]:
    """A small valid STAC 1.1.0 item."""
    data: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "geometry": {"type": "Point", "coordinates": [10.0, 50.0]},
        "bbox": [10.0, 50.0, 10.0, 50.0],
        "properties": {"datetime": "2024-05-01T10:00:00Z"},
        "links": [],
        "assets": {},
    }
    data.update(extra)
    return data


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def via(href: str, media: str = "application/geo+json") -> dict[str, str]:
    return {"rel": "via", "href": href, "type": media, "title": "Source"}


# -- real hub data -----------------------------------------------------------------------------


def test_ndjson_naip_1000() -> None:
    path = shared("pc-naip-1000.ndjson")
    records, errors, notices = collect(path)
    ids = [r.data["id"] for r in records]
    assert (errors, notices) == ([], [])
    assert len(records) == 1000
    assert len(set(ids)) == 1000
    assert ids[0] == "al_m_3008501_ne_16_030_20211103"
    assert ids[1] == "al_m_3008501_ne_16_060_20191109_20200114"
    assert ids[499] == "al_m_3008718_nw_16_060_20230528_20231018"
    assert ids[-1] == "al_m_3008751_ne_16_1_20150827_20151123"
    assert {r.kind for r in records} == {"item"}
    assert {r.data["collection"] for r in records} == {"naip"}
    first = records[0]
    assert first.source == f"{path}:1"
    assert records[-1].source == f"{path}:1000"
    self_href = (
        "https://planetarycomputer.microsoft.com/api/stac/v1/collections/naip/items/"
        "al_m_3008501_ne_16_030_20211103"
    )
    assert [link["rel"] for link in first.data["links"]] == ["preview", "via"]
    assert first.data["links"][-1] == via(self_href)
    assert first.data["stac_extensions"] == [
        "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
    ]


def expected_links(data: dict[str, Any]) -> list[dict[str, Any]]:
    kept = [
        {key: value for key, value in link.items() if value is not None}
        for link in data["links"]
        if link["rel"] not in STRUCTURAL
    ]
    self_href = next(link["href"] for link in data["links"] if link["rel"] == "self")
    return [*kept, via(self_href)]


@pytest.mark.parametrize(
    ("name", "count"),
    [("pc-sentinel-2-l2a-1000.parquet", 1000), ("pc-landsat-c2-l2-100.parquet", 100)],
)
def test_parquet_round_trip(name: str, count: int) -> None:
    path = shared(name)
    expected = list(stac_table_to_items(pq.read_table(path)))
    records, errors, notices = collect(path)
    assert (errors, notices) == ([], [])
    assert len(records) == len(expected) == count
    assert [r.source for r in records[:2]] == [f"{path}#0", f"{path}#1"]
    for record, want in zip(records, expected, strict=True):
        assert record.kind == "item"
        # nulls that only pad the columns (a property this row never had) are dropped
        props = {k: v for k, v in want["properties"].items() if v is not None or k == "datetime"}
        assert record.data == {**want, "properties": props, "links": expected_links(want)}


def test_parquet_naip_10000() -> None:
    records, errors, _ = collect(shared("pc-naip-10000.parquet"))
    ids = [r.data["id"] for r in records]
    assert errors == []
    assert len(ids) == len(set(ids)) == 10000
    assert ids[0] == "ne_m_4110264_sw_13_060_20220827"
    assert ids[1] == "ne_m_4110263_sw_13_060_20220820"


def test_parquet_pandas_era() -> None:
    path = shared("stac-geoparquet-samples/naip.parquet")
    table = pq.read_table(path)
    records, errors, _ = collect(path)
    assert errors == []
    assert [r.data["id"] for r in records] == table.column("id").to_pylist()
    assert len(records) == 5
    assert records[0].data["bbox"] == [-100.004084, 34.934259, -99.933454, 35.00323]
    assert records[0].data["properties"]["datetime"] == "2010-04-25T00:00:00.000000Z"


@pytest.mark.parametrize("name", SAMPLES)
def test_geoparquet_sample_json(name: str) -> None:
    """The samples are JSON arrays of Features (not FeatureCollections)."""
    path = shared(f"stac-geoparquet-samples/{name}.json")
    raw = json.loads(path.read_text())
    manifest = {e["dest"]: e for e in json.loads(shared("MANIFEST.json").read_text())}
    entry = manifest[f"shared/data/stac-items/stac-geoparquet-samples/{name}.json"]
    records, errors, notices = collect(path)
    assert errors == []
    # Sentinel-1 RTC's start/end_datetime read '2024-04-19 04:58:39.219741+00:00'.
    respelled = ["rewritten as the same instants"] if name == "sentinel-1-rtc-pc" else []
    assert [n[n.index("rewritten") : n.index(" (", n.index("rewritten"))] for n in notices] == (
        respelled
    )
    assert len(records) == entry["items"]
    assert [r.data["id"] for r in records] == [f["id"] for f in raw]
    collections: dict[str, int] = {}
    for r in records:
        collections[r.data["collection"]] = collections.get(r.data["collection"], 0) + 1
    assert collections == entry["collections"]
    assert [r.source for r in records] == [f"{path}#/{i}" for i in range(len(raw))]


def test_standalone_collection_json() -> None:
    path = shared("stac-geoparquet-samples/3dep-lidar-copc-pc-collection.json")
    records, errors, _ = collect(path)
    assert errors == []
    assert [(r.kind, r.data["id"], r.source) for r in records] == [
        ("collection", "3dep-lidar-copc", str(path))
    ]
    assert not {link["rel"] for link in records[0].data["links"]} & STRUCTURAL


@pytest.mark.parametrize("version", ["v1.0.0", "v1.1.0"])
def test_spec_examples_catalog_crawl(version: str) -> None:
    root = shared(f"stac-spec-examples/{version}")
    records, errors, notices = collect(root / "catalog.json")
    # The spec's own proj-example names a collection other than the one listing it.
    assert errors == [] and [n.split(": ", 1)[1] for n in notices] == [
        "item 'proj-example' says collection 'landsat-8-l1' but is listed by collection "
        "'extensions-collection'; it goes to 'landsat-8-l1'"
    ]
    assert [(r.kind, r.data["id"], r.source) for r in records] == [
        (
            "collection",
            "extensions-collection",
            str(root / "extensions-collection/collection.json"),
        ),
        (
            "item",
            "proj-example",
            str(root / "extensions-collection/proj-example/proj-example.json"),
        ),
        ("collection", "sentinel-2", str(root / "collection-only/collection.json")),
        ("collection", "sentinel-2", str(root / "collection-only/collection-with-schemas.json")),
        ("item", "CS3-20160503_132131_08", str(root / "collectionless-item.json")),
    ]
    proj, collectionless = records[1].data, records[4].data
    assert proj["collection"] == "landsat-8-l1"  # kept as written, though its parent differs
    assert "collection" not in collectionless
    assert proj["links"] == [via(records[1].source)]
    assert [link["rel"] for link in collectionless["links"]] == ["alternate", "license", "via"]
    assert [link["rel"] for link in records[0].data["links"]] == ["license", "via"]
    assert records[0].data["links"][-1] == via(records[0].source, "application/json")


def test_spec_examples_collection_crawl() -> None:
    root = shared("stac-spec-examples/v1.1.0")
    records, errors, _ = collect(root / "collection.json")
    assert errors == []
    assert [(r.kind, r.data["id"], Path(r.source).name) for r in records] == [
        ("collection", "simple-collection", "collection.json"),
        ("item", "20201211_223832_CS2", "simple-item.json"),
        ("item", "20201211_223832_CS2", "core-item.json"),
        ("item", "20201211_223832_CS2", "extended-item.json"),
    ]
    assert {r.data.get("collection") for r in records[1:]} == {"simple-collection"}


# -- generated edge cases ----------------------------------------------------------------------


def test_ndjson_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "items.ndjson"
    lines = [json.dumps(item("a")), "{not json", json.dumps(item("b")), "", "[1, 2]"]
    path.write_text("\n".join([*lines, json.dumps(item("c"))]) + "\n")
    records, errors, _ = collect(path)
    assert [r.data["id"] for r in records] == ["a", "b", "c"]
    assert [r.source for r in records] == [f"{path}:1", f"{path}:3", f"{path}:6"]
    assert len(errors) == 2
    assert errors[0].startswith(f"{path}:2: invalid JSON: ")
    assert errors[1] == f"{path}:5: not a STAC item: type 'list', expected 'Feature'"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"foo": 1}, "not STAC: no 'type' field"),
        (
            {"type": "Point", "coordinates": [0, 0]},
            "not STAC: type 'Point' is not Feature, FeatureCollection, Catalog or Collection",
        ),
        ([1], "not STAC: a JSON array of 1 value, no Feature"),
        ([{"name": "a"}, {"name": "b"}], "not STAC: a JSON array of 2 values, no Feature"),
        ("text", "not STAC: a JSON str, not an object"),
        (
            {"type": "Feature", "geometry": None, "properties": {}},
            "not a STAC item: no 'stac_version', 'id'",
        ),
        (item("x", stac_version="one"), "item x: stac_version 'one' is not a version"),
    ],
)
def test_non_stac_json(tmp_path: Path, doc: Any, message: str) -> None:
    path = write(tmp_path / "thing.json", doc)
    records, errors, _ = collect(path)
    assert records == []
    assert errors == [f"{path}: {message}"]


def test_array_reports_each_bad_member_beside_features(tmp_path: Path) -> None:
    """An array holding Features is read as items: each bad member is its own error."""
    path = write(tmp_path / "items.json", [item("a"), 1, {"type": "Point"}])
    records, errors, _ = collect(path)
    assert [r.data["id"] for r in records] == ["a"]
    assert errors == [
        f"{path}#/1: not a STAC item: type 'int', expected 'Feature'",
        f"{path}#/2: not a STAC item: type 'Point', expected 'Feature'",
    ]


def test_invalid_json_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"type": "Feature",')
    records, errors, _ = collect(path)
    assert records == []
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}: invalid JSON: ")


def test_datetime_rule(tmp_path: Path) -> None:
    ranged = {"datetime": None, "start_datetime": "2020-01-01T00:00:00Z"}
    ranged["end_datetime"] = "2020-12-31T00:00:00Z"
    features = [
        item("none", properties={"datetime": None}),
        item("half", properties={"datetime": None, "start_datetime": "2020-01-01T00:00:00Z"}),
        item("range", properties=ranged),
    ]
    path = write(tmp_path / "fc.json", {"type": "FeatureCollection", "features": features})
    records, errors, _ = collect(path)
    assert [r.data["id"] for r in records] == ["range"]
    assert records[0].source == f"{path}#/features/2"
    rule = "has no datetime (STAC needs 'datetime', or 'start_datetime' and 'end_datetime')"
    assert errors == [
        f"{path}#/features/0: item none {rule}",
        f"{path}#/features/1: item half {rule}",
    ]


def test_stac_0_9_item_is_migrated(tmp_path: Path) -> None:
    old = item("old-1", stac_version="0.9.0", stac_extensions=["eo"])
    old["properties"]["eo:bands"] = [{"name": "b1"}]
    old["assets"] = {"a": {"href": "./a.tif", "eo:bands": [0]}}
    path = write(tmp_path / "old.json", old)
    records, errors, notices = collect(path)
    latest = pystac.get_stac_version()
    assert errors == []
    assert notices == [f"{path}: item old-1 migrated from STAC 0.9.0 to {latest}"]
    data = records[0].data
    assert data["stac_version"] == latest
    assert data["stac_extensions"] == ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"]
    assert data["assets"]["a"] == {"href": str(tmp_path / "a.tif"), "eo:bands": [{"name": "b1"}]}


def test_failed_migration_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "old.json", item("bad", stac_version="0.9.0", stac_extensions=[3]))
    records, errors, notices = collect(path)
    assert (records, notices) == ([], [])
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}: item bad: cannot migrate from STAC 0.9.0: ")


def test_newer_stac_is_kept_with_a_notice(tmp_path: Path) -> None:
    path = write(tmp_path / "new.json", item("n", stac_version="1.2.0"))
    records, _, notices = collect(path)
    assert records[0].data["stac_version"] == "1.2.0"
    assert notices == [f"{path}: item n is STAC 1.2.0, newer than 1.1; read as is"]


@pytest.mark.parametrize(
    "href",
    ["gs://bucket/a.tif", "abfs://us-census/2020/blocks.parquet", "az://c/a.tif",
     "ftp://host/a.tif", "dbfs:/mnt/a.tif", "urn:example:a", "s3://b/a.tif"],
)  # fmt: skip
def test_absolute_uris_of_any_scheme_are_kept(tmp_path: Path, href: str) -> None:
    """The Planetary Computer publishes abfs:// assets: an absolute URI is never read as a
    path relative to the item (which made abfs://us-census/2020/x '/2020/x')."""
    assets = {"data": {"href": href, "roles": ["data"]}}
    links = [{"rel": "derived_from", "href": href}]
    path = write(tmp_path / "sub" / "item.json", item("uri", links=links, assets=assets))
    records, errors, _ = collect(path)
    assert errors == []
    assert records[0].data["assets"]["data"]["href"] == href
    assert records[0].data["links"][0] == {"rel": "derived_from", "href": href}


def test_relative_hrefs_become_absolute(tmp_path: Path) -> None:
    links = [
        {"rel": "self", "href": "./item.json"},
        {"rel": "parent", "href": "../catalog.json"},
        {"rel": "license", "href": "../LICENSE", "type": None},
        {"rel": "derived_from", "href": "https://hub.example/items/src"},
    ]
    assets = {
        "data": {"href": "./data/a.tif", "roles": ["data"]},
        "thumb": {"href": "../thumbs/a.png"},
        "remote": {"href": "https://hub.example/a.tif"},
    }
    path = write(tmp_path / "sub" / "item.json", item("rel", links=links, assets=assets))
    records, errors, _ = collect(path)
    assert errors == []
    data = records[0].data
    assert {key: a["href"] for key, a in data["assets"].items()} == {
        "data": str(tmp_path / "sub" / "data" / "a.tif"),
        "thumb": str(tmp_path / "thumbs" / "a.png"),
        "remote": "https://hub.example/a.tif",
    }
    assert data["links"] == [
        {"rel": "license", "href": str(tmp_path / "LICENSE")},
        {"rel": "derived_from", "href": "https://hub.example/items/src"},
        via(str(path)),  # the self href was relative: the file is the provenance
    ]


def test_via_link_added_once(tmp_path: Path) -> None:
    self_href = "https://hub.example/collections/c/items/v"
    links = [
        {"rel": "self", "href": self_href},
        {"rel": "via", "href": self_href, "title": "Original"},
    ]
    other = item("w", links=[{"rel": "self", "href": "https://hub.example/w"}])
    path = write(tmp_path / "two.json", [item("v", links=links), other])
    records, _, _ = collect(path)
    assert records[0].data["links"] == [{"rel": "via", "href": self_href, "title": "Original"}]
    assert records[1].data["links"] == [via("https://hub.example/w")]


def test_catalog_cycle_is_noticed_and_items_read_once(tmp_path: Path) -> None:
    def catalog(cat_id: str, links: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "type": "Catalog",
            "stac_version": "1.1.0",
            "id": cat_id,
            "description": "d",
            "links": links,
        }

    root = write(
        tmp_path / "catalog.json", catalog("root", [{"rel": "child", "href": "./sub/catalog.json"}])
    )
    sub_links = [
        {"rel": "child", "href": "../catalog.json"},
        {"rel": "child", "href": "./catalog.json"},
        {"rel": "item", "href": "./a/a.json"},
        {"rel": "item", "href": "a/a.json"},
        {"rel": "item", "href": "./missing.json"},
    ]
    sub = write(tmp_path / "sub" / "catalog.json", catalog("sub", sub_links))
    write(tmp_path / "sub" / "a" / "a.json", item("a"))
    records, errors, notices = collect(root)
    assert [(r.data["id"], r.source) for r in records] == [("a", str(tmp_path / "sub/a/a.json"))]
    assert notices == [
        f"{sub}: child link to {root} is a cycle; not followed",
        f"{sub}: child link to {sub} is a cycle; not followed",
    ]
    assert errors == [f"{tmp_path / 'sub/missing.json'}: no such file (linked from {sub})"]


def test_collection_id_given_to_items_without_one(tmp_path: Path) -> None:
    links = [{"rel": "item", "href": "./a.json"}, {"rel": "item", "href": "./b.json"}]
    coll = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "mine",
        "description": "d",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}},
        "links": links,
    }
    path = write(tmp_path / "collection.json", coll)
    write(tmp_path / "a.json", item("a"))
    write(tmp_path / "b.json", item("b", collection="theirs"))
    records, errors, _ = collect(path)
    assert errors == []
    assert [(r.kind, r.data["id"], r.data.get("collection")) for r in records] == [
        ("collection", "mine", None),
        ("item", "a", "mine"),
        ("item", "b", "theirs"),
    ]


def test_pre_1_0_catalog_without_type(tmp_path: Path) -> None:
    old = {"stac_version": "0.8.0", "id": "old", "description": "d"}
    path = write(tmp_path / "catalog.json", {**old, "links": [{"rel": "item", "href": "./i.json"}]})
    write(tmp_path / "i.json", item("i"))
    records, errors, _ = collect(path)
    assert errors == []
    assert [r.data["id"] for r in records] == ["i"]


def test_item_collection_next_link_is_not_followed(tmp_path: Path) -> None:
    page = {
        "type": "FeatureCollection",
        "features": [item("p1"), item("p2")],
        "links": [{"rel": "next", "href": "./page2.json"}],
    }
    records, errors, _ = collect(write(tmp_path / "page.json", page))
    assert errors == []
    assert [r.data["id"] for r in records] == ["p1", "p2"]


def test_strict_on_error_stops_at_the_first_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "items.ndjson"
    path.write_text("\n".join([json.dumps(item("a")), "{", "{", json.dumps(item("b"))]) + "\n")
    calls: list[InputError] = []

    def strict(error: InputError) -> None:
        calls.append(error)
        raise error

    seen: list[str] = []
    with pytest.raises(InputError, match=r":2: invalid JSON"):
        for record in stac.read(str(path), on_error=strict, on_notice=print):
            seen.append(record.data["id"])
    assert seen == ["a"]
    assert len(calls) == 1


def test_unsupported_scheme(tmp_path: Path) -> None:
    records, errors, _ = collect("s3://bucket/items.json")
    assert records == []
    assert errors == ["s3://bucket/items.json: only local files and http(s) URLs can be read"]


# -- over HTTP ---------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served by http.server on 127.0.0.1, and its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_catalog_over_http(served: tuple[Path, str]) -> None:
    www, base = served
    shutil.copytree(shared("stac-spec-examples/v1.1.0"), www / "examples")
    records, errors, _ = collect(f"{base}/examples/catalog.json")
    assert errors == []
    assert [(r.kind, r.data["id"], r.source) for r in records] == [
        (
            "collection",
            "extensions-collection",
            f"{base}/examples/extensions-collection/collection.json",
        ),
        (
            "item",
            "proj-example",
            f"{base}/examples/extensions-collection/proj-example/proj-example.json",
        ),
        ("collection", "sentinel-2", f"{base}/examples/collection-only/collection.json"),
        (
            "collection",
            "sentinel-2",
            f"{base}/examples/collection-only/collection-with-schemas.json",
        ),
        ("item", "CS3-20160503_132131_08", f"{base}/examples/collectionless-item.json"),
    ]
    assert records[1].data["links"] == [via(records[1].source)]


def test_relative_hrefs_over_http(served: tuple[Path, str]) -> None:
    www, base = served
    assets = {"data": {"href": "../cogs/a.tif"}}
    write(www / "items" / "a.json", item("a", assets=assets))
    records, _, _ = collect(f"{base}/items/a.json")
    assert records[0].data["assets"]["data"]["href"] == f"{base}/cogs/a.tif"


def test_ndjson_and_parquet_over_http(served: tuple[Path, str]) -> None:
    www, base = served
    items = [item(f"i{n}", assets={"d": {"href": f"./i{n}.tif"}}) for n in range(3)]
    (www / "items.ndjson").write_text("".join(json.dumps(i) + "\n" for i in items))
    to_parquet(parse_stac_items_to_arrow(items), www / "items.parquet")
    for name, media in [
        ("items.ndjson", "application/x-ndjson"),
        ("items.parquet", "application/vnd.apache.parquet"),
    ]:
        records, errors, _ = collect(f"{base}/{name}")
        assert errors == []
        assert [r.data["id"] for r in records] == ["i0", "i1", "i2"]
        assert records[2].data["assets"]["d"]["href"] == f"{base}/i2.tif"
        assert records[2].data["links"] == [via(f"{base}/{name}", media)]


def test_http_404_is_an_input_error(served: tuple[Path, str]) -> None:
    _, base = served
    for name in ("missing.json", "missing.ndjson", "missing.parquet"):
        records, errors, _ = collect(f"{base}/{name}")
        assert records == []
        assert errors == [f"{base}/{name}: HTTP 404 File not found"]


@pytest.fixture
def refused_url() -> str:
    """A URL on a port that nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/catalog.json"


def test_unreachable_url_is_one_line_storage_error(refused_url: str) -> None:
    with pytest.raises(StorageError) as caught:
        collect(refused_url)
    message = str(caught.value)
    assert message.startswith(f"{refused_url}: cannot reach: ")
    assert "Connection refused" in message
    assert "\n" not in message


def test_parquet_that_is_not_stac_geoparquet(tmp_path: Path) -> None:
    import pyarrow as pa

    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), plain)
    for path in (garbage, plain, tmp_path / "absent.parquet"):
        records, errors, _ = collect(path)
        assert records == []
        assert len(errors) == 1
    assert collect(garbage)[1][0].startswith(f"{garbage}#0: not stac-geoparquet: ")
    assert collect(plain)[1] == [
        f"{plain}#0: not stac-geoparquet: no 'id', 'geometry', 'bbox' column"
    ]
    assert collect(tmp_path / "absent.parquet")[1] == [
        f"{tmp_path / 'absent.parquet'}: no such file"
    ]


def test_parquet_column_padding_nulls_are_dropped(tmp_path: Path) -> None:
    from stac_geoparquet.arrow import parse_stac_items_to_parquet

    a = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": "a",
        "geometry": {"type": "Point", "coordinates": [1, 2]},
        "bbox": [1, 2, 1, 2],
        "properties": {"datetime": "2024-01-01T00:00:00Z", "only_a": 1},
        "links": [],
        "assets": {},
    }
    b = {**a, "id": "b", "properties": {"datetime": "2024-01-02T00:00:00Z", "only_b": "x"}}
    path = tmp_path / "two.parquet"
    parse_stac_items_to_parquet([a, b], output_path=path)
    records, errors, _ = collect(str(path))
    assert errors == []
    assert [r.data["properties"] for r in records] == [
        {"datetime": "2024-01-01T00:00:00.000000Z", "only_a": 1},
        {"datetime": "2024-01-02T00:00:00.000000Z", "only_b": "x"},
    ]


def test_timestamps_not_in_rfc3339_utc_are_respelled_once_noticed(tmp_path: Path) -> None:
    """The Planetary Computer's Sentinel-1 RTC items write Python's str() of a datetime; an
    exact instant in another spelling becomes RFC 3339 UTC (one notice per source); what is
    not an exact instant is left for validation to report."""
    spaced = {"datetime": None, "start_datetime": "2024-04-19 04:58:39.219741+00:00",
              "end_datetime": "2024-04-19 04:59:04.218466+00:00"}  # fmt: skip
    features = [
        item("spaced", properties=spaced),
        item("offset", properties={"datetime": "2024-04-19T06:58:39+02:00", "created": "x"}),
        item("lower", properties={"datetime": "2024-04-19T04:58:39z"}),
        item("fine", properties={"datetime": "2024-04-19T04:58:39.5Z"}),
        item("nano", properties={"datetime": "2024-04-19T04:58:39.123456789Z"}),
        item("date", properties={"datetime": "2024-04-19"}),
        item("local", properties={"datetime": "2024-04-19T04:58:39"}),
    ]
    path = write(tmp_path / "fc.json", {"type": "FeatureCollection", "features": features})
    records, errors, notices = collect(path)
    props = {r.data["id"]: r.data["properties"] for r in records}
    assert props["spaced"]["start_datetime"] == "2024-04-19T04:58:39.219741Z"
    assert props["spaced"]["end_datetime"] == "2024-04-19T04:59:04.218466Z"
    assert props["offset"] == {"datetime": "2024-04-19T04:58:39Z", "created": "x"}
    assert props["lower"]["datetime"] == "2024-04-19T04:58:39Z"
    assert props["fine"]["datetime"] == "2024-04-19T04:58:39.5Z"
    assert props["nano"]["datetime"] == "2024-04-19T04:58:39.123456Z"  # what the index holds
    assert props["date"]["datetime"] == "2024-04-19"
    assert props["local"]["datetime"] == "2024-04-19T04:58:39"
    assert errors == []
    assert notices == [
        f"{path}: 4 item(s) with timestamps spelled otherwise than as STAC's schema and the "
        "index hold them (RFC 3339 in UTC with 'Z', to the microsecond; e.g. "
        "'2024-04-19 04:58:39.219741+00:00') rewritten as the same instants "
        "('2024-04-19T04:58:39.219741Z')"
    ]


def test_timestamps_extension_fields_must_be_instants(tmp_path: Path) -> None:
    """stac-geoparquet stores expires/published/unpublished as timestamps, declared
    extension or not: a date alone stopped the whole build (a "different types" error);
    now that item is skipped with a message naming the field, and an offset is respelled."""
    import dafab_static

    features = [
        item("dated", properties={"datetime": "2024-04-19T00:00:00Z", "published": "2024-07-11"}),
        item("offset", properties={"datetime": "2024-04-19T00:00:00Z",
                                   "expires": "2030-01-01T02:00:00+02:00"}),
        item("plain", properties={"datetime": "2024-04-20T00:00:00Z"}),
        item("number", properties={"datetime": "2024-04-20T00:00:00Z", "unpublished": 5}),
    ]  # fmt: skip
    path = write(tmp_path / "fc.json", {"type": "FeatureCollection", "features": features})
    records, errors, _ = collect(path)
    assert [r.data["id"] for r in records] == ["offset", "plain"]
    assert records[0].data["properties"]["expires"] == "2030-01-01T00:00:00Z"
    why = ("is not an RFC 3339 date-time with an offset (the timestamps extension's fields "
           "are instants, and the index stores them as timestamps)")  # fmt: skip
    assert [str(e) for e in errors] == [
        f"{path}#/features/0: item dated: published '2024-07-11' {why}",
        f"{path}#/features/3: item number: unpublished 5 {why}",
    ]
    report = dafab_static.build([path], str(tmp_path / "cat"))
    assert report.items == 2 and len(report.skipped) == 2
    (parquet,) = (tmp_path / "cat" / "index").rglob("*.parquet")
    assert str(pq.read_schema(parquet).field("expires").type) == "timestamp[us, tz=UTC]"


def test_real_sentinel1_rtc_items_build(shared_data: Path, tmp_path: Path) -> None:
    import dafab_static

    source = shared_data / "stac-items" / "stac-geoparquet-samples" / "sentinel-1-rtc-pc.json"
    report = dafab_static.build([str(source)], str(tmp_path / "cat"))
    assert report.ok, report.summary()
    assert report.collections == {"sentinel-1-rtc": 4}
    assert len(report.warnings) == 1 and "rewritten as the same instants" in report.warnings[0]
    assert dafab_static.validate(str(tmp_path / "cat")).ok


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("links", 3, "'links' is not an array of link objects"),
        ("links", ["x"], "'links' is not an array of link objects"),
        ("assets", [], "'assets' is not an object of asset objects"),
        ("assets", {"data": "x.tif"}, "'assets' is not an object of asset objects"),
        ("stac_extensions", [["a"]], "'stac_extensions' is not an array of schema URLs"),
    ],
)
def test_malformed_structure_is_one_line(
    tmp_path: Path, member: str, value: Any, message: str
) -> None:
    """Found by fuzzing the build: these reached deep code as TypeErrors."""
    path = write(tmp_path / "item.json", item("bent", **{member: value}))
    records, errors, _ = collect(path)
    assert records == []
    assert errors == [f"{path}: item bent: {message}"]


def test_a_null_an_extension_requires_survives_stac_geoparquet(tmp_path: Path) -> None:
    """Projection v1.0.0 requires proj:epsg, null allowed (3DEP items carry null): read from
    stac-geoparquet, that null was dropped with the padding, and the build skipped them."""
    import dafab_static

    projection = "https://stac-extensions.github.io/projection/v1.0.0/schema.json"
    kept = item("no-epsg", properties={"datetime": "2024-01-01T00:00:00Z", "proj:epsg": None})
    kept["stac_extensions"] = [projection]
    other = item("with-epsg", properties={"datetime": "2024-01-01T00:00:00Z", "proj:epsg": 32632})
    other["stac_extensions"] = [projection]
    plain = item("plain", properties={"datetime": "2024-01-01T00:00:00Z"})
    path = tmp_path / "items.parquet"
    to_parquet(parse_stac_items_to_arrow([kept, other, plain]), path)
    records, errors, _ = collect(str(path))
    props = {r.data["id"]: r.data["properties"] for r in records}
    assert errors == []
    assert props["no-epsg"]["proj:epsg"] is None and props["with-epsg"]["proj:epsg"] == 32632
    assert "proj:epsg" not in props["plain"]  # padding, not the item's: dropped
    report = dafab_static.build([str(path)], str(tmp_path / "cat"))
    assert report.ok and report.items == 3, report.summary()


def test_a_stac_0_9_collection_without_type_is_migrated_and_crawled(tmp_path: Path) -> None:
    """STAC 0.9 Collections had no ``type``. Given one for the crawl, pystac refused to
    migrate the document, with a traceback out of the build."""
    old_item = item("old-09", stac_version="0.9.0", stac_extensions=[])
    write(tmp_path / "item.json", old_item)
    collection = {
        "stac_version": "0.9.0", "stac_extensions": [], "id": "old-col",
        "description": "old", "license": "proprietary",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2019-01-01T00:00:00Z", None]]}},
        "links": [{"rel": "item", "href": "./item.json"}],
    }  # fmt: skip
    path = write(tmp_path / "collection.json", collection)
    records, errors, notices = collect(str(path))
    assert errors == []
    assert [(r.kind, r.data["id"], r.data["stac_version"]) for r in records] == [
        ("collection", "old-col", "1.1.0"), ("item", "old-09", "1.1.0")]  # fmt: skip
    assert records[0].data["type"] == "Collection"
    assert "collection old-col migrated from STAC 0.9.0 to 1.1.0" in " ".join(notices)


def test_a_link_with_a_space_is_followed_over_http(served: tuple[Path, str]) -> None:
    """pystac writes the link to item ``scene A`` as ``./scene A/scene A.json``: over HTTP
    that aborted the whole build ("URL can't contain control characters")."""
    www, base = served
    write(www / "scene A" / "scene A.json", item("scene A"))
    write(www / "b" / "b.json", item("b"))
    write(www / "catalog.json", {
        "type": "Catalog", "stac_version": "1.1.0", "id": "c", "description": "d",
        "links": [{"rel": "item", "href": "./scene A/scene A.json"},
                  {"rel": "item", "href": "./b/b.json"},
                  {"rel": "item", "href": "./bad\x01name.json"}],
    })  # fmt: skip
    records, errors, _ = collect(f"{base}/catalog.json")
    assert [r.data["id"] for r in records] == ["scene A", "b"]
    assert len(errors) == 1 and "bad\x01name.json: HTTP 404" in errors[0]  # skipped, named
