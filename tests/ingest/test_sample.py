"""The bundled sample: same bytes every run, exact ids, items that read and validate."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import rasterio
from shapely.geometry import shape

from dafab_static.ingest.rasters import read_raster
from dafab_static.sample import NDVI_COLLECTION, SampleManifest, write_sample

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_MAP = REPO_ROOT.parent / "shared" / "data" / "stac-schemas" / "schema-map.json"
S2_FIRST = "S2A_MSIL2A_20240715T103031_N0510_R108_T32TNS_20240715T150000"

EXPECTED = {
    "landsat-c2-l2": (
        "LC08_L2SP_193028_20240710_02_T1",
        "LC09_L2SP_192028_20240918_20240919_02_T1",
        "LC09_L2SP_193028_20240702_02_T1",
        "LC09_L2SP_194028_20240709_02_T1",
    ),
    "sentinel-2-l2a": (
        "S2A_MSIL2A_20240705T103031_R108_T32TNS_20240705T160405",
        S2_FIRST,
        "S2A_MSIL2A_20240804T103031_R108_T32TMS_20240804T160405",
        "S2B_MSIL2A_20240710T102559_R108_T32TNS_20240710T133112",
        "S2B_MSIL2A_20240809T102559_R108_T32TMS_20240809T133112",
        "S2B_MSIL2A_20240824T102559_N0511_R108_T33TUL_20240824T131500",
        "S2B_MSIL2A_20241005T221939_N0511_R029_T01KAB_20241006T001500",
    ),
    NDVI_COLLECTION: (f"{S2_FIRST}_NDVI",),
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("sample"))


def hub_items(manifest: SampleManifest) -> list[dict[str, Any]]:
    """Every item of the hub files, whatever their form (item, FeatureCollection, NDJSON)."""
    found: list[dict[str, Any]] = []
    for path in manifest.item_files:
        if path.suffix == ".ndjson":
            found += [orjson.loads(line) for line in path.read_bytes().splitlines()]
        else:
            document = orjson.loads(path.read_bytes())
            found += document["features"] if document["type"] == "FeatureCollection" else [document]
    return found


def test_same_bytes_every_run(tmp_path: Path, sample: SampleManifest) -> None:
    again = write_sample(tmp_path / "again")
    names = [p.relative_to(sample.folder).as_posix() for p in sample.files]
    assert names == [p.relative_to(again.folder).as_posix() for p in again.files]
    on_disk = sorted(p.relative_to(again.folder).as_posix() for p in again.folder.rglob("*"))
    assert [n for n in on_disk if (again.folder / n).is_file()] == sorted(names)
    for path in sample.files:
        assert path.read_bytes() == (again.folder / path.relative_to(sample.folder)).read_bytes()
    assert again.items_by_collection == sample.items_by_collection


def test_expected_ids(sample: SampleManifest) -> None:
    assert dict(sample.items_by_collection) == EXPECTED
    assert sample.sources == (sample.folder / "rasters", sample.folder / "items")
    assert len(sample.rasters) == 4 and len(sample.item_files) == 5


def test_raster_items(sample: SampleManifest) -> None:
    items = {p.stem: read_raster(p) for p in sample.rasters}
    assert set(items) <= set(EXPECTED["sentinel-2-l2a"] + EXPECTED["landsat-c2-l2"])
    months = {item["properties"]["datetime"][:7] for item in items.values()}
    assert months == {"2024-07", "2024-08", "2024-09", "2024-10"}
    codes = {item["properties"]["proj:code"] for item in items.values()}
    assert codes == {"EPSG:32632", "EPSG:32633", "EPSG:32701"}
    landsat = items["LC09_L2SP_192028_20240918_20240919_02_T1"]
    assert landsat["properties"]["datetime"] == "2024-09-18T10:02:43.531245Z"  # from its tags
    assert [b["name"] for b in landsat["assets"]["data"]["eo:bands"]] == [
        "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "QA_PIXEL"
    ]  # fmt: skip
    assert [b.get("common_name") for b in landsat["assets"]["data"]["eo:bands"]] == [
        "blue", "green", "red", "nir08", "swir16", "swir22", None
    ]  # fmt: skip
    assert "scale" not in landsat["assets"]["data"]["raster:bands"][-1]  # QA values as they are
    for name, item in items.items():
        asset = item["assets"]["data"]
        assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
        band = asset["raster:bands"][0]
        assert band["nodata"] == 0 and band["data_type"] == "uint16"
        assert band["scale"] in (1e-4, 2.75e-5)
        if "T01KAB" in name:
            assert item["geometry"]["type"] == "MultiPolygon"
            assert item["bbox"][0] > 179.9 and item["bbox"][2] < -179.9
        else:
            # A nodata border: the valid area is tilted, well inside the raster's bounds.
            assert band["statistics"]["valid_percent"] < 90
            assert item["geometry"]["type"] == "Polygon"


def test_the_cogs_are_cogs(sample: SampleManifest) -> None:
    for path in (*sample.rasters, *sample.derived):
        with rasterio.open(path) as dataset:
            assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert dataset.block_shapes[0] == (128, 128)
            assert dataset.overviews(1) == [2]
            assert dataset.profile["compress"] == "deflate"


def test_hub_items(sample: SampleManifest) -> None:
    items = hub_items(sample)
    assert len(items) == 7
    assert {item["stac_version"] for item in items} == {"1.0.0", "1.1.0"}
    for item in items:
        rels = {link["rel"]: link["href"] for link in item["links"]}
        assert {"self", "parent", "root", "collection"} <= set(rels)
        assert rels["self"].startswith("https://") and rels["self"].endswith(item["id"])
        assert all(asset["href"].startswith("https://") for asset in item["assets"].values())
        assert shape(item["geometry"]).is_valid
        extensions = " ".join(item["stac_extensions"])
        assert "/eo/" in extensions and "/projection/" in extensions and "/view/" in extensions
        proj = "proj:epsg" if item["stac_version"] == "1.0.0" else "proj:code"
        assert proj in item["properties"]


def test_derived_item(sample: SampleManifest) -> None:
    (path,) = sample.derived_item_files
    item = orjson.loads(path.read_bytes())
    assert item["id"] == f"{S2_FIRST}_NDVI" and item["collection"] == NDVI_COLLECTION
    (source,) = [link for link in item["links"] if link["rel"] == "derived_from"]
    assert (path.parent / source["href"]).resolve() == sample.rasters[0].resolve()
    assert source["title"] == S2_FIRST
    asset = item["assets"]["data"]
    assert asset["href"] == f"../../derived/{S2_FIRST}_NDVI.tif"
    assert (path.parent / asset["href"]).resolve() == sample.derived[0].resolve()
    band = asset["raster:bands"][0]
    assert band["data_type"] == "float32" and band["nodata"] == "nan"
    stats = band["statistics"]
    assert -1 <= stats["minimum"] < 0 < stats["maximum"] <= 1  # water and vegetation
    with rasterio.open(sample.derived[0]) as dataset, rasterio.open(sample.rasters[0]) as scene:
        assert np.array_equal(np.isnan(dataset.read(1)), scene.read(3) == 0)


@pytest.fixture(scope="module")
def validator() -> Any:
    if not SCHEMA_MAP.is_file():
        pytest.skip(f"{SCHEMA_MAP} is absent (vendored schemas live in ../shared/data)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the old name warns on import
        module = pytest.importorskip("stac_validator.stac_validator")
    return module.StacValidate


def test_everything_validates(sample: SampleManifest, validator: Any) -> None:
    documents = hub_items(sample)
    documents += [orjson.loads(p.read_bytes()) for p in sample.derived_item_files]
    for path in sample.rasters:
        item = read_raster(path)
        # read_raster leaves links to the tree writer; STAC 1.1 wants a collection link
        # whenever an item names its collection.
        item["links"] = [{"rel": "collection", "href": "./collection.json"}]
        documents.append(item)
    assert len(documents) == 12
    for document in documents:
        check = validator(schema_config=str(SCHEMA_MAP))
        assert check.validate_dict(document), (document["id"], check.message)


def test_validator_can_fail(sample: SampleManifest, validator: Any) -> None:
    item = hub_items(sample)[0]
    item["properties"]["eo:cloud_cover"] = "cloudy"
    assert not validator(schema_config=str(SCHEMA_MAP)).validate_dict(item)
