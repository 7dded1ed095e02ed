"""Footprints traced from masks: area, holes, specks, orientation, antimeridian, bbox."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
import rasterio.warp
import shapely
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import shape

from dafab_static.derive.footprint import data_region, footprint, geometry_bbox, to_crs84

UTM33 = CRS.from_epsg(32633)
GRID = Affine(10, 0, 500000, 0, -10, 5000000)


def tilted(rows: int, cols: int, degrees: float = 12.0) -> npt.NDArray[np.uint8]:
    """A rotated rectangle of valid pixels (255) inside a nodata border (0)."""
    y, x = np.mgrid[0:rows, 0:cols]
    u, v = (x + 0.5) / cols - 0.5, (y + 0.5) / rows - 0.5
    a = math.radians(degrees)
    along, across = u * math.cos(a) + v * math.sin(a), -u * math.sin(a) + v * math.cos(a)
    return np.where((abs(along) < 0.4) & (abs(across) < 0.4), 255, 0).astype(np.uint8)


def test_square_region_is_exact() -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[2:6, 3:9] = 255
    region = data_region(mask, GRID)
    assert region.bounds == (500030.0, 4999940.0, 500090.0, 4999980.0)
    assert region.area == 24 * 100.0


def test_tilted_region_area_matches_the_valid_pixels() -> None:
    mask = tilted(300, 400)
    region = data_region(mask, GRID)
    valid_area = np.count_nonzero(mask) * 100.0
    # Never less than the valid pixels, at most a pixel's width around them more.
    assert valid_area <= region.area <= valid_area + region.length * 10.0
    assert region.area == pytest.approx(valid_area, rel=0.02)
    assert region.area < 0.8 * shapely.box(*region.bounds).area
    # Simplified: a handful of vertices, not the pixel staircase.
    assert len(region.exterior.coords) < 40


def test_small_holes_and_specks_are_dropped_big_ones_kept() -> None:
    mask = np.full((200, 200), 255, np.uint8)
    mask[50, 50] = 0  # one bad pixel: dropped
    mask[100:160, 100:160] = 0  # a lake masked out: 9 % of the area, kept
    mask[0:2, 199] = 0
    region = data_region(mask, GRID)
    assert region.geom_type == "Polygon"
    assert len(region.interiors) == 1
    # The lake's outline, or up to a pixel inside it (the footprint is grown to cover every
    # valid pixel the simplification cut off elsewhere).
    assert 58 * 58 * 100.0 <= shapely.Polygon(region.interiors[0]).area <= 3600 * 100.0

    specks = np.zeros((200, 200), np.uint8)
    specks[20:180, 20:180] = 255
    specks[195, 195] = 255  # a stray valid pixel in the border
    assert data_region(specks, GRID).geom_type == "Polygon"


def test_two_large_parts_make_a_multipolygon() -> None:
    mask = np.zeros((100, 100), np.uint8)
    mask[10:40, 10:40] = 255
    mask[60:90, 60:90] = 255
    region = data_region(mask, GRID)
    assert region.geom_type == "MultiPolygon"
    assert len(region.geoms) == 2


def test_empty_mask_has_no_region() -> None:
    assert data_region(np.zeros((5, 5), np.uint8), GRID) is None
    assert footprint(np.zeros((5, 5), np.uint8), GRID, UTM33) is None


def test_mask_must_be_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        data_region(np.zeros((1, 5, 5), np.uint8), GRID)


def test_footprint_is_ccw_rounded_and_matches_in_source_crs() -> None:
    mask = tilted(300, 400)
    geometry = footprint(mask, GRID, UTM33)
    assert geometry is not None and geometry["type"] == "Polygon"
    polygon = shape(geometry)
    assert polygon.is_valid
    assert polygon.exterior.is_ccw
    for x, y in geometry["coordinates"][0]:
        assert round(x, 7) == x and round(y, 7) == y
    back = shape(rasterio.warp.transform_geom("OGC:CRS84", UTM33, geometry))
    assert back.area == pytest.approx(np.count_nonzero(mask) * 100.0, rel=0.02)


@pytest.mark.parametrize("degrees", [0.0, 7.0, 12.0, 33.0])
def test_every_valid_pixel_is_inside_the_footprint(degrees: float) -> None:
    """Douglas-Peucker cuts inward too: RGB.byte.tif had 76 valid pixel centres outside its
    footprint, and a point search there missed the scene."""
    mask = tilted(300, 400, degrees)
    mask[40:43, 200:260] = 255  # a thin spur, and a disc's round edge
    y, x = np.mgrid[0:300, 0:400]
    mask[(x - 120) ** 2 + (y - 220) ** 2 < 70**2] = 255
    region = data_region(mask, GRID)
    rows, cols = np.nonzero(mask)

    def points(c: npt.NDArray[np.float64], r: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
        g = GRID
        return shapely.points(g.c + g.a * c + g.b * r, g.f + g.d * c + g.e * r)

    assert shapely.covers(region, points(cols + 0.5, rows + 0.5)).all()
    # Pixel corners too: the whole pixel is inside, not only its centre.
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        assert shapely.covers(region.buffer(1e-6), points(cols + dx, rows + dy)).all()


def test_geographic_grid_keeps_its_corners() -> None:
    geometry = footprint(
        np.full((10, 10), 255, np.uint8), Affine(0.1, 0, 10, 0, -0.1, 50), CRS.from_epsg(4326)
    )
    assert geometry is not None and geometry["type"] == "Polygon"
    ring = geometry["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    assert sorted(map(tuple, ring[:-1])) == [(10.0, 49.0), (10.0, 50.0), (11.0, 49.0), (11.0, 50.0)]
    assert shapely.LinearRing(ring).is_ccw


def test_long_utm_edges_are_densified() -> None:
    box = shapely.box(300000, 5000000, 700000, 5400000)  # 400 km square in UTM 33N
    lonlat = to_crs84(box, UTM33)
    assert len(lonlat.exterior.coords) > 60
    # Densified in UTM, the southern edge (a straight line in the projection, not a
    # parallel) bows north: its middle lies about 0.03 degrees north of its corners.
    south = [(x, y) for x, y in lonlat.exterior.coords if y < 45.2]
    corner_lat = min(y for _, y in south)
    middle_lat = min(south, key=lambda p: abs(p[0] - 15.0))[1]
    assert middle_lat - corner_lat > 0.02


def test_a_tall_strip_west_of_the_antimeridian_is_not_stretched_round_the_globe() -> None:
    """UTM zone 1, 200 km x 6,900 km: GDAL 3.10's own cutting made one part span
    -180..180 (the width of the globe), GDAL 3.9's did so for every crossing footprint."""
    grid = Affine(1000, 0, 200000, 0, -1000, 7000000)
    geometry = footprint(np.full((6900, 200), 255, np.uint8), grid, CRS.from_epsg(32601))
    assert geometry is not None and geometry["type"] == "MultiPolygon"
    parts = [shape({"type": "Polygon", "coordinates": p}) for p in geometry["coordinates"]]
    widths = sorted(p.bounds[2] - p.bounds[0] for p in parts)
    assert len(parts) == 2 and widths[-1] < 5.0, widths
    assert sorted(round(p.bounds[0]) for p in parts) == [-180, 177]


def test_a_scene_around_the_pole_caps_it() -> None:
    """1,000 km square centred on the North Pole (polar stereographic): its ring runs
    round every longitude, so the footprint is the cap above its lowest latitude."""
    grid = Affine(10000, 0, -500000, 0, -10000, 500000)
    geometry = footprint(np.full((100, 100), 255, np.uint8), grid, CRS.from_epsg(3413))
    assert geometry is not None and geometry["type"] == "Polygon"
    cap = shape(geometry)
    west, south, east, north = cap.bounds
    assert (west, east, north) == (-180.0, 180.0, 90.0) and 83.0 < south < 84.0
    assert cap.is_valid and cap.contains(shapely.Point(0.0, 89.0))


def test_antimeridian_cut_into_two_parts() -> None:
    zone60 = CRS.from_epsg(32660)
    grid = Affine(500, 0, 650000, 0, -500, 5600000)  # 177 E central meridian, 150 km wide
    geometry = footprint(np.full((200, 300), 255, np.uint8), grid, zone60)
    assert geometry is not None and geometry["type"] == "MultiPolygon"
    parts = [shape({"type": "Polygon", "coordinates": p}) for p in geometry["coordinates"]]
    assert len(parts) == 2
    assert all(p.is_valid and p.exterior.is_ccw for p in parts)
    east, west = sorted(parts, key=lambda p: -p.bounds[0])
    assert east.bounds[0] > 179.0 and east.bounds[2] == 180.0
    assert west.bounds[0] == -180.0 and west.bounds[2] < -178.5
    west_lon, south, east_lon, north = geometry_bbox(geometry)
    assert west_lon == east.bounds[0] and east_lon == west.bounds[2]
    assert west_lon > east_lon  # RFC 7946 section 5.2
    assert 49.5 < south < north < 50.6


@pytest.mark.parametrize(
    ("origin", "parts", "bbox"),
    [
        ((175.0, 10.0), 2, [175.0, 8.0, -175.0, 10.0]),  # a lon/lat grid running past 180
        ((-185.0, 10.0), 2, [175.0, 8.0, -175.0, 10.0]),  # and past -180
        ((170.0, 95.0), 1, [170.0, 88.0, 180.0, 90.0]),  # and past the pole
    ],
)
def test_a_lon_lat_grid_past_the_world_is_folded_and_split(
    origin: tuple[float, float], parts: int, bbox: list[float]
) -> None:
    """GDAL's cutting left such footprints reaching lon 185 or lat 95 (RFC 7946 allows
    neither), and a search at -178 missed them."""
    grid = Affine(0.1, 0, origin[0], 0, -0.1, origin[1])
    geometry = footprint(np.full((70 if origin[1] > 90 else 20, 100), 255, np.uint8), grid,
                         CRS.from_epsg(4326))  # fmt: skip
    assert geometry is not None
    found = shape(geometry)
    assert len(getattr(found, "geoms", [found])) == parts and found.is_valid
    west, south, east, north = found.bounds
    assert west >= -180 and east <= 180 and south >= -90 and north <= 90
    assert geometry_bbox(geometry) == pytest.approx(bbox)


@pytest.mark.parametrize(
    ("geometry", "bbox"),
    [
        ({"type": "Point", "coordinates": [1.5, 2.0]}, [1.5, 2.0, 1.5, 2.0]),
        (
            {"type": "Polygon", "coordinates": [[[-34.9, -8.0], [-34.8, -8.0], [-34.8, -7.9],
                                                 [-34.9, -8.0]]]},
            [-34.9, -8.0, -34.8, -7.9],
        ),
        (
            {"type": "Polygon", "coordinates": [[[-10, 0], [10, 0], [10, 5], [-10, 0]]]},
            [-10.0, 0.0, 10.0, 5.0],
        ),
        (
            {"type": "MultiPolygon", "coordinates": [
                [[[179.5, 0], [180, 0], [180, 1], [179.5, 0]]],
                [[[-180, 0], [-179.6, 0], [-180, 1], [-180, 0]]],
            ]},
            [179.5, 0.0, -179.6, 1.0],
        ),
        (
            {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90],
                                                 [-180, -90]]]},
            [-180.0, -90.0, 180.0, 90.0],
        ),
    ],
)  # fmt: skip
def test_geometry_bbox(geometry: dict[str, object], bbox: list[float]) -> None:
    assert geometry_bbox(geometry) == bbox


def test_bbox_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no coordinates"):
        geometry_bbox({"type": "MultiPolygon", "coordinates": []})


@pytest.mark.parametrize("shape_", [(1, 1), (1, 100), (100, 1)])
def test_a_region_one_pixel_thick_keeps_its_area(shape_: tuple[int, int]) -> None:
    """Simplifying with a one-pixel tolerance cut a lone pixel, or a one-pixel line, into
    a triangle of half its area, and a search at a point inside it found nothing."""
    grid = Affine(0.001, 0, 10, 0, -0.001, 50)
    region = data_region(np.full(shape_, 255, np.uint8), grid)
    assert region is not None
    assert region.area == pytest.approx(shape_[0] * shape_[1] * 1e-6, rel=1e-9)


def test_a_pixel_near_another_part_is_still_inside() -> None:
    """Found by fuzzing: a traced corner measured against the nearest part of a
    MultiPolygon was near another part than its own, and pixel (0, 15) stayed outside."""
    rows = ["01011101011111110101110001", "11010100010010111011111111"]
    mask = np.array([[255 if c == "1" else 0 for c in r] for r in rows], np.uint8)
    grid = Affine(10, 0, 0, 0, -10, 400)
    for fraction in (0.0, 1e-3):
        region = data_region(mask, grid, min_area_fraction=fraction)
        assert region.is_valid and region.covers(shapely.Point(155, 395)), fraction
