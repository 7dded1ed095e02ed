"""Projection extension fields and pixel sizes in metres."""

from __future__ import annotations

import math

import pytest
from affine import Affine
from rasterio.crs import CRS

from dafab_static.derive.projection import projection_fields, spatial_resolution


def test_fields_of_a_utm_grid() -> None:
    fields = projection_fields(
        CRS.from_epsg(32633), Affine(10, 0, 500000, 0, -10, 6000000), (100, 200)
    )
    assert fields == {
        "proj:code": "EPSG:32633",
        "proj:bbox": [500000.0, 5999000.0, 502000.0, 6000000.0],
        "proj:shape": [100, 200],
        "proj:transform": [10.0, 0.0, 500000.0, 0.0, -10.0, 6000000.0],
    }


def test_rotated_grid_bbox_spans_all_corners() -> None:
    rotated = Affine.translation(1000, 2000) @ Affine.rotation(30) @ Affine.scale(10, -10)
    fields = projection_fields(CRS.from_epsg(32633), rotated, (10, 10))
    xs = [(rotated @ c)[0] for c in ((0, 0), (10, 0), (0, 10), (10, 10))]
    ys = [(rotated @ c)[1] for c in ((0, 0), (10, 0), (0, 10), (10, 10))]
    assert fields["proj:bbox"] == pytest.approx([min(xs), min(ys), max(xs), max(ys)])
    assert fields["proj:bbox"][2] - fields["proj:bbox"][0] > 100  # wider than unrotated


def test_crs_without_authority_gets_wkt2_and_null_code() -> None:
    crs = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=13.3 +k=0.99 +x_0=123 +y_0=0 +ellps=GRS80")
    fields = projection_fields(crs, Affine(1, 0, 0, 0, -1, 0), (1, 1))
    assert fields["proj:code"] is None
    assert fields["proj:wkt2"].startswith("PROJCRS[")
    assert CRS.from_wkt(fields["proj:wkt2"]) == crs


def test_resolution_in_metres() -> None:
    utm = CRS.from_epsg(32633)
    assert spatial_resolution(utm, Affine(10, 0, 0, 0, -10, 0), (5, 5)) == 10.0
    assert spatial_resolution(utm, Affine(20, 0, 0, 0, -5, 0), (5, 5)) == 10.0
    feet = CRS.from_epsg(2263)  # NAD83 / New York Long Island (ftUS)
    assert spatial_resolution(feet, Affine(1, 0, 0, 0, -1, 0), (1, 1)) == 0.305
    # 30 arc seconds at 60 degrees north: about 463 m wide, 927 m high.
    arcsec = 30 / 3600
    geo = spatial_resolution(CRS.from_epsg(4326), Affine(arcsec, 0, 10, 0, -arcsec, 60), (2, 2))
    assert geo == pytest.approx(math.sqrt(463.8 * 927.7), rel=2e-3)
