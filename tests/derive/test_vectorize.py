"""Masks to CRS84 GeoJSON Features: bounds, areas, simplification, specks, antimeridian."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import shape

from dafab_static.derive.vectorize import feature_collection, mask_features
from dafab_static.errors import InputError

UTM16 = "EPSG:32616"
GRID = Affine(30, 0, 600000, 0, -30, 4000000)


def vertices(feature: dict) -> int:
    geometry = shape(feature["geometry"])
    parts = getattr(geometry, "geoms", [geometry])
    return sum(len(p.exterior.coords) + sum(len(r.coords) for r in p.interiors) for p in parts)


def decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def test_a_utm_square_is_one_polygon_with_gdal_bounds() -> None:
    mask = np.zeros((120, 90), dtype=np.uint8)
    mask[10:90, 20:70] = 1
    features = mask_features(mask, GRID, UTM16, properties={"class": "cloud"})
    assert len(features) == 1
    feature = features[0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
    assert feature["properties"] == {"class": "cloud", "area_m2": 80 * 50 * 900.0}
    left, top = GRID @ (20, 10)
    right, bottom = GRID @ (70, 90)
    expected = rasterio.warp.transform_bounds(UTM16, "OGC:CRS84", left, bottom, right, top)
    assert shape(feature["geometry"]).bounds == pytest.approx(expected, abs=1e-6)
    ring = feature["geometry"]["coordinates"][0]
    assert all(decimals(v) <= 7 for point in ring for v in point)
    assert shape(feature["geometry"]).exterior.is_ccw  # RFC 7946 §3.1.6


def noisy_blob(seed: int = 3) -> np.ndarray:
    rows, cols = np.mgrid[0:200, 0:200]
    angle = np.arctan2(rows - 100, cols - 100)
    wobble = np.random.default_rng(seed).normal(0, 4, size=(200, 200))
    radius = 60 + 10 * np.sin(5 * angle) + wobble
    return np.hypot(rows - 100, cols - 100) < radius


def test_simplification_reduces_vertices_but_keeps_the_area() -> None:
    blob = noisy_blob()
    raw = mask_features(blob, GRID, UTM16, simplify_px=0, min_area_px=50)
    simple = mask_features(blob, GRID, UTM16, simplify_px=1.0, min_area_px=50)
    assert len(raw) == len(simple) == 1
    assert vertices(simple[0]) < vertices(raw[0]) / 2
    assert simple[0]["properties"]["area_m2"] == pytest.approx(
        raw[0]["properties"]["area_m2"], rel=0.02
    )


def test_small_polygons_and_holes_are_dropped() -> None:
    mask = np.zeros((50, 50), dtype=bool)
    mask[5:25, 5:25] = True
    mask[14:16, 14:15] = False  # a 2-pixel hole: filled
    mask[8:11, 30:33] = True  # 9 px: kept
    mask[40, 40] = mask[45, 10] = True  # specks: dropped
    features = mask_features(mask, GRID, UTM16, simplify_px=0, min_area_px=4)
    assert [f["properties"]["area_m2"] for f in features] == [400 * 900.0, 9 * 900.0]
    assert len(features[0]["geometry"]["coordinates"]) == 1  # no interior ring left
    everything = mask_features(mask, GRID, UTM16, simplify_px=0, min_area_px=1)
    assert len(everything) == 4
    assert len(everything[0]["geometry"]["coordinates"]) == 2  # the hole (2 px) survives


def test_max_features_keeps_the_largest() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    for i, size in enumerate((3, 6, 4, 5)):
        mask[2 : 2 + size, 2 + 9 * i : 2 + 9 * i + size] = True
    features = mask_features(mask, GRID, UTM16, simplify_px=0, max_features=2)
    assert [f["properties"]["area_m2"] for f in features] == [36 * 900.0, 25 * 900.0]


def test_a_polygon_across_the_antimeridian_is_split() -> None:
    # UTM 60N: 180 degrees east lies near easting 834 km at the equator.
    grid = Affine(1000, 0, 800000, 0, -1000, 200000)
    features = mask_features(np.ones((100, 100), dtype=bool), grid, "EPSG:32660")
    assert len(features) == 1
    geometry = features[0]["geometry"]
    assert geometry["type"] == "MultiPolygon"
    parts = [shape({"type": "Polygon", "coordinates": p}) for p in geometry["coordinates"]]
    assert sorted(math.floor(p.bounds[0]) for p in parts) == [-180, 179]
    assert all(-180 <= v <= 180 for p in parts for v in (p.bounds[0], p.bounds[2]))
    assert features[0]["properties"]["area_m2"] == 1e10  # planar, in the source CRS


def test_geographic_source_gets_a_spherical_area() -> None:
    features = mask_features(np.ones((10, 10), bool), Affine(0.1, 0, 10, 0, -0.1, 1), 4326)
    assert shape(features[0]["geometry"]).bounds == (10.0, 0.0, 11.0, 1.0)
    # One degree square on the sphere: R^2 * dlon * (sin(lat2) - sin(lat1)).
    expected = 6378137.0**2 * math.radians(1) * math.sin(math.radians(1))
    assert features[0]["properties"]["area_m2"] == pytest.approx(expected, rel=1e-6)


def test_empty_mask_and_feature_collection() -> None:
    assert mask_features(np.zeros((5, 5), bool), GRID, UTM16) == []
    features = mask_features(np.ones((5, 5), bool), GRID, UTM16, properties={"kind": "shadow"})
    collection = feature_collection(features)
    assert collection["type"] == "FeatureCollection"
    assert [f["properties"]["kind"] for f in collection["features"]] == ["shadow"]


def test_bad_inputs_name_the_culprit() -> None:
    with pytest.raises(InputError, match="mask: expected a 2-D array"):
        mask_features(np.ones((2, 5, 5), bool), GRID, UTM16)
    with pytest.raises(InputError, match="crs 'EPSG:99999999'"):
        mask_features(np.ones((5, 5), bool), GRID, "EPSG:99999999")
    with pytest.raises(InputError, match="min_area_px=-1"):
        mask_features(np.ones((5, 5), bool), GRID, UTM16, min_area_px=-1)


def test_landsat8_bqa_clouds_keep_their_pixel_area(shared_data: Path) -> None:
    with rasterio.open(shared_data / "rasters/landsat8-LC80200392015216LGN00/l8_BQA.tif") as ds:
        qa, transform, crs = ds.read(1), ds.transform, ds.crs
    high_cloud = (qa >> 14) & 3 == 3
    assert int(high_cloud.sum()) == 22776
    exact = mask_features(high_cloud, transform, crs, simplify_px=0, min_area_px=1)
    assert sum(f["properties"]["area_m2"] for f in exact) == pytest.approx(22776 * 900.0)
    assert all(f["geometry"]["type"] == "Polygon" for f in exact)
    lon, lat = shape(exact[0]["geometry"]).representative_point().coords[0]
    assert -87.5 < lon < -87.3 and 30.64 < lat < 30.82  # the crop's README bbox
    simple = mask_features(high_cloud, transform, crs)
    assert len(simple) < len(exact)  # specks under 4 px are gone
    assert sum(map(vertices, simple)) < sum(map(vertices, exact[: len(simple)]))
    assert CRS.from_user_input(crs).to_epsg() == 32616
