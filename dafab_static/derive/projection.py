"""Projection extension fields and pixel size in metres, from a raster's grid.

Pure functions of (crs, transform, shape): no file is opened here.
"""

from __future__ import annotations

import math
from typing import Any

from affine import Affine
from pyproj import Geod
from rasterio.crs import CRS

#: The projection extension version these fields follow.
PROJECTION_SCHEMA = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"

_GEOD = Geod(ellps="WGS84")


def projection_fields(crs: CRS, transform: Affine, shape: tuple[int, int]) -> dict[str, Any]:
    """Build the projection extension v2.0.0 fields of a raster grid.

    ``proj:code`` is ``AUTHORITY:CODE`` when the CRS has one (``EPSG:32633``); otherwise it
    is null and ``proj:wkt2`` carries the CRS. ``proj:bbox`` spans all four corners, so it
    stays right for rotated grids.

    Args:
        crs: The raster's CRS.
        transform: Affine transform from pixel corners to ``crs``.
        shape: ``(rows, cols)``.

    Returns:
        ``proj:code`` (and ``proj:wkt2`` when needed), ``proj:bbox``, ``proj:shape`` and
        ``proj:transform`` (the first six coefficients, as GDAL and rasterio order them).

    Raises:
        rasterio.errors.CRSError: when the CRS cannot be exported (a bad CRS).

    Example:
        >>> fields = projection_fields(CRS.from_epsg(32633), Affine(10, 0, 5e5, 0, -10, 6e6),
        ...                            (100, 200))
        >>> fields["proj:code"], fields["proj:bbox"]
        ('EPSG:32633', [500000.0, 5999000.0, 502000.0, 6000000.0])
    """
    rows, cols = shape
    authority = crs.to_authority()
    fields: dict[str, Any] = {"proj:code": ":".join(authority) if authority else None}
    if authority is None:
        fields["proj:wkt2"] = crs.to_wkt(version="WKT2_2019")
    corners = [transform @ corner for corner in ((0, 0), (cols, 0), (0, rows), (cols, rows))]
    xs, ys = zip(*corners, strict=True)
    fields["proj:bbox"] = [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]
    fields["proj:shape"] = [int(rows), int(cols)]
    fields["proj:transform"] = [float(v) for v in tuple(transform)[:6]]
    return fields


def spatial_resolution(crs: CRS, transform: Affine, shape: tuple[int, int]) -> float | None:
    """Return the mean pixel size in metres (``raster:bands[].spatial_resolution``).

    Projected CRS: the square root of the pixel area, times the CRS unit in metres.
    Geographic CRS: the geodesic width and height of the centre pixel on WGS84 (good to a
    fraction of a percent for any datum). Other CRS kinds give None.

    Args:
        crs: The raster's CRS.
        transform: Affine transform of the grid.
        shape: ``(rows, cols)``, to find the centre pixel of a geographic grid.

    Returns:
        Metres, rounded to the millimetre, or None.

    Raises:
        Nothing for valid CRS objects.

    Example:
        >>> spatial_resolution(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), (1, 1))
        10.0
    """
    if crs.is_projected:
        _, factor = crs.linear_units_factor
        return round(math.sqrt(abs(transform.determinant)) * float(factor), 3)
    if crs.is_geographic:
        rows, cols = shape
        col, row = cols // 2, rows // 2
        x0, y0 = transform @ (col, row)
        x1, y1 = transform @ (col + 1, row)
        x2, y2 = transform @ (col, row + 1)
        _, _, width = _GEOD.inv(x0, y0, x1, y1)
        _, _, height = _GEOD.inv(x0, y0, x2, y2)
        return round(math.sqrt(float(width) * float(height)), 3)
    return None
