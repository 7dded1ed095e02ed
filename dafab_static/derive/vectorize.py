"""Masks (cloud, shadow, a land-cover class) as RFC 7946 GeoJSON Features in CRS84.

Pure functions of (mask, transform, crs). The steps, and why:

1. trace the mask with GDAL's polygonize (4-connected; ``footprint._polygons``);
2. work in pixel units (the inverse transform): polygons under ``min_area_px`` pixels and
   holes under it are dropped, then ``simplify(preserve_topology=True)`` with a tolerance of
   ``simplify_px`` pixels turns the pixel staircase into straight edges, whatever the CRS;
3. measure ``area_m2`` in the source CRS when it is projected (planar, the CRS's metres),
   else on the sphere after reprojection;
4. reproject with :func:`footprint.to_crs84`: densify in the source CRS (a straight edge
   in UTM is a curve in longitude/latitude) to a twentieth of the feature's longest side,
   as GDAL's bounds transform does with 21 points per edge, but never below ``DENSIFY_PX``
   pixels, so small features keep few vertices; a part crossing ±180° becomes a
   MultiPolygon (the ``antimeridian`` package); ``make_valid``;
5. snap to 7 decimals (about 1 cm; RFC 7946 §11.2 advises against needless precision),
   repair again and orient exteriors counter-clockwise (RFC 7946 §3.1.6).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import shapely.affinity
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.geometry import Polygon

from dafab_static.derive.footprint import _geojson, _polygonal, _polygons, to_crs84
from dafab_static.errors import InputError

#: Decimal places of longitude/latitude: 1e-7 degrees is about 1 cm.
PRECISION = 7
#: Shortest densified segment, in pixels: the bend of a 16-pixel UTM edge in longitude and
#: latitude is far below the 1e-7 degree output grid at 30 m pixels.
DENSIFY_PX = 16
#: Default cap on the features of one mask (the largest are kept).
MAX_FEATURES = 10_000
#: Sphere radius for areas on geographic sources: WGS 84's semi-major axis, the radius
#: turf and geojson-area use with Chamberlain & Duquette's formula.
EARTH_RADIUS_M = 6_378_137.0


def mask_features(
    mask: npt.NDArray[Any],
    transform: Affine,
    crs: str | CRS,
    *,
    properties: Mapping[str, Any] | None = None,
    simplify_px: float = 1.0,
    min_area_px: int = 4,
    max_features: int = MAX_FEATURES,
) -> list[dict[str, Any]]:
    """Vectorise the True pixels of ``mask`` into GeoJSON Features in CRS84.

    Args:
        mask: (H, W) bool or integer array; non-zero pixels are traced.
        transform: Affine transform of the mask grid (pixel corner to ``crs``).
        crs: Source CRS, anything ``CRS.from_user_input`` takes ("EPSG:32616", WKT, a CRS).
        properties: Copied into every Feature's ``properties``.
        simplify_px: Simplification tolerance in pixels (0 keeps the pixel staircase).
        min_area_px: Polygons and holes smaller than this many pixels are dropped.
        max_features: At most this many Features, the largest by area.

    Returns:
        Features, largest first, each with ``properties`` plus ``area_m2`` (rounded to
        0.01 m²); geometries are Polygon or, when cut at the antimeridian, MultiPolygon.

    Raises:
        InputError: when ``mask`` is not 2-D, ``crs`` is not a CRS, or a size option is
            negative.

    Example:
        >>> m = np.zeros((4, 4), bool); m[1:3, 1:3] = True
        >>> f = mask_features(m, Affine(10, 0, 500000, 0, -10, 5e6), "EPSG:32631",
        ...                   properties={"class": "cloud"})
        >>> f[0]["properties"]
        {'class': 'cloud', 'area_m2': 400.0}
    """
    values = np.asarray(mask)
    if values.ndim != 2:
        raise InputError(f"mask: expected a 2-D array, got shape {values.shape}")
    if simplify_px < 0 or min_area_px < 0 or max_features < 0:
        raise InputError(
            f"simplify_px={simplify_px}, min_area_px={min_area_px}, "
            f"max_features={max_features}: must not be negative"
        )
    try:
        source = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    except CRSError as exc:
        raise InputError(f"crs {crs!r}: {exc}") from exc
    if not values.any():
        return []
    to_pixels = (~transform).to_shapely()
    parts = []
    for polygon in _polygons(values != 0, transform):
        pixels = shapely.affinity.affine_transform(polygon, to_pixels)
        if pixels.area >= min_area_px:
            holes = [r for r in pixels.interiors if Polygon(r).area >= min_area_px]
            parts.append(Polygon(pixels.exterior, holes))
    parts.sort(key=lambda p: -p.area)  # stable: ties keep GDAL's raster order
    features = []
    for pixels in parts[:max_features]:
        if simplify_px > 0:
            pixels = shapely.simplify(pixels, simplify_px, preserve_topology=True)
        region = shapely.affinity.affine_transform(pixels, transform.to_shapely())
        lonlat = to_crs84(region, source, max_segment_length=_segment(region, transform))
        snapped = shapely.make_valid(shapely.set_precision(lonlat, 10.0**-PRECISION))
        if snapped.is_empty or snapped.area == 0:
            continue  # a part thinner than the 1e-7 degree grid (centimetre pixels) collapses
        lonlat = _polygonal(snapped)
        lonlat = shapely.orient_polygons(lonlat, exterior_cw=False)
        area = _projected_area(region, source)
        if area is None:
            area = _spherical_area(lonlat)
        features.append(
            {
                "type": "Feature",
                "geometry": _geojson(lonlat, PRECISION),
                "properties": {**(properties or {}), "area_m2": round(area, 2)},
            }
        )
    return features


def feature_collection(features: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap Features in an RFC 7946 FeatureCollection.

    Example:
        >>> feature_collection([])
        {'type': 'FeatureCollection', 'features': []}
    """
    return {"type": "FeatureCollection", "features": [dict(f) for f in features]}


def _segment(region: Any, transform: Affine) -> float:
    minx, miny, maxx, maxy = region.bounds
    pixel = math.sqrt(abs(transform.determinant))
    return float(max(max(maxx - minx, maxy - miny) / 20, DENSIFY_PX * pixel))


def _projected_area(region: Any, crs: CRS) -> float | None:
    """Planar area in square metres, or None when ``crs`` has no linear unit (geographic)."""
    if not crs.is_projected:
        return None
    try:
        _, metres = crs.linear_units_factor
    except CRSError:
        return None
    return float(region.area) * float(metres) ** 2


def _spherical_area(lonlat: Any) -> float:
    """Area on the sphere of a CRS84 (Multi)Polygon, square metres.

    Ring area by Chamberlain & Duquette 2007, "Some algorithms for polygons on a sphere"
    (JPL Publication 07-03), eq. for the spherical excess: R²/2 · |Σ (λ₂-λ₁)(2 + sin φ₁ + sin φ₂)|.
    """

    def ring(coords: Any) -> float:
        xy = np.radians(np.asarray(coords, dtype=np.float64)[:, :2])
        lon, lat = xy[:, 0], xy[:, 1]
        total = np.sum((lon[1:] - lon[:-1]) * (2 + np.sin(lat[:-1]) + np.sin(lat[1:])))
        return abs(float(total)) * EARTH_RADIUS_M**2 / 2

    area = 0.0
    for polygon in getattr(lonlat, "geoms", [lonlat]):
        area += ring(polygon.exterior.coords)
        area -= sum(ring(r.coords) for r in polygon.interiors)
    return area if math.isfinite(area) else 0.0
