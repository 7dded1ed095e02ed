"""64-bit integer rasters build beside float ones: their statistics and nodata stay within
what the month's index columns hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dafab_static
from dafab_static.options import BuildOptions

rasterio = pytest.importorskip("rasterio")


def _write(path: Path, data: np.ndarray, nodata: float | None = None) -> None:
    from rasterio.transform import Affine

    with rasterio.open(
        path, "w", driver="GTiff", width=16, height=16, count=1, dtype=data.dtype.name,
        crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 5000000), nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(data, 1)


def test_uint64_and_float_rasters_share_a_month(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ids = np.full((16, 16), 1152960724113404058, np.uint64)
    ids[0, 0] = 2**64 - 1
    _write(src / "ids.tif", ids)
    _write(src / "reflectance.tif", np.full((16, 16), 0.5, np.float32))
    out = tmp_path / "cat"
    report = dafab_static.build(
        [str(src)], str(out), options=BuildOptions(datetime="2024-07-15T00:00:00Z")
    )
    assert report.items == 2 and not report.skipped, report.skipped
    bands = {}
    for path in out.rglob("*.json"):
        doc = json.loads(path.read_text())
        if doc.get("type") == "Feature":
            bands[doc["id"]] = doc["assets"]["data"]["raster:bands"][0]
    stats = bands["ids"]["statistics"]
    assert stats["minimum"] == pytest.approx(1152960724113404058.0)
    assert stats["maximum"] == pytest.approx(2.0**64)
    assert dafab_static.validate(str(out)).ok


def test_a_nodata_beyond_2_53_stays_the_double_rasterio_gives() -> None:
    from dafab_static.ingest.raster_items import _nodata

    assert _nodata(float(2**64 - 1), "uint64") == 2.0**64  # int() made it 2^64: no uint64
    assert isinstance(_nodata(float(2**64 - 1), "uint64"), float)
    assert _nodata(-32768.0, "int16") == -32768 and isinstance(_nodata(-32768.0, "int16"), int)
