"""Rasters to STAC items: synthetic edge cases written in tmp_path, then real files."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
import rasterio.shutil
import rasterio.warp
import shapely
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from shapely.geometry import shape

from dafab_static.errors import InputError
from dafab_static.ingest.rasters import (
    MAX_READ_SIZE,
    RASTER_SUFFIXES,
    read_raster,
    read_scene_files,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
RASTERS = REPO_ROOT.parent / "shared" / "data" / "rasters"
GRID = Affine(30, 0, 500000, 0, -30, 5000000)
WHEN = dt.datetime(2021, 5, 6, 7, 8, 9)
S2_NAME = "S2A_MSIL2A_20240715T103031_N0510_R108_T32TNS_20240715T150000"

Writer = Callable[..., Path]


def tilted(rows: int, cols: int, degrees: float = 12.0) -> npt.NDArray[np.bool_]:
    """A rotated rectangle of valid pixels, as a Landsat frame inside its nodata border."""
    y, x = np.mgrid[0:rows, 0:cols]
    u, v = (x + 0.5) / cols - 0.5, (y + 0.5) / rows - 0.5
    a = math.radians(degrees)
    along, across = u * math.cos(a) + v * math.sin(a), -u * math.sin(a) + v * math.cos(a)
    return np.asarray((abs(along) < 0.4) & (abs(across) < 0.4))


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write a GeoTIFF (or a COG) into tmp_path; georeferencing may be left out on purpose."""

    def writer(
        name: str,
        data: npt.NDArray[Any],
        *,
        crs: str | None = "EPSG:32633",
        transform: Affine | None = GRID,
        nodata: float | None = 0,
        descriptions: tuple[str, ...] = (),
        tags: dict[str, str] | None = None,
        cog: bool = False,
    ) -> Path:
        if data.ndim == 2:
            data = data[None]
        count, rows, cols = data.shape
        profile: dict[str, Any] = {"driver": "GTiff", "width": cols, "height": rows}
        profile.update(count=count, dtype=data.dtype.name, nodata=nodata)
        if crs is not None:
            profile["crs"] = crs
        if transform is not None:
            profile["transform"] = transform
        path = tmp_path / name
        with warnings.catch_warnings():
            # Writing a non-georeferenced file is the point of some tests.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile() as memory:
                with memory.open(**profile) as dataset:
                    dataset.write(data)
                    for i, text in enumerate(descriptions, start=1):
                        dataset.set_band_description(i, text)
                    if tags:
                        dataset.update_tags(**tags)
                with memory.open() as dataset:
                    options: dict[str, Any] = {"driver": "GTiff"}
                    if cog:
                        options = {"driver": "COG", "blocksize": 256, "compress": "DEFLATE"}
                    rasterio.shutil.copy(dataset, str(path), **options)
        return path

    return writer


def source_area(item: dict[str, Any], crs: str) -> float:
    return float(shape(rasterio.warp.transform_geom("OGC:CRS84", crs, item["geometry"])).area)


# -- footprints -----------------------------------------------------------------------------


def test_tilted_footprint_matches_the_valid_area(write: Writer) -> None:
    valid = tilted(300, 400)
    path = write("tilted.tif", np.where(valid, 1000, 0).astype(np.uint16))
    item = read_raster(path, datetime=WHEN)
    geometry = shape(item["geometry"])
    assert item["geometry"]["type"] == "Polygon" and geometry.is_valid
    assert geometry.exterior.is_ccw
    valid_area = np.count_nonzero(valid) * 30.0 * 30.0
    assert source_area(item, "EPSG:32633") == pytest.approx(
        valid_area, rel=0.02
    )  # grown to cover every pixel
    bounds_area = 400 * 30.0 * 300 * 30.0
    assert source_area(item, "EPSG:32633") < 0.75 * bounds_area
    west, south, east, north = item["bbox"]
    assert (west, south, east, north) == pytest.approx(geometry.bounds)


def test_decimated_footprint_of_a_large_raster(write: Writer) -> None:
    rows, cols = 1500, 2500  # past MAX_READ_SIZE: read at a third of the resolution
    assert max(rows, cols) > 2 * MAX_READ_SIZE
    valid = tilted(rows, cols, degrees=20)
    path = write("large.tif", np.where(valid, 7, 0).astype(np.uint8))
    item = read_raster(path, datetime=WHEN)
    valid_area = np.count_nonzero(valid) * 30.0 * 30.0
    assert source_area(item, "EPSG:32633") == pytest.approx(
        valid_area, rel=0.02
    )  # grown to cover every pixel
    band = item["assets"]["data"]["raster:bands"][0]
    assert band["statistics"]["valid_percent"] == pytest.approx(100 * valid.mean(), abs=0.5)


def test_antimeridian_raster_is_split(write: Writer) -> None:
    # UTM 60N (central meridian 177 E), 150 km wide: its east side is past 180 degrees.
    grid = Affine(500, 0, 650000, 0, -500, 5600000)
    path = write("dateline.tif", np.full((200, 300), 9, np.uint8), crs="EPSG:32660", transform=grid)
    item = read_raster(path, datetime=WHEN)
    geometry = item["geometry"]
    assert geometry["type"] == "MultiPolygon" and len(geometry["coordinates"]) == 2
    assert shape(geometry).is_valid
    lons = [x for part in geometry["coordinates"] for ring in part for x, _ in ring]
    assert max(lons) == 180.0 and min(lons) == -180.0
    west, south, east, north = item["bbox"]
    assert 179.0 < west < 179.2 and -178.9 < east < -178.7
    assert west > east and 49.5 < south < north < 50.6
    assert source_area(item, "EPSG:32660") == pytest.approx(150000 * 100000, rel=0.01)


def test_every_pixel_nodata_is_an_input_error(write: Writer) -> None:
    path = write("empty.tif", np.zeros((20, 20), np.uint8))
    with pytest.raises(InputError, match=r"empty\.tif: every pixel is nodata"):
        read_raster(path, datetime=WHEN)


def test_small_valid_areas_survive_the_decimated_read(write: Writer) -> None:
    """The mask of a large raster is read decimated: sampled, it stepped over a 2x2 patch
    (the scene was "every pixel is nodata") and a one-pixel line; averaged, it keeps them."""
    patch = np.zeros((4096, 4096), np.uint8)
    patch[2000:2002, 3000:3002] = 5
    line = np.zeros((3000, 3000), np.uint8)
    line[1501, :] = 9
    for name, data in (("patch.tif", patch), ("line.tif", line)):
        item = read_raster(write(name, data), datetime=WHEN)
        footprint = shape(item["geometry"])
        rows, cols = np.nonzero(data)
        xs, ys = GRID.c + GRID.a * (cols + 0.5), GRID.f + GRID.e * (rows + 0.5)
        lon, lat = rasterio.warp.transform("EPSG:32633", "OGC:CRS84", xs, ys)
        assert shapely.covers(footprint, shapely.points(lon, lat)).all(), name


# -- bad files ------------------------------------------------------------------------------


def test_no_crs(write: Writer) -> None:
    path = write("nocrs.tif", np.ones((10, 10), np.uint8), crs=None)
    with pytest.raises(InputError) as error:
        read_raster(path, datetime=WHEN)
    assert str(error.value).startswith(f"{path}: ")
    assert "no CRS" in str(error.value)


def test_no_georeferencing_at_all(write: Writer) -> None:
    path = write("plain.tif", np.ones((10, 10), np.uint8), crs=None, transform=None)
    with pytest.raises(InputError, match=r"plain\.tif: not georeferenced"):
        read_raster(path, datetime=WHEN)


def test_truncated_file(write: Writer) -> None:
    path = write("cut.tif", (np.arange(200 * 200) % 60000).reshape(200, 200).astype(np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(InputError) as error:
        read_raster(path, datetime=WHEN)
    assert str(error.value).startswith(f"{path}: ")


def test_truncated_cog_fails_on_pixels_not_overviews(write: Writer) -> None:
    """Decimated reads come from overviews, stored first in a COG: the tail still counts."""
    rows, cols = 2100, 2100
    ramp = (np.arange(rows * cols, dtype=np.uint32) * 2654435761 % 65521).reshape(rows, cols)
    path = write("cut_cog.tif", ramp.astype(np.uint16), nodata=None, cog=True)
    data = path.read_bytes()
    path.write_bytes(data[:-20000])
    with rasterio.open(path) as dataset:  # the header and the overviews are intact
        assert dataset.overviews(1)
        dataset.read(1, out_shape=(525, 525))
    with pytest.raises(InputError, match=r"cut_cog\.tif: cannot read pixel data"):
        read_raster(path, datetime=WHEN)


def test_text_file_named_tif(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("not a raster\n")
    with pytest.raises(InputError, match=r"notes\.tif: cannot read raster"):
        read_raster(path, datetime=WHEN)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"absent\.tif: cannot read raster"):
        read_raster(tmp_path / "absent.tif", datetime=WHEN)


def test_no_warning_leaks_from_threads(write: Writer) -> None:
    """The dispatcher reads rasters in a pool: bad files must still give InputError only."""
    bad = write("nocrs.tif", np.ones((10, 10), np.uint8), crs=None)
    good = write("good.tif", np.ones((10, 10), np.uint8))
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(read_raster, p, datetime=WHEN) for p in [bad, good] * 16]
    for i, future in enumerate(futures):
        if i % 2:
            assert future.result()["id"] == "good"
        else:
            assert isinstance(future.exception(), InputError)


# -- time -----------------------------------------------------------------------------------


def test_no_datetime_anywhere(write: Writer) -> None:
    path = write("scene.tif", np.ones((10, 10), np.uint8))
    with pytest.raises(InputError, match=r"scene\.tif: no acquisition time.*--datetime"):
        read_raster(path)


def test_datetime_argument_is_the_fallback(write: Writer) -> None:
    path = write("scene.tif", np.ones((10, 10), np.uint8))
    assert read_raster(path, datetime=WHEN)["properties"]["datetime"] == "2021-05-06T07:08:09Z"
    paris = dt.datetime(2021, 5, 6, 9, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert read_raster(path, datetime=paris)["properties"]["datetime"] == "2021-05-06T07:08:09Z"


def test_tags_then_name_then_creation_then_argument(write: Writer) -> None:
    pixels = np.ones((10, 10), np.uint8)
    tagged = write(f"{S2_NAME}.tif", pixels, tags={"ACQUISITIONDATETIME": "2024-07-15 10:31:00"})
    assert read_raster(tagged, datetime=WHEN)["properties"]["datetime"] == "2024-07-15T10:31:00Z"
    named = write(f"{S2_NAME}_B04.tif", pixels, tags={"TIFFTAG_DATETIME": "2025:01:01 00:00:00"})
    assert read_raster(named, datetime=WHEN)["properties"]["datetime"] == "2024-07-15T10:30:31Z"
    created = write("made.tif", pixels, tags={"TIFFTAG_DATETIME": "2025:01:02 03:04:05"})
    assert read_raster(created, datetime=WHEN)["properties"]["datetime"] == "2025-01-02T03:04:05Z"


# -- sensors, bands, assets -----------------------------------------------------------------


def test_sentinel2_scene(write: Writer) -> None:
    data = np.full((4, 20, 20), 1200, np.uint16)
    path = write(f"{S2_NAME}.tif", data, descriptions=("B02", "B03", "B04", "B08"))
    item = read_raster(path)
    assert item["id"] == S2_NAME
    assert item["collection"] == "sentinel-2-l2a"
    properties = item["properties"]
    assert properties["datetime"] == "2024-07-15T10:30:31Z"
    assert (properties["platform"], properties["constellation"]) == ("sentinel-2a", "sentinel-2")
    assert properties["instruments"] == ["msi"]
    assert (properties["mgrs:utm_zone"], properties["mgrs:latitude_band"]) == (32, "T")
    assert properties["mgrs:grid_square"] == "NS"
    bands = item["assets"]["data"]["eo:bands"]
    assert [b["name"] for b in bands] == ["B02", "B03", "B04", "B08"]
    assert [b["common_name"] for b in bands] == ["blue", "green", "red", "nir"]
    assert item["stac_extensions"] == sorted(item["stac_extensions"])
    assert "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json" in item["stac_extensions"]


def test_per_band_file_keeps_its_stem_and_names_its_band(write: Writer) -> None:
    path = write(f"{S2_NAME}_B8A.tif", np.full((10, 10), 900, np.uint16))
    item = read_raster(path)
    assert item["id"] == f"{S2_NAME}_B8A"
    assert item["assets"]["data"]["eo:bands"] == [
        {"name": "B8A", "common_name": "nir08", "center_wavelength": 0.8647,
         "full_width_half_max": 0.021}
    ]  # fmt: skip


def test_unknown_sensor(write: Writer) -> None:
    path = write("field_B04.tif", np.ones((10, 10), np.uint8), descriptions=("B04",))
    item = read_raster(path, datetime=WHEN)
    assert item["collection"] == "rasters"
    assert {"platform", "constellation", "instruments"}.isdisjoint(item["properties"])
    assert "eo:bands" not in item["assets"]["data"]
    assert not any("/eo/" in url for url in item["stac_extensions"])


def test_raster_bands_and_projection(write: Writer, tmp_path: Path) -> None:
    data = np.array([[[1.5, np.nan], [2.5, 4.0]]], dtype=np.float32)
    path = write("float.tif", data, nodata=float("nan"))
    with rasterio.open(path, "r+") as dataset:
        dataset.scales, dataset.offsets, dataset.units = (0.5,), (-1.0,), ("K",)
    item = read_raster(path, datetime=WHEN)
    assert item["assets"]["data"]["raster:bands"] == [
        {
            "data_type": "float32",
            "nodata": "nan",
            "scale": 0.5,
            "offset": -1.0,
            "unit": "K",
            "spatial_resolution": 30.0,
            "statistics": {
                "minimum": 1.5,
                "maximum": 4.0,
                "mean": 2.666666667,
                "stddev": 1.027402334,
                "valid_percent": 75.0,
            },
        }
    ]
    properties = item["properties"]
    assert properties["proj:code"] == "EPSG:32633"
    assert properties["proj:shape"] == [2, 2]
    assert properties["proj:transform"] == [30.0, 0.0, 500000.0, 0.0, -30.0, 5000000.0]
    assert properties["proj:bbox"] == [500000.0, 4999940.0, 500060.0, 5000000.0]


def test_asset_file_fields_and_types(write: Writer) -> None:
    plain = write("plain.tif", np.ones((600, 600), np.uint8))
    cog = write("tiled.tif", np.ones((600, 600), np.uint8), cog=True)
    item = read_raster(plain, datetime=WHEN)
    asset = item["assets"]["data"]
    assert asset["href"] == str(plain.resolve())
    assert asset["type"] == "image/tiff; application=geotiff"
    assert asset["roles"] == ["data"]
    assert asset["file:size"] == plain.stat().st_size
    assert asset["file:checksum"] == "1220" + hashlib.sha256(plain.read_bytes()).hexdigest()
    assert item["links"] == []
    cog_type = read_raster(cog, datetime=WHEN)["assets"]["data"]["type"]
    assert cog_type == "image/tiff; application=geotiff; profile=cloud-optimized"


def test_suffixes() -> None:
    assert {".tif", ".tiff", ".TIF", ".TIFF"} <= set(RASTER_SUFFIXES)
    assert "LC09_B4.TIF".endswith(RASTER_SUFFIXES)


def test_same_file_same_item(write: Writer) -> None:
    path = write("again.tif", np.where(tilted(50, 60), 3, 0).astype(np.uint8))
    assert read_raster(path, datetime=WHEN) == read_raster(path, datetime=WHEN)


# -- real rasters ---------------------------------------------------------------------------


@pytest.fixture
def real() -> Callable[[str], Path]:
    def find(name: str) -> Path:
        path = RASTERS / name
        if not path.is_file():
            pytest.skip(f"{path} is absent (real rasters live in ../shared/data/rasters)")
        return path

    return find


def test_rgb_byte_footprint_is_the_tilted_scene(real: Callable[[str], Path]) -> None:
    path = real("RGB.byte.tif")
    item = read_raster(path, datetime=WHEN)
    with rasterio.open(path) as dataset:
        bounds_area = shapely.box(*dataset.bounds).area
        valid_area = np.count_nonzero(dataset.dataset_mask()) * abs(dataset.transform.determinant)
    area = source_area(item, "EPSG:32618")
    # Measured: 0.675 of the raster's bounds hold data (nodata 0 around a tilted scene).
    assert area / bounds_area == pytest.approx(0.675, abs=0.005)
    assert area == pytest.approx(valid_area, rel=0.01)
    assert item["bbox"] == pytest.approx([-78.8691, 23.6111, -76.6580, 25.5100], abs=1e-3)
    bands = item["assets"]["data"]["raster:bands"]
    assert [b["nodata"] for b in bands] == [0, 0, 0]
    assert [b["statistics"]["valid_percent"] for b in bands] == pytest.approx(
        [67.40, 67.43, 67.39], abs=0.01
    )


def test_landsat8_band_from_its_folder_name(real: Callable[[str], Path]) -> None:
    item = read_raster(real("landsat8-LC80200392015216LGN00/l8_B2.tif"))
    assert item["id"] == "l8_B2"
    # The date from the folder's product id, the time from l8_MTL.txt beside the file.
    assert item["properties"]["datetime"] == "2015-08-04T16:19:21.791742Z"
    assert item["properties"]["platform"] == "landsat-8"
    assert item["properties"]["instruments"] == ["oli", "tirs"]
    assert item["collection"] == "landsat-pre-collection"
    assert item["assets"]["data"]["eo:bands"] == [
        {"name": "B2", "common_name": "blue", "center_wavelength": 0.48,
         "full_width_half_max": 0.06}
    ]  # fmt: skip
    assert item["properties"]["proj:code"] == "EPSG:32616"


def test_geographic_dem(real: Callable[[str], Path]) -> None:
    item = read_raster(real("elev.tif"), datetime=WHEN)
    assert item["properties"]["proj:code"] == "EPSG:4326"
    assert item["properties"]["proj:shape"] == [90, 95]
    assert item["bbox"] == pytest.approx([5.75, 49.45, 6.525, 50.1833333])
    band = item["assets"]["data"]["raster:bands"][0]
    assert (band["data_type"], band["nodata"]) == ("int16", -32768)
    assert (band["statistics"]["minimum"], band["statistics"]["maximum"]) == (141, 547)
    assert band["spatial_resolution"] == pytest.approx(745.6, abs=0.1)


def test_cog_fixture(real: Callable[[str], Path]) -> None:
    item = read_raster(real("cog.tif"), datetime=WHEN)
    asset = item["assets"]["data"]
    assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
    stats = asset["raster:bands"][0]["statistics"]
    assert (stats["minimum"], stats["maximum"], stats["valid_percent"]) == (1, 7872, 100.0)
    assert item["properties"]["proj:code"] == "EPSG:32621"


LC09 = "LC09_L2SP_192028_20240918_20240919_02_T1"


def test_per_band_files_of_one_scene_are_one_item(write: Writer) -> None:
    """USGS ships a scene as a GeoTIFF per band and quality layer: one Item, an asset each,
    the id the product's; the 15 m band keeps its own grid in its asset."""
    valid = tilted(80, 90).astype(np.uint16)
    paths = [
        write(f"{LC09}_SR_B4.TIF", valid * 8000),
        write(f"{LC09}_SR_B5.TIF", valid * 20000),
        write(f"{LC09}_QA_PIXEL.TIF", np.where(valid, 21824, 1).astype(np.uint16), nodata=1),
        write(
            f"{LC09}_B8.TIF",
            np.kron(valid, np.ones((2, 2), np.uint16)) * 9000,
            transform=Affine(15, 0, 500000, 0, -15, 5000000),
        ),
    ]
    (item,) = read_scene_files(paths)
    assert item["id"] == LC09 and item["collection"] == "landsat-c2-l2"
    assert item["properties"]["platform"] == "landsat-9"
    assert set(item["assets"]) == {"SR_B4", "SR_B5", "QA_PIXEL", "B8"}
    assert item["assets"]["SR_B4"]["eo:bands"][0]["common_name"] == "red"
    assert item["assets"]["SR_B5"]["eo:bands"][0]["common_name"] == "nir08"
    assert "eo:bands" not in item["assets"]["QA_PIXEL"]
    assert [a["href"] for a in item["assets"].values()] == [str(p) for p in paths]
    # Shared by every file: in the properties; the pan band's grid: in its asset only.
    assert item["properties"]["proj:code"] == "EPSG:32633"
    assert "proj:shape" not in item["properties"]
    assert item["assets"]["B8"]["proj:shape"] == [160, 180]
    assert item["assets"]["SR_B4"]["proj:shape"] == [80, 90]
    assert item["assets"]["B8"]["raster:bands"][0]["spatial_resolution"] == 15.0
    # Every file covers the same tilted frame: the union is that frame.
    single = shape(read_raster(paths[0])["geometry"])
    assert shape(item["geometry"]).area == pytest.approx(single.area, rel=0.01)
    assert item["bbox"] == pytest.approx(list(single.bounds), abs=1e-3)


def test_footprint_of_a_scene_is_the_union_of_its_files(write: Writer) -> None:
    left, right = np.zeros((60, 60), np.uint16), np.zeros((60, 60), np.uint16)
    left[:, :40], right[:, 20:] = 1, 1
    (item,) = read_scene_files(
        [write("scene_B1.tif", left), write("scene_B2.tif", right)], datetime=WHEN
    )
    assert item["id"] == "scene"
    assert set(item["assets"]) == {"B1", "B2"}
    union = shape(item["geometry"])
    one = shape(read_raster(write("only_B1.tif", left), datetime=WHEN)["geometry"])
    assert union.area == pytest.approx(one.area * 1.5, rel=0.02)
    assert shapely.is_ccw(union.exterior)


def test_files_that_are_not_one_scene_stay_apart(write: Writer) -> None:
    data = tilted(40, 40).astype(np.uint8)
    paths = [write("x_B1.tif", data), write("x_B2.tif", data, crs="EPSG:32634")]
    items = read_scene_files(paths, datetime=WHEN)
    assert [i["id"] for i in items] == ["x_B1", "x_B2"]
    assert all(set(i["assets"]) == {"data"} for i in items)


def test_a_bad_band_file_fails_its_scene_naming_the_file(write: Writer, tmp_path: Path) -> None:
    good = write("y_B1.tif", tilted(40, 40).astype(np.uint8))
    bad = tmp_path / "y_B2.tif"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match=r"y_B2\.tif: "):
        read_scene_files([good, bad], datetime=WHEN)


def test_landsat8_folder_is_one_scene(real: Callable[[str], Path]) -> None:
    folder = real("landsat8-LC80200392015216LGN00/l8_B2.tif").parent
    (item,) = read_scene_files(sorted(folder.glob("*.tif")))
    assert item["id"] == "LC80200392015216LGN00"
    assert set(item["assets"]) == {"B2", "B3", "B4", "B5", "BQA", "MTL"}
    names = [item["assets"][k]["eo:bands"][0]["common_name"] for k in ("B2", "B3", "B4", "B5")]
    assert names == ["blue", "green", "red", "nir08"]
    assert item["properties"]["proj:shape"] == [603, 627]  # one grid: in the properties
    # From l8_MTL.txt beside the bands: the scene-centre time, cloud cover, sun angles and
    # each band's reflectance rescaling; the MTL itself as a metadata asset.
    props = item["properties"]
    assert props["datetime"] == "2015-08-04T16:19:21.791742Z"
    assert props["eo:cloud_cover"] == 11.08
    assert (props["view:sun_azimuth"], props["view:sun_elevation"]) == (115.87210674, 64.74360932)
    # TOA reflectance: (MULT x DN + ADD) / sin(sun elevation), as USGS defines it.
    sine = math.sin(math.radians(64.74360932))
    assert item["assets"]["B4"]["raster:bands"][0]["scale"] == pytest.approx(2e-05 / sine)
    assert item["assets"]["B4"]["raster:bands"][0]["offset"] == pytest.approx(-0.1 / sine)
    assert "scale" not in item["assets"]["BQA"]["raster:bands"][0]
    assert item["assets"]["MTL"] == {
        "href": str(folder / "l8_MTL.txt"), "type": "text/plain", "roles": ["metadata"],
        "title": "Landsat product metadata (MTL)"}  # fmt: skip


def test_earth_search_folder_of_band_cogs(write: Writer, tmp_path: Path) -> None:
    """Element 84's Sentinel-2 COGs on AWS: a folder named after the scene, a file per band
    (``B04.tif``, ``SCL.tif``); read through the dispatcher as one scene named after it."""
    from dafab_static.ingest import iter_records

    scene = "S2B_32TNS_20240710_0_L2A"
    (tmp_path / scene).mkdir()
    valid = tilted(60, 60).astype(np.uint16)
    for name, scale in (("B04", 900), ("B08", 3000), ("L2A_PVI", 90), ("SCL", 4)):
        write(f"{scene}/{name}.tif", valid * scale, crs="EPSG:32632")
    errors: list[str] = []
    records = list(iter_records([str(tmp_path)], on_error=errors.append, on_notice=print))
    assert errors == []
    (record,) = records
    item = record.data
    assert record.source == str(tmp_path / scene / "*")
    assert item["id"] == scene and item["collection"] == "sentinel-2-l2a"
    assert item["properties"]["platform"] == "sentinel-2b"
    assert item["properties"]["mgrs:grid_square"] == "NS"
    assert item["properties"]["datetime"] == "2024-07-10T00:00:00Z"
    assert set(item["assets"]) == {"B04", "B08", "L2A_PVI", "SCL"}
    assert item["assets"]["B08"]["eo:bands"][0]["common_name"] == "nir"


def test_sentinel2_safe_granule_is_one_scene_at_its_finest_bands(tmp_path: Path) -> None:
    """A Sentinel-2 L2A SAFE as ESA ships it: JPEG 2000 band files in ``R10m/``, ``R20m/``
    and ``R60m/``, no nodata tag (ESA's fill value is 0). One item named after the product,
    each band at its finest resolution, a footprint of the filled pixels only."""
    from dafab_static.ingest import iter_records

    safe = tmp_path / f"{S2_NAME}.SAFE"
    img = safe / "GRANULE" / "L2A_T32TNS_A038220_20240715T103245" / "IMG_DATA"
    tile = "T32TNS_20240715T103031"
    for res, bands in ((10, ("B02", "B04", "B08")), (20, ("B02", "B04", "SCL")), (60, ("SCL",))):
        size = 120 // (res // 10) if res < 60 else 20
        valid = tilted(size, size)
        for band in bands:
            pixels = np.where(valid, 4 if band == "SCL" else 1200, 0).astype(np.uint16)
            _write_jp2(img / f"R{res}m" / f"{tile}_{band}_{res}m.jp2", pixels, res)
    # Quality masks and the preview are JPEG 2000 too, but no bands of the scene.
    qi = img.parent / "QI_DATA"
    _write_jp2(qi / "MSK_CLDPRB_20m.jp2", np.full((60, 60), 3, np.uint8), 20)
    _write_jp2(qi / f"{tile}_PVI.jp2", np.full((20, 20), 9, np.uint8), 60)
    (safe / "MTD_MSIL2A.xml").write_text(MTD_MSIL2A)
    (img.parent / "MTD_TL.xml").write_text(MTD_TL)
    errors: list[str] = []
    (record,) = iter_records([str(safe)], on_error=errors.append, on_notice=print)
    assert errors == []
    item = record.data
    assert item["id"] == S2_NAME and item["collection"] == "sentinel-2-l2a"
    # From the SAFE's metadata: the granule's sensing time, cloud cover, sun angles, and the
    # baseline-04.00 rescaling (DN - 1000) / 10000 of the reflectance bands only.
    props = item["properties"]
    assert props["datetime"] == "2024-07-15T10:32:45.461Z"
    assert props["eo:cloud_cover"] == 12.5
    assert (props["view:sun_azimuth"], props["view:sun_elevation"]) == (150.25, 59.5)
    assert item["assets"]["B04"]["raster:bands"][0]["scale"] == 0.0001
    assert item["assets"]["B04"]["raster:bands"][0]["offset"] == -0.1
    assert "scale" not in item["assets"]["SCL"]["raster:bands"][0]
    assert item["assets"]["granule-metadata"]["href"].endswith("/MTD_TL.xml")
    assert item["assets"]["product-metadata"]["roles"] == ["metadata"]
    bands = {k for k, a in item["assets"].items() if "data" in a["roles"]}
    assert bands == {"B02", "B04", "B08", "SCL"}
    assert "/R10m/" in item["assets"]["B02"]["href"] and "/R20m/" in item["assets"]["SCL"]["href"]
    assert item["assets"]["B08"]["eo:bands"][0]["common_name"] == "nir"
    assert item["assets"]["B04"]["type"] == "image/jp2"
    assert item["assets"]["B04"]["raster:bands"][0]["nodata"] == 0
    assert item["assets"]["SCL"]["proj:shape"] == [60, 60]  # the 20 m grid, in its asset
    # The tilted valid area, not the whole 1.2 km tile: the 0 fill is outside it.
    square = 1200.0 * 1200.0
    assert shape(item["geometry"]).area > 0
    area = source_area(item, "EPSG:32632")
    assert 0.5 * square < area < 0.75 * square


# Shaped as ESA writes them (namespaces, nesting), cut to the fields that are read.
MTD_MSIL2A = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info><Product_Image_Characteristics>
    <QUANTIFICATION_VALUES_LIST>
      <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
      <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
    </QUANTIFICATION_VALUES_LIST>
    <BOA_ADD_OFFSET_VALUES_LIST>
      <BOA_ADD_OFFSET band_id="1">-1000</BOA_ADD_OFFSET>
      <BOA_ADD_OFFSET band_id="3">-1000</BOA_ADD_OFFSET>
      <BOA_ADD_OFFSET band_id="7">-1000</BOA_ADD_OFFSET>
    </BOA_ADD_OFFSET_VALUES_LIST>
    <Spectral_Information_List>
      <Spectral_Information bandId="1" physicalBand="B2"/>
      <Spectral_Information bandId="3" physicalBand="B4"/>
      <Spectral_Information bandId="7" physicalBand="B8"/>
    </Spectral_Information_List>
  </Product_Image_Characteristics></n1:General_Info>
  <n1:Quality_Indicators_Info>
    <Cloud_Coverage_Assessment>12.5</Cloud_Coverage_Assessment>
  </n1:Quality_Indicators_Info>
</n1:Level-2A_User_Product>
"""
MTD_TL = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd">
  <n1:General_Info><SENSING_TIME metadataLevel="Standard">2024-07-15T10:32:45.461Z</SENSING_TIME>
  </n1:General_Info>
  <n1:Geometric_Info><Tile_Angles><Mean_Sun_Angle>
    <ZENITH_ANGLE unit="deg">30.5</ZENITH_ANGLE>
    <AZIMUTH_ANGLE unit="deg">150.25</AZIMUTH_ANGLE>
  </Mean_Sun_Angle></Tile_Angles></n1:Geometric_Info>
</n1:Level-2A_Tile_ID>
"""


def _write_jp2(path: Path, pixels: npt.NDArray[Any], res: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = pixels.shape
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1,
               "dtype": pixels.dtype.name, "crs": "EPSG:32632",
               "transform": Affine(res, 0, 500000, 0, -res, 5000000)}  # fmt: skip
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(pixels[None])
        with memory.open() as dataset:
            rasterio.shutil.copy(dataset, str(path), driver="JP2OpenJPEG", REVERSIBLE="YES")
