"""The source dispatcher: files, folders, globs and URLs; rasters in a pool, STAC by content."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dafab_static.errors import InputError, OptionError
from dafab_static.ingest import Record, iter_records

RASTERS = "dafab_static.ingest.rasters"
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT.parent / "shared" / "data" / "stac-items"
STAC = "(.json, .geojson, .ndjson, .jsonl, .geojsonl, .parquet, .geoparquet)"


def item(item_id: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "geometry": {"type": "Point", "coordinates": [10.0, 50.0]},
        "properties": {"datetime": "2024-05-01T10:00:00Z"},
        "links": [],
        "assets": {},
    }
    data.update(extra)
    return data


class FakeRasters:
    """Stands in for ``rasters.read_raster``: an item named after the file, or an InputError.

    Files named ``bad*`` fail; ``delays`` makes chosen files slow, to shuffle completion order.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dt.datetime | None]] = []
        self.delays: dict[str, float] = {}
        self.threads: set[str] = set()
        self.groups: list[list[str]] = []
        self._lock = threading.Lock()

    def read_raster(self, path: str, *, datetime: dt.datetime | None = None) -> dict[str, Any]:
        with self._lock:
            self.calls.append((path, datetime))
            self.threads.add(threading.current_thread().name)
        name = Path(path.rsplit("/", 1)[-1]).stem
        time.sleep(self.delays.get(name, 0.0))
        if name.startswith("bad"):
            raise InputError(f"{path}: not a georeferenced raster")
        return item(name, assets={"data": {"href": path}})

    def read_scene_files(
        self, paths: list[str], *, datetime: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            self.groups.append([Path(p).name for p in paths])
        return [item("+".join(Path(p).stem for p in paths))]


@pytest.fixture
def rasters(monkeypatch: pytest.MonkeyPatch) -> FakeRasters:
    """Swap the raster reader for :class:`FakeRasters`, whether or not the real module exists."""
    try:
        module = importlib.import_module(RASTERS)
    except ModuleNotFoundError as error:
        if error.name != RASTERS:
            raise
        module = types.ModuleType(RASTERS)
        monkeypatch.setitem(sys.modules, RASTERS, module)
    fake = FakeRasters()
    monkeypatch.setattr(module, "read_raster", fake.read_raster, raising=False)
    monkeypatch.setattr(module, "read_scene_files", fake.read_scene_files, raising=False)
    monkeypatch.setattr(module, "RASTER_SUFFIXES", frozenset({".tif", ".tiff"}), raising=False)
    return fake


def run(sources: list[str], **options: Any) -> tuple[list[Record], list[str], list[str]]:
    errors: list[str] = []
    notices: list[str] = []

    def on_error(error: InputError) -> None:
        errors.append(str(error))

    records = list(iter_records(sources, on_error=on_error, on_notice=notices.append, **options))
    return records, errors, notices


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folder_walk_order_skips_and_errors(tmp_path: Path, rasters: FakeRasters) -> None:
    src = tmp_path / "src"
    for name in ("b.tif", "a.tif", ".hidden.tif", "a.tif.aux.xml", "notes.txt", "README.md"):
        touch(src / name)
    touch(src / ".git" / "x.json", "{}")
    touch(src / "z.json", json.dumps(item("z")))
    bad = touch(src / "bad.json", json.dumps({"foo": 1}))
    touch(src / "sub" / "c.TIF")
    ndjson = "".join(json.dumps(item(f"n{i}")) + "\n" for i in (1, 2))
    touch(src / "sub" / "items.ndjson", ndjson)
    records, errors, _ = run([str(src)], workers=2)
    assert [(r.kind, r.data["id"]) for r in records] == [
        ("item", "a"),
        ("item", "b"),
        ("item", "z"),
        ("item", "c"),
        ("item", "n1"),
        ("item", "n2"),
    ]
    assert [r.source for r in records[:2]] == [str(src / "a.tif"), str(src / "b.tif")]
    assert records[4].source == f"{src / 'sub' / 'items.ndjson'}:1"
    assert errors == [f"{bad}: not STAC: no 'type' field"]
    assert [call[0] for call in rasters.calls] == [
        str(src / "a.tif"),
        str(src / "b.tif"),
        str(src / "sub" / "c.TIF"),
    ]


def test_rasters_in_a_pool_yield_in_input_order(tmp_path: Path, rasters: FakeRasters) -> None:
    names = [f"r{i}" for i in range(8)]
    names.insert(3, "bad3")
    for position, name in enumerate(names):
        touch(tmp_path / f"{name}.tif")
        rasters.delays[name] = 0.02 * (len(names) - position)  # later files finish first
    touch(tmp_path / "zz.json", json.dumps(item("after")))
    when = dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)
    records, errors, _ = run([str(tmp_path)], datetime=when, workers=4)
    assert [r.data["id"] for r in records] == [*[n for n in names if n != "bad3"], "after"]
    assert errors == [f"{tmp_path / 'bad3.tif'}: not a georeferenced raster"]
    assert {call[1] for call in rasters.calls} == {when}
    assert len(rasters.threads) > 1


def test_missing_path_and_unsupported_file(tmp_path: Path, rasters: FakeRasters) -> None:
    notes = touch(tmp_path / "notes.txt")
    records, errors, _ = run(["nope/missing.tif", str(notes)])
    assert records == []
    assert errors == [
        "nope/missing.tif: no such file or folder",
        f"{notes}: unsupported file type; expected a raster (.tif, .tiff) or STAC {STAC}",
    ]


def test_glob(tmp_path: Path, rasters: FakeRasters) -> None:
    for name in ("b.tif", "a.tif", "c.txt"):
        touch(tmp_path / "in" / name)
    touch(tmp_path / "in" / "deep" / "d.tif")
    records, errors, _ = run([str(tmp_path / "in" / "*"), str(tmp_path / "none-*.tif")])
    assert [r.data["id"] for r in records] == ["a", "b", "d"]
    assert errors == [f"{tmp_path / 'none-*.tif'}: no files match"]
    records, _, _ = run([str(tmp_path / "**" / "*.tif")])
    assert [r.data["id"] for r in records] == ["a", "b", "d"]


def test_raster_url_goes_to_the_raster_reader(rasters: FakeRasters) -> None:
    records, errors, _ = run(["https://data.example/cogs/scene.tif?sig=x"])
    assert errors == []
    assert [(r.data["id"], r.source) for r in records] == [
        ("scene", "https://data.example/cogs/scene.tif?sig=x")
    ]


def test_json_decided_by_content_not_name(tmp_path: Path, rasters: FakeRasters) -> None:
    catalog = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "c",
        "description": "d",
        "links": [{"rel": "item", "href": "./one.json"}],
    }
    named_like_an_item = touch(tmp_path / "item.json", json.dumps(catalog))
    touch(tmp_path / "one.json", json.dumps(item("one")))
    listing = {"type": "FeatureCollection", "features": [item("f1"), item("f2")]}
    named_like_a_catalog = touch(tmp_path / "other" / "catalog.json", json.dumps(listing))
    records, errors, _ = run([str(named_like_an_item), str(named_like_a_catalog)])
    assert errors == []
    assert [r.data["id"] for r in records] == ["one", "f1", "f2"]


def test_spec_examples_folder_reads_each_document_once(rasters: FakeRasters) -> None:
    root = DATA / "stac-spec-examples" / "v1.1.0"
    if not root.is_dir():
        pytest.skip(f"shared test data {root} is not here")
    records, errors, notices = run([str(root), str(root / "core-item.json")])
    # The spec's own proj-example names a collection other than the one listing it.
    assert errors == [] and [n.split(": ", 1)[1] for n in notices] == [
        "item 'proj-example' says collection 'landsat-8-l1' but is listed by collection "
        "'extensions-collection'; it goes to 'landsat-8-l1'"
    ]
    assert [
        (r.kind, r.data["id"], Path(r.source).relative_to(root).as_posix()) for r in records
    ] == [
        ("collection", "extensions-collection", "extensions-collection/collection.json"),
        ("item", "proj-example", "extensions-collection/proj-example/proj-example.json"),
        ("collection", "sentinel-2", "collection-only/collection.json"),
        ("collection", "sentinel-2", "collection-only/collection-with-schemas.json"),
        ("item", "CS3-20160503_132131_08", "collectionless-item.json"),
        ("collection", "simple-collection", "collection.json"),
        ("item", "20201211_223832_CS2", "simple-item.json"),
        ("item", "20201211_223832_CS2", "core-item.json"),
        ("item", "20201211_223832_CS2", "extended-item.json"),
    ]
    assert rasters.calls == []


def test_strict_stops_at_the_first_raster_error(tmp_path: Path, rasters: FakeRasters) -> None:
    for name in ("a", "bad", "c", "d"):
        touch(tmp_path / f"{name}.tif")
    calls: list[InputError] = []

    def strict(error: InputError) -> None:
        calls.append(error)
        raise error

    got: list[str] = []
    with pytest.raises(InputError, match=r"bad\.tif: not a georeferenced raster"):
        for record in iter_records([str(tmp_path)], on_error=strict, on_notice=print, workers=2):
            got.append(record.data["id"])
    assert got == ["a"]
    assert len(calls) == 1


def test_closing_early_shuts_the_pool(tmp_path: Path, rasters: FakeRasters) -> None:
    for i in range(20):
        touch(tmp_path / f"r{i:02d}.tif")
    records: Iterator[Record] = iter_records(
        [str(tmp_path)], on_error=print, on_notice=print, workers=2
    )
    assert next(records).data["id"] == "r00"
    records.close()  # type: ignore[attr-defined]
    assert len(rasters.calls) < 20


def test_negative_workers() -> None:
    with pytest.raises(OptionError, match=r"workers=-1: must be 0"):
        run([], workers=-1)


def test_real_raster_reader(tmp_path: Path) -> None:
    """With the real module (once it exists), a small GeoTIFF becomes one item."""
    rasters = pytest.importorskip(RASTERS, reason="dafab_static.ingest.rasters is not written yet")
    rasterio = pytest.importorskip("rasterio")
    import numpy as np
    from affine import Affine

    path = tmp_path / "scene.tif"
    profile = {
        "driver": "GTiff",
        "width": 16,
        "height": 16,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": Affine(0.01, 0.0, 10.0, 0.0, -0.01, 50.0),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.arange(256, dtype="uint8").reshape(1, 16, 16))
    assert ".tif" in rasters.RASTER_SUFFIXES
    when = dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)
    records, errors, _ = run([str(tmp_path)], datetime=when)
    assert errors == []
    assert [(r.kind, r.source, r.data["id"]) for r in records] == [("item", str(path), "scene")]
    assert records[0].data["assets"]["data"]["href"] == str(path)
    assert records[0].data["properties"]["datetime"] == "2024-07-01T00:00:00Z"


def test_per_band_files_of_a_scene_are_read_together(tmp_path: Path, rasters: FakeRasters) -> None:
    """Consecutive rasters of one folder whose names differ only in their band or layer
    label are one scene; a lone band file, other names and other folders stay single."""
    src = tmp_path / "src"
    scene = "LC09_L2SP_192028_20240918_20240919_02_T1"
    for name in (f"{scene}_SR_B4.TIF", f"{scene}_SR_B5.TIF", f"{scene}_QA_PIXEL.TIF",
                 f"{scene}_MTL.txt", "other_B1.tif", "photo.tif", "sub/x_B1.tif",
                 "sub/x_B2.tif"):  # fmt: skip
        touch(src / name)
    records, errors, _ = run([str(src)])
    assert errors == []
    assert rasters.groups == [
        [f"{scene}_QA_PIXEL.TIF", f"{scene}_SR_B4.TIF", f"{scene}_SR_B5.TIF"],
        ["x_B1.tif", "x_B2.tif"],
    ]
    assert sorted(Path(path).name for path, _ in rasters.calls) == ["other_B1.tif", "photo.tif"]
    ids = [r.data["id"] for r in records]
    assert ids == [f"{scene}_QA_PIXEL+{scene}_SR_B4+{scene}_SR_B5", "other_B1", "photo",
                   "x_B1+x_B2"]  # fmt: skip
    assert records[0].source == str(src / f"{scene}*")
    assert records[1].source == str(src / "other_B1.tif")


def test_product_metadata_json_beside_bands_is_not_reported(
    tmp_path: Path, rasters: FakeRasters
) -> None:
    """A walk passes over the non-STAC JSON that archives ship beside their bands (USGS
    ``_MTL.json``, Earth Search ``tileinfo_metadata.json``) and that catalogs keep beside
    their objects (queryables, partitions manifests); named explicitly, it is reported."""
    src = tmp_path / "src"
    scene = "LC09_L2SP_192028_20240918_20240919_02_T1"
    mtl = touch(src / scene / f"{scene}_MTL.json", json.dumps({"LANDSAT_METADATA_FILE": {}}))
    touch(src / scene / f"{scene}_SR_B4.TIF")
    touch(src / "S2B_32TNS_20240710_0_L2A" / "tileinfo_metadata.json", "{}")
    touch(src / "S2B_32TNS_20240710_0_L2A" / "B04.tif")
    # what a published catalog keeps beside its STAC objects: met by `build cat/sensors`
    touch(src / "collection" / "queryables.json", json.dumps({"type": "object"}))
    touch(src / "index" / "_partitions.json", json.dumps({"partitions": []}))
    other = touch(src / "other.json", json.dumps({"foo": 1}))
    records, errors, _ = run([str(src)])
    assert len(records) == 2
    assert errors == [f"{other}: not STAC: no 'type' field"]
    _, errors, _ = run([str(mtl)])
    assert errors == [f"{mtl}: not STAC: no 'type' field"]


def _collection(cid: str, *items: str) -> dict[str, Any]:
    """A small Collection linking ``items``."""
    return {
        "type": "Collection", "id": cid, "stac_version": "1.1.0", "description": "d",
        "license": "MIT", "links": [{"rel": "item", "href": href} for href in items],
        "extent": {"spatial": {"bbox": [[1, 2, 1, 2]]}, "temporal": {"interval": [[None, None]]}},
    }  # fmt: skip


def test_linked_folders_are_walked_once(tmp_path: Path, rasters: FakeRasters) -> None:
    """A folder of rasters gathered by symlinks was skipped without a word; a loop, or a
    folder reached twice, is walked once."""
    src, elsewhere = tmp_path / "src", tmp_path / "elsewhere"
    touch(src / "a.tif")
    touch(elsewhere / "b.tif")
    (src / "more").symlink_to(elsewhere, target_is_directory=True)
    (src / "again").symlink_to(elsewhere, target_is_directory=True)
    (src / "loop").symlink_to(src, target_is_directory=True)
    records, errors, _ = run([str(src)], workers=1)
    assert [r.data["id"] for r in records] == ["a", "b"] and not errors
    assert [call[0] for call in rasters.calls] == [str(src / "a.tif"), str(src / "again" / "b.tif")]


def test_a_collection_claims_the_items_beside_it_whatever_their_names(
    tmp_path: Path, rasters: FakeRasters
) -> None:
    """a1.json sorted before collection.json: it was read alone first, and landed in
    another collection than when the build was given collection.json."""
    src = tmp_path / "flat"
    for name in ("a1", "z9"):
        touch(src / f"{name}.json", json.dumps(item(name, links=[
            {"rel": "parent", "href": "./meta.json"}])))  # fmt: skip
    touch(src / "meta.json", json.dumps(_collection("flat", "./a1.json", "./z9.json")))
    for source in (src, src / "meta.json"):
        records, errors, _ = run([str(source)], workers=1)
        items = {r.data["id"]: r.data.get("collection") for r in records if r.kind == "item"}
        assert items == {"a1": "flat", "z9": "flat"} and not errors, source


def test_an_item_whose_collection_field_contradicts_its_collection_is_reported(
    tmp_path: Path, rasters: FakeRasters
) -> None:
    """It went to the collection its field names, silently, losing the parent's license
    and providers: the input contradicts itself, and the build says so."""
    src = tmp_path / "c"
    touch(src / "i.json", json.dumps(item("i", collection="other-id")))
    touch(src / "j.json", json.dumps(item("j")))
    touch(src / "collection.json", json.dumps(_collection("parent", "./i.json", "./j.json")))
    records, errors, notices = run([str(src / "collection.json")], workers=1)
    collections = {r.data["id"]: r.data["collection"] for r in records if r.kind == "item"}
    assert collections == {"i": "other-id", "j": "parent"} and not errors
    assert [n for n in notices if "says collection 'other-id'" in n and "'parent'" in n]


def test_a_foreign_source_link_does_not_replace_ours(tmp_path: Path, rasters: FakeRasters) -> None:
    """Only items of a catalog dafab-static built keep their Source link alone: a hub's
    own via link titled "Source" hid the file the item was read from."""
    upstream = {"rel": "via", "href": "https://upstream.example/x.xml", "title": "Source"}
    path = touch(tmp_path / "x.json", json.dumps(item("x", links=[upstream])))
    records, errors, _ = run([str(path)], workers=1)
    vias = [ln["href"] for ln in records[0].data["links"] if ln["rel"] == "via"]
    assert vias == [upstream["href"], str(path)] and not errors  # file:// once written
