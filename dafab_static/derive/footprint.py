"""Footprints: the valid-data area of a raster as an RFC 7946 geometry in CRS84.

Pure functions of (mask, transform, crs). The steps, and why:

1. vectorise the mask (GDAL's polygonize through ``rasterio.features.shapes``,
   4-connected) and union the parts;
2. drop holes and parts smaller than ``min_area_fraction`` of the valid area (speckle in
   the nodata border, single bad pixels inside the scene): a footprint is for search, and a
   thousand-vertex ring per stray pixel helps nobody;
3. simplify with a tolerance of one mask pixel, so the pixel staircase becomes straight
   edges, then grow the result by as far as the traced outline pokes out of it (at most
   that pixel, within the grid), so that it contains every valid pixel;
4. densify in the source CRS, because a straight edge in UTM is a curve in longitude and
   latitude (GDAL's bounds transform uses 21 points per edge for the same reason);
5. reproject with GDAL, and split a ring that crosses ±180° into a MultiPolygon (the
   ``antimeridian`` package; see :func:`to_crs84` for why not GDAL's own cutting);
6. repair, orient counter-clockwise (RFC 7946 §3.1.6) and round to ``precision`` decimals.
"""

from __future__ import annotations

from typing import Any

import antimeridian
import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.features
import rasterio.warp
import shapely
import shapely.affinity
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from shapely.geometry import MultiPolygon, Polygon, shape

#: Decimal places of longitude/latitude: 1e-7 degrees is about 1 cm.
PRECISION = 7
#: Holes and parts below this share of the valid area are dropped.
MIN_AREA_FRACTION = 1e-3
#: Edges are split so that the raster's longest side holds at least this many segments.
DENSIFY_SEGMENTS = 20

_CRS84 = "OGC:CRS84"

Geometry = Any  # a shapely geometry (shapely ships no type stubs)


def data_region(
    mask: npt.NDArray[Any],
    transform: Affine,
    *,
    min_area_fraction: float = MIN_AREA_FRACTION,
) -> Geometry | None:
    """Trace the valid pixels of ``mask`` as a simplified (Multi)Polygon in the source CRS.

    Args:
        mask: 2-D array, non-zero where the raster holds data (GDAL's 0/255 dataset mask,
            or booleans). It may be a decimated read: ``transform`` must match its grid.
        transform: Affine transform of the mask grid (pixel corner to source CRS).
        min_area_fraction: Holes and parts smaller than this share of the valid area are
            dropped; parts are only dropped while a larger one remains.

    Returns:
        A valid shapely Polygon or MultiPolygon, or None when no pixel is valid.

    Raises:
        ValueError: when ``mask`` is not 2-D (a caller bug).

    Example:
        >>> m = np.zeros((4, 4), np.uint8); m[1:3, 1:3] = 255
        >>> data_region(m, Affine(10, 0, 0, 0, -10, 40)).bounds
        (10.0, 10.0, 30.0, 30.0)
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    valid = mask != 0
    if not valid.any():
        return None
    region = shapely.union_all(_polygons(valid, transform))
    pixel_area = abs(transform.determinant)
    min_area = max(min_area_fraction * region.area, pixel_area)
    region = _drop_small(region, min_area)
    pixel_size = pixel_area**0.5
    simplified = shapely.simplify(region, pixel_size, preserve_topology=True)
    # Douglas-Peucker moves an edge by up to the tolerance, inward as well as outward: the
    # simplified outline left valid pixels outside the footprint (76 pixel centres of
    # RGB.byte.tif; up to 5 source pixels deep on a decimated read), and a point search
    # missed the scene. It is grown by as far as the traced outline pokes out (at most
    # the tolerance; nothing for a rectangle), then clipped to the traced outline's
    # bounds and the grid, so that straight data edges, and the bbox, stay where they are:
    # every traced pixel is inside, and the vertex count is about the same.
    corners = shapely.points(shapely.get_coordinates(region))
    reach = float(shapely.distance(corners, simplified).max())
    if reach > 0:
        grown = simplified.buffer(reach, join_style="mitre")
        limit = shapely.intersection(shapely.box(*region.bounds), _grid(mask.shape, transform))
        simplified = shapely.intersection(grown, limit)
        # A traced corner measured against the nearest part of a MultiPolygon can be near
        # another part than its own, so the growth can fall short (1 mask in 1500 in a
        # fuzz run): then the traced pixels themselves are added back.
        if shapely.difference(region, simplified).area > 1e-6 * pixel_area:
            simplified = shapely.union(simplified, region)
    region = simplified
    return _polygonal(shapely.make_valid(region))


def to_crs84(region: Geometry, crs: CRS, *, max_segment_length: float | None = None) -> Geometry:
    """Reproject a source-CRS (Multi)Polygon to CRS84, cut at the antimeridian.

    Args:
        region: shapely Polygon or MultiPolygon in ``crs``.
        crs: Source coordinate reference system.
        max_segment_length: Densify edges to this length (source CRS units) before the
            transform; None densifies to 1/``DENSIFY_SEGMENTS`` of the region's longest side.
            Geographic sources are not densified (their edges stay straight in CRS84).

    Returns:
        A valid shapely Polygon or MultiPolygon in longitude/latitude, split at ±180°.

    Raises:
        rasterio.errors.CRSError: when GDAL cannot transform from ``crs`` (a bad CRS).

    Example:
        >>> box = shapely.box(500000, 5000000, 510000, 5010000)
        >>> round(to_crs84(box, CRS.from_epsg(32633)).bounds[0], 4)
        15.0
    """
    if not crs.is_geographic:
        if max_segment_length is None:
            minx, miny, maxx, maxy = region.bounds
            max_segment_length = max(maxx - minx, maxy - miny) / DENSIFY_SEGMENTS
        if max_segment_length > 0:
            region = shapely.segmentize(region, max_segment_length)
    # Geographic sources: longitudes past ±180 (a 0..360 grid) are what GDAL's cut is for.
    # (rasterio refuses an explicit antimeridian_cutting=False on GDAL >= 2.2.)
    cut = {"antimeridian_cutting": True} if crs.is_geographic else {}
    geojson = rasterio.warp.transform_geom(crs, _CRS84, shapely.geometry.mapping(region), **cut)
    result = shape(geojson)
    if not crs.is_geographic and _wraps_around(result):
        # Not GDAL's antimeridian_cutting: it returns a part spanning -180..180 (the whole
        # globe's width) for a UTM zone 1 strip with GDAL 3.10, and for every crossing
        # footprint with GDAL 3.9 (rasterio 1.4.3's wheels). The antimeridian package (as
        # stactools uses) splits the transformed rings where longitude jumps by more than
        # 180 degrees, and gives the same answer on both.
        result = shape(antimeridian.fix_shape(geojson, fix_winding=True))
    result = _into_world(shapely.remove_repeated_points(result))
    if not result.is_valid:
        result = shapely.make_valid(result)
    return _polygonal(result)


def _into_world(geometry: Geometry) -> Geometry:
    """``geometry`` with longitudes past ±180 folded back and split there, and latitudes
    cut at ±90. A longitude/latitude grid may run on past 180 (a 0..360 world, a scene
    over the Pacific at 175..185): GDAL's antimeridian cutting left such footprints
    reaching 185 (rasterio 1.4, GDAL 3.10), which RFC 7946 does not allow, and a search
    at -178 missed them."""
    west, south, east, north = geometry.bounds
    if west >= -180 and east <= 180 and south >= -90 and north <= 90:
        return geometry
    pieces = []
    for shift in (-360.0, 0.0, 360.0):
        piece = geometry.intersection(shapely.box(-180 - shift, -90, 180 - shift, 90))
        if not piece.is_empty:
            pieces.append(shapely.affinity.translate(piece, xoff=shift))
    return _polygonal(shapely.union_all(pieces))


def _wraps_around(geometry: Geometry) -> bool:
    """Whether a CRS84 (Multi)Polygon's longitudes span over 180°: a ring that wrapped
    around at ±180 (a footprint, however large, covers less than a hemisphere's width)."""
    west, _, east, _ = geometry.bounds
    return bool(east - west > 180.0)


def footprint(
    mask: npt.NDArray[Any],
    transform: Affine,
    crs: CRS,
    *,
    min_area_fraction: float = MIN_AREA_FRACTION,
    precision: int = PRECISION,
) -> dict[str, Any] | None:
    """Compute the RFC 7946 footprint geometry of a raster's valid data.

    Args:
        mask: 2-D validity mask (non-zero = data), possibly decimated.
        transform: Affine transform of the mask grid.
        crs: CRS of ``transform``.
        min_area_fraction: See :func:`data_region`.
        precision: Decimal places kept in longitude and latitude.

    Returns:
        A GeoJSON Polygon or MultiPolygon dict (lists, counter-clockwise exteriors), or None
        when no pixel is valid.

    Raises:
        rasterio.errors.CRSError: when GDAL cannot transform from ``crs``.

    Example:
        >>> m = np.full((10, 10), 255, np.uint8)
        >>> geometry_bbox(footprint(m, Affine(0.1, 0, 10, 0, -0.1, 50), CRS.from_epsg(4326)))
        [10.0, 49.0, 11.0, 50.0]
    """
    region = data_region(mask, transform, min_area_fraction=min_area_fraction)
    if region is None:
        return None
    lonlat = to_crs84(region, crs)
    # Snapping to the output grid can collapse a sliver: set_precision keeps it valid.
    lonlat = _polygonal(shapely.set_precision(lonlat, 10.0**-precision))
    lonlat = shapely.orient_polygons(lonlat, exterior_cw=False)
    return _geojson(lonlat, precision)


def union_footprints(
    geometries: list[dict[str, Any]], *, precision: int = PRECISION
) -> dict[str, Any]:
    """The footprint of several files of one scene: the union of theirs, finished as
    :func:`footprint` finishes one (valid, counter-clockwise, rounded).

    Example:
        >>> a = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]]}
        >>> b = {"type": "Polygon", "coordinates": [[[1, 0], [3, 0], [3, 1], [1, 1], [1, 0]]]}
        >>> geometry_bbox(union_footprints([a, b]))
        [0.0, 0.0, 3.0, 1.0]
    """
    if all(g == geometries[0] for g in geometries[1:]):
        return geometries[0]  # the usual case: every band has the same valid area
    union = shapely.union_all([shape(g) for g in geometries])
    union = _polygonal(shapely.set_precision(union, 10.0**-precision))
    return _geojson(shapely.orient_polygons(union, exterior_cw=False), precision)


def geometry_bbox(geometry: dict[str, Any]) -> list[float]:
    """Compute the RFC 7946 bbox of a CRS84 geometry, west > east across the antimeridian.

    Each part covers a longitude interval; the bbox is the complement of the widest gap
    between them on the circle. A geometry cut at ±180° (one part ending at 180, one
    starting at -180) thus gets ``[179.5, s, -179.6, n]`` (RFC 7946 §5.2), while a geometry
    spanning the whole world keeps ``[-180, s, 180, n]``.

    Args:
        geometry: GeoJSON geometry dict in longitude/latitude.

    Returns:
        ``[west, south, east, north]``.

    Raises:
        ValueError: when the geometry has no coordinates.

    Example:
        >>> geometry_bbox({"type": "Point", "coordinates": [1.5, 2.0]})
        [1.5, 2.0, 1.5, 2.0]
    """
    geom = shape(geometry)
    if geom.is_empty:
        raise ValueError("geometry has no coordinates")
    west, south, east, north = (float(v) for v in geom.bounds)
    spans = sorted((float(p.bounds[0]), float(p.bounds[2])) for p in getattr(geom, "geoms", [geom]))
    merged: list[list[float]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    wrap_gap = merged[0][0] + 360.0 - merged[-1][1]
    gaps = [(merged[i + 1][0] - merged[i][1], i) for i in range(len(merged) - 1)]
    if gaps and max(gaps)[0] > wrap_gap:
        _, i = max(gaps)
        west, east = merged[i + 1][0], merged[i][1]
    return [west, south, east, north]


def _grid(shape: tuple[int, ...], transform: Affine) -> Polygon:
    """The raster grid's outline in the source CRS (a parallelogram when rotated)."""
    rows, cols = shape[0], shape[1]
    return Polygon([transform @ corner for corner in ((0, 0), (cols, 0), (cols, rows), (0, rows))])


def _polygons(valid: npt.NDArray[np.bool_], transform: Affine) -> list[Polygon]:
    """Vectorise the valid pixels (GDALPolygonize, 4-connected) into source-CRS polygons.

    rasterio wraps a NumPy source in a MemoryDataset whose creation silences a
    NotGeoreferencedWarning with ``warnings.catch_warnings()``: process-wide state that
    rasters read in parallel threads clobber (seen as leaked warnings under ``-W error``).
    A georeferenced in-memory GTiff band takes the same GDAL path without it.
    """
    rows, cols = valid.shape
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "uint8"}
    with MemoryFile() as memory, memory.open(**profile, transform=transform) as dataset:
        dataset.write(valid.astype(np.uint8), 1)
        band = rasterio.band(dataset, 1)
        found = rasterio.features.shapes(band, mask=band, transform=transform, connectivity=4)
        return [shape(geom) for geom, _ in found]


def _drop_small(region: Geometry, min_area: float) -> Geometry:
    parts = list(getattr(region, "geoms", [region]))
    kept = []
    for part in parts:
        holes = [ring for ring in part.interiors if Polygon(ring).area >= min_area]
        kept.append(Polygon(part.exterior, holes))
    big = [p for p in kept if p.area >= min_area]
    if not big:
        big = [max(kept, key=lambda p: p.area)]
    return big[0] if len(big) == 1 else MultiPolygon(big)


def _polygonal(geom: Geometry) -> Geometry:
    """Keep the polygons of a geometry (make_valid may add lines or points at cuts)."""
    if isinstance(geom, Polygon | MultiPolygon):
        return geom.geoms[0] if isinstance(geom, MultiPolygon) and len(geom.geoms) == 1 else geom
    parts: list[Polygon] = []
    for part in getattr(geom, "geoms", []):
        if isinstance(part, Polygon):
            parts.append(part)
        elif isinstance(part, MultiPolygon):
            parts.extend(part.geoms)
    if not parts:
        raise ValueError(f"geometry has no polygonal part: {geom.geom_type}")
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _geojson(geom: Geometry, precision: int) -> dict[str, Any]:
    def ring(r: Any) -> list[list[float]]:
        return [[round(x, precision) + 0.0, round(y, precision) + 0.0] for x, y in r.coords]

    def polygon(p: Polygon) -> list[list[list[float]]]:
        return [ring(p.exterior), *(ring(i) for i in p.interiors)]

    if isinstance(geom, Polygon):
        return {"type": "Polygon", "coordinates": polygon(geom)}
    return {"type": "MultiPolygon", "coordinates": [polygon(p) for p in geom.geoms]}
