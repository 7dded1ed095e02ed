"""Pooling Satellite Embedding V1 style rasters over footprints, on real COGs written here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
import rasterio.shutil
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling

from dafab_static.derive.product_embedding import dequantize_google_int8, pool_product_embedding
from dafab_static.errors import InputError, OptionError

CRS = "EPSG:32631"  # UTM 31N
X0, Y0, PIXEL = 500_000.0, 4_500_000.0, 10.0
SIZE = 200
GRID = Affine(PIXEL, 0.0, X0, 0.0, -PIXEL, Y0)
NODATA_ROWS = slice(0, 10)  # rows 0-9 of region A hold nodata
HOLE = (slice(60, 70), slice(120, 130))  # a 10x10 nodata hole inside region B


def quantize_google_int8(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int8]:
    """Google's int8 encoding, the inverse of the package's de-quantisation."""
    q = np.round(np.sign(values) * np.sqrt(np.abs(values)) * 127.5)
    return np.clip(q, -127, 127).astype(np.int8)


def _unit(seed: int) -> npt.NDArray[np.float64]:
    v = np.random.default_rng(seed).normal(size=64)
    return v / np.linalg.norm(v)


A, B = _unit(1), _unit(2)
QA, QB = quantize_google_int8(A), quantize_google_int8(B)
# What the file really holds after quantisation, the reference for exact expectations.
DA, DB = (
    dequantize_google_int8(QA).astype(np.float64),
    dequantize_google_int8(QB).astype(np.float64),
)


def write_product(path: Path, *, bands: int = 64, dtype: str = "int8") -> Path:
    """A 200x200 10 m COG: left half vector A, right half vector B, two nodata patches."""
    data = np.empty((64, SIZE, SIZE), dtype=np.int8)
    data[:, :, : SIZE // 2] = QA[:, None, None]
    data[:, :, SIZE // 2 :] = QB[:, None, None]
    data[:, NODATA_ROWS, : SIZE // 2] = -128
    data[:, HOLE[0], HOLE[1]] = -128
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": bands,
        "dtype": dtype,
        "crs": CRS,
        "transform": GRID,
        "nodata": -128 if dtype == "int8" else None,
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
    }
    plain = path.with_suffix(".plain.tif")
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(data[:bands].astype(dtype))
        dst.build_overviews([2, 4], Resampling.nearest)
    rasterio.shutil.copy(plain, path, driver="COG")
    plain.unlink()
    return path


def footprint(col0: float, row0: float, col1: float, row1: float) -> dict[str, Any]:
    """A CRS84 polygon over pixel columns/rows [col0, col1) x [row0, row1) of the product."""
    x0, x1 = X0 + col0 * PIXEL, X0 + col1 * PIXEL
    y0, y1 = Y0 - row0 * PIXEL, Y0 - row1 * PIXEL
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    geom = rasterio.warp.transform_geom(
        CRS, "OGC:CRS84", {"type": "Polygon", "coordinates": [ring]}
    )
    return dict(geom)


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_product(tmp_path_factory.mktemp("aef") / "product.tif")


def _unit_mean(*weighted: tuple[int, npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    total = sum(n * v for n, v in weighted)
    return np.asarray(total / np.linalg.norm(total))


def test_written_product_is_a_cog_with_overviews(product: Path) -> None:
    with rasterio.open(product) as src:
        assert (src.count, src.dtypes[0], src.nodata) == (64, "int8", -128)
        assert src.overviews(1) == [2, 4]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_dequantization_round_trips() -> None:
    q = np.arange(-127, 128, dtype=np.int8)
    assert np.array_equal(quantize_google_int8(dequantize_google_int8(q)), q)
    known = dequantize_google_int8(np.array([127, -127, 0, 64, -1], dtype=np.int8))
    expected = [(127 / 127.5) ** 2, -((127 / 127.5) ** 2), 0.0, (64 / 127.5) ** 2, -(1 / 127.5**2)]
    assert known.dtype == np.float32
    assert known.tolist() == pytest.approx(expected, rel=1e-6)
    v = np.linspace(-1, 1, 1001)
    # A signed square root spends the steps on small values: error <= half a step there.
    assert np.abs(dequantize_google_int8(quantize_google_int8(v)) - v).max() < 0.008
    assert float(np.dot(DA, A) / np.linalg.norm(DA)) > 0.999


def test_footprint_inside_region_a(product: Path) -> None:
    out = pool_product_embedding(product, footprint(20, 30, 80, 90))
    assert out is not None
    assert out.shape == (64,) and out.dtype == np.float32
    assert float(np.linalg.norm(out)) == pytest.approx(1.0, abs=1e-6)
    assert float(out @ A) > 0.999
    assert np.allclose(out, DA / np.linalg.norm(DA), atol=1e-6)


def test_footprint_straddling_gives_weighted_mean(product: Path) -> None:
    # Columns 50-149, rows 50-149: 100 x 50 pixels of A, 100 x 50 of B less the 10x10 hole.
    out = pool_product_embedding(product, footprint(50, 50, 150, 150))
    assert out is not None
    assert np.allclose(out, _unit_mean((5000, DA), (4900, DB)), atol=1e-6)
    # And not the unweighted mean, nor a mean that counted the hole as vectors.
    assert not np.allclose(out, _unit_mean((5000, DA), (5000, DB)), atol=1e-4)


def test_nodata_pixels_are_ignored(product: Path) -> None:
    # Rows 0-39 of region A; rows 0-9 are nodata (-128 in every band, a huge vector if read).
    out = pool_product_embedding(product, footprint(10, 0, 90, 40))
    assert out is not None
    assert np.allclose(out, DA / np.linalg.norm(DA), atol=1e-6)
    counted = pool_product_embedding(product, footprint(10, 0, 90, 40), nodata=999)
    assert counted is not None and float(counted @ A) < 0.5


def test_file_nodata_used_when_none_given(product: Path) -> None:
    out = pool_product_embedding(product, footprint(10, 0, 90, 40), nodata=None)
    assert out is not None and np.allclose(out, DA / np.linalg.norm(DA), atol=1e-6)


def test_footprint_outside_or_all_nodata_is_none(product: Path) -> None:
    assert pool_product_embedding(product, footprint(300, 300, 350, 350)) is None
    assert pool_product_embedding(product, footprint(-80, 20, -10, 60)) is None
    assert pool_product_embedding(product, footprint(10, 1, 60, 9)) is None


def test_footprint_partly_outside_uses_the_part_inside(product: Path) -> None:
    out = pool_product_embedding(product, footprint(150, -50, 260, 50))
    assert out is not None and np.allclose(out, DB / np.linalg.norm(DB), atol=1e-6)


def test_tiny_footprint_and_point_use_touched_pixel(product: Path) -> None:
    tiny = pool_product_embedding(product, footprint(30.2, 50.2, 30.4, 50.4))
    assert tiny is not None and np.allclose(tiny, DA / np.linalg.norm(DA), atol=1e-6)
    lon, lat = rasterio.warp.transform(CRS, "OGC:CRS84", [X0 + 1705.0], [Y0 - 505.0])
    point = {"type": "Point", "coordinates": [lon[0], lat[0]]}
    out = pool_product_embedding(product, point)
    assert out is not None and np.allclose(out, DB / np.linalg.norm(DB), atol=1e-6)


def test_large_window_is_read_decimated(product: Path) -> None:
    whole = footprint(0, 0, 200, 200)
    full = pool_product_embedding(product, whole)
    small = pool_product_embedding(product, whole, max_size=50)
    assert full is not None and small is not None
    assert np.allclose(full, _unit_mean((100 * 190, DA), (100 * 200 - 100, DB)), atol=1e-6)
    # The 4x overview samples one pixel in 16: counts shift a little, the direction barely.
    assert float(small @ full) > 0.9999
    assert not np.array_equal(small, full)


def test_float_product_with_dequantize_none(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    profile = {
        "driver": "GTiff", "width": 20, "height": 20, "count": 64, "dtype": "float32",
        "crs": CRS, "transform": GRID, "nodata": None,
    }  # fmt: skip
    data = np.broadcast_to(A.astype(np.float32)[:, None, None], (64, 20, 20)).copy()
    data[:, :5, :] = np.nan
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    out = pool_product_embedding(path, footprint(0, 0, 20, 20), dequantize="none", nodata=None)
    assert out is not None and np.allclose(out, A, atol=1e-6)
    with pytest.raises(InputError, match=r"float\.tif: bands are \['float32'\], 'google-int8'"):
        pool_product_embedding(path, footprint(0, 0, 20, 20))


def test_wrong_band_count(tmp_path: Path) -> None:
    path = write_product(tmp_path / "three.tif", bands=3)
    with pytest.raises(InputError, match=r"three\.tif: has 3 bands, an embedding product needs 64"):
        pool_product_embedding(path, footprint(0, 0, 10, 10))


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(InputError, match=r"junk\.tif: cannot read raster"):
        pool_product_embedding(junk, footprint(0, 0, 10, 10))
    with pytest.raises(InputError, match=r"absent\.tif: cannot read raster"):
        pool_product_embedding(tmp_path / "absent.tif", footprint(0, 0, 10, 10))


def test_bad_options_and_geometry(product: Path) -> None:
    with pytest.raises(OptionError, match="dequantize must be"):
        pool_product_embedding(product, footprint(0, 0, 10, 10), dequantize="linear")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="max_size must be at least 1"):
        pool_product_embedding(product, footprint(0, 0, 10, 10), max_size=0)
    with pytest.raises(InputError, match="geometry must be a GeoJSON geometry"):
        pool_product_embedding(product, {"coordinates": [1, 2]})


def test_bottom_up_grid(tmp_path: Path) -> None:
    # Source Cooperative's copy stores rows south to north (positive y resolution).
    path = tmp_path / "bottom-up.tif"
    data = np.empty((64, 20, 20), dtype=np.int8)
    data[:, :10, :] = QB[:, None, None]  # rows 0-9: the south half
    data[:, 10:, :] = QA[:, None, None]
    profile = {
        "driver": "GTiff", "width": 20, "height": 20, "count": 64, "dtype": "int8", "crs": CRS,
        "transform": Affine(PIXEL, 0.0, X0, 0.0, PIXEL, Y0 - 20 * PIXEL), "nodata": -128,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    north = pool_product_embedding(path, footprint(2, 1, 18, 9))  # footprint rows count down
    assert north is not None and np.allclose(north, DA / np.linalg.norm(DA), atol=1e-6)
    south = pool_product_embedding(path, footprint(2, 11, 18, 19))
    assert south is not None and np.allclose(south, DB / np.linalg.norm(DB), atol=1e-6)


def test_invalid_geometry_is_input_error(product: Path) -> None:
    feature = {"type": "Feature", "geometry": footprint(0, 0, 10, 10), "properties": {}}
    with pytest.raises(InputError, match=r"geometry cannot be reprojected to .*product\.tif"):
        pool_product_embedding(product, feature)
