"""One embedding per footprint, pooled from an existing embedding product raster.

The product is Google's Satellite Embedding V1 (AlphaEarth Foundations, Brown et al. 2025),
annual, 10 m: 64 bands ``A00``..``A63`` holding, per pixel, a vector of unit length. Its
Cloud Storage release (``gs://alphaearth_foundations``, also mirrored on Source Cooperative)
stores COGs of int8 with nodata -128 ("if it is present in one channel, it will be present
in all channels") and overviews whose pixels are "the mean of the highest-resolution
pixels under that overview pixel, where the mean's magnitude has been normalized to have
length 1": Google's README, https://developers.google.com/earth-engine/guides/aef_on_gcs_readme.

Pooling follows the same rule as those overviews: average the de-quantised unit vectors
over the footprint's valid pixels, then renormalise the mean to unit length. The mean of
unit vectors points to their common direction and its length says how much they agree;
renormalising keeps the direction, so the result compares by cosine like any pixel.

The only I/O is reading the raster; everything after the read is a function of the pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.enums
import rasterio.errors
import rasterio.features
import rasterio.warp
import rasterio.windows
import shapely.affinity
import shapely.geometry
from affine import Affine

from dafab_static.errors import InputError, OptionError

__all__ = ["PRODUCT_BANDS", "dequantize_google_int8", "pool_product_embedding"]

#: Bands of a Satellite Embedding V1 raster.
PRODUCT_BANDS = 64
#: Google's int8 scale: ``q = sign(v) * sqrt(|v|) * 127.5``, so ``|q| <= 127.5``.
_GOOGLE_SCALE = 127.5

Dequantize = Literal["google-int8", "none"]


def dequantize_google_int8(values: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Map Satellite Embedding V1 int8 values to their native range [-1, 1].

    ``value = (q / 127.5) ** 2 * sign(q)``: the release stores a signed square root, which
    spends the 8 bits more evenly on the small components of a 64-d unit vector. Google's
    README above describes the mapping; its text was not readable from here past the
    nodata paragraph, so the formula is as quoted, with the same constants, by the
    independent implementations we found: allenai's OlmoEarth quantisation ("matching
    AlphaEarth", citing Brown et al. 2025, section S8.1: ``QUANTIZE_POWER = 2.0``,
    ``QUANTIZE_SCALE = 127.5``, values clamped to [-127, 127], -128 reserved for nodata)
    and AEF readers that cite Google's GCS README for it. Nodata (-128) is not special
    here: the caller masks it first.

    Args:
        values: integer array, any shape.

    Returns:
        float32 array of the same shape.

    Example:
        >>> [round(float(v), 4) for v in dequantize_google_int8(np.array([127, -64, 0]))]
        [0.9922, -0.252, 0.0]
    """
    q = values.astype(np.float32)
    out: npt.NDArray[np.float32] = np.square(q / np.float32(_GOOGLE_SCALE)) * np.sign(q)
    return out


def pool_product_embedding(
    raster: str | os.PathLike[str],
    geometry: Mapping[str, Any],
    *,
    dequantize: Dequantize = "google-int8",
    nodata: float | None = -128,
    max_size: int = 2048,
) -> npt.NDArray[np.float32] | None:
    """Average an embedding product over a footprint into one unit vector.

    Reads only the window covering the footprint; when that window is wider or taller than
    ``max_size`` pixels it is read decimated to fit (GDAL then reads from the COG's
    overviews, which for this product are themselves renormalised means). A pixel counts
    when its centre lies inside the footprint and no band holds ``nodata``; a footprint
    too small to contain any pixel centre falls back to the pixels it touches.

    Args:
        raster: path or URL of a 64-band product raster (anything rasterio opens).
        geometry: GeoJSON geometry in CRS84 (longitude, latitude).
        dequantize: ``"google-int8"`` for Google's int8 release (bands must be int8),
            ``"none"`` for a raster already holding the float values.
        nodata: the masked value; None to use the raster's own nodata, if any.
        max_size: most rows or columns read; 64 bytes a pixel in int8, so 2048 reads at
            most 256 MiB. Each float32 band of that size takes 16 MiB more while summed.

    Returns:
        float32 ``(64,)`` of unit length, or None when the footprint misses the raster or
        covers no valid pixel.

    Raises:
        InputError: the raster cannot be opened, has no CRS, does not have 64 bands, is not
            int8 under ``"google-int8"``, or ``geometry`` is not a GeoJSON geometry.
        OptionError: unknown ``dequantize`` or ``max_size`` below 1.

    Example:
        >>> pool_product_embedding(  # doctest: +SKIP
        ...     "2024/31N/x.tiff", {"type": "Point", "coordinates": [3.0, 43.0]})
        array([ 0.031, -0.118, ...], dtype=float32)
    """
    if dequantize not in ("google-int8", "none"):
        raise OptionError(f"dequantize must be 'google-int8' or 'none', got {dequantize!r}")
    if max_size < 1:
        raise OptionError(f"max_size must be at least 1, got {max_size}")
    if not isinstance(geometry, Mapping) or "type" not in geometry:
        raise InputError(f"geometry must be a GeoJSON geometry object, got {geometry!r:.80}")
    name = os.fspath(raster)
    try:
        with rasterio.open(name) as src:
            _check(src, name, dequantize)
            try:
                footprint = rasterio.warp.transform_geom("OGC:CRS84", src.crs, dict(geometry))
            except (ValueError, KeyError, TypeError, rasterio.errors.RasterioError) as exc:
                raise InputError(f"geometry cannot be reprojected to {name}: {exc}") from exc
            window = _window(src, footprint)
            if window is None:
                return None
            data, transform = _read(src, window, max_size)
            fill = src.nodata if nodata is None else nodata
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{name}: cannot read raster: {exc}") from exc
    inside = _inside(footprint, data.shape[1:], transform)
    valid = inside
    if fill is not None and not (isinstance(fill, float) and math.isnan(fill)):
        valid = valid & (data != fill).all(axis=0)
    if dequantize == "none":
        valid = valid & np.isfinite(data).all(axis=0)
    count = int(valid.sum())
    if count == 0:
        return None
    mean = np.empty(data.shape[0], dtype=np.float64)
    for band, values in enumerate(data):
        picked = values[valid]
        floats = dequantize_google_int8(picked) if dequantize == "google-int8" else picked
        mean[band] = float(np.sum(floats, dtype=np.float64)) / count
    norm = float(np.linalg.norm(mean))
    # Vectors that cancel out have no common direction to report.
    if not norm > 1e-12:
        return None
    out: npt.NDArray[np.float32] = (mean / norm).astype(np.float32)
    return out


def check_product(raster: str | os.PathLike[str], dequantize: Dequantize = "google-int8") -> None:
    """Open the product once and check its band count, type and CRS, so that a wrong
    raster is one error before any scene is read, not the same error for every item.

    Raises:
        InputError: naming the raster and what is wrong with it.
    """
    name = os.fspath(raster)
    try:
        with rasterio.open(name) as src:
            _check(src, name, dequantize)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{name}: cannot read raster: {exc}") from exc


def _check(src: Any, name: str, dequantize: Dequantize) -> None:
    if src.count != PRODUCT_BANDS:
        raise InputError(
            f"{name}: has {src.count} bands, an embedding product needs {PRODUCT_BANDS}"
        )
    if dequantize == "google-int8" and set(src.dtypes) != {"int8"}:
        raise InputError(
            f"{name}: bands are {sorted(set(src.dtypes))}, 'google-int8' needs int8 "
            "(pass dequantize='none' for a float product)"
        )
    if src.crs is None:
        raise InputError(f"{name}: has no CRS, so the footprint cannot be placed on it")


def _window(src: Any, footprint: Mapping[str, Any]) -> rasterio.windows.Window | None:
    """The pixel window around ``footprint`` (raster CRS), clipped; None when outside."""
    shape = shapely.geometry.shape(footprint)
    if shape.is_empty:
        return None
    # Bounds taken in pixel space, so a rotated or bottom-up grid (positive y resolution, as
    # in the Source Cooperative copy of this product) needs no special case.
    pixels = shapely.affinity.affine_transform(shape, (~src.transform).to_shapely())
    left, top, right, bottom = pixels.bounds
    col0, col1 = max(math.floor(left), 0), min(math.ceil(right), src.width)
    row0, row1 = max(math.floor(top), 0), min(math.ceil(bottom), src.height)
    # A point, or a line on a pixel edge, still touches one pixel: widen empty windows.
    if col1 <= col0 and 0 <= col0 < src.width:
        col1 = col0 + 1
    if row1 <= row0 and 0 <= row0 < src.height:
        row1 = row0 + 1
    if col1 <= col0 or row1 <= row0:
        return None
    return rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)


def _read(
    src: Any, window: rasterio.windows.Window, max_size: int
) -> tuple[npt.NDArray[Any], Affine]:
    """The window's pixels, decimated to at most ``max_size`` a side, and their transform."""
    height, width = int(window.height), int(window.width)
    scale = max(height, width) / max_size
    if scale <= 1:
        return src.read(window=window), _grid(src.transform, window, 1.0, 1.0)
    out_h, out_w = max(1, math.ceil(height / scale)), max(1, math.ceil(width / scale))
    # Nearest keeps every value a real product vector (bilinear would blend int8 codes
    # across the non-linear de-quantisation) and lets GDAL pick the matching overview.
    data = src.read(
        window=window,
        out_shape=(src.count, out_h, out_w),
        resampling=rasterio.enums.Resampling.nearest,
    )
    return data, _grid(src.transform, window, width / out_w, height / out_h)


def _grid(transform: Affine, window: rasterio.windows.Window, sx: float, sy: float) -> Affine:
    """The transform of ``window`` read with pixels ``sx`` x ``sy`` times the source's.

    Written out because ``Affine.__mul__`` warns (PendingDeprecationWarning) from affine
    3.0 on, ``@`` is missing before it, and rasterio's ``window_transform`` uses ``*``.
    """
    a, b, c, d, e, f = (
        transform.a,
        transform.b,
        transform.c,
        transform.d,
        transform.e,
        transform.f,
    )
    col, row = window.col_off, window.row_off
    return Affine(a * sx, b * sy, a * col + b * row + c, d * sx, e * sy, d * col + e * row + f)


def _inside(
    footprint: Mapping[str, Any], shape: tuple[int, ...], transform: Affine
) -> npt.NDArray[np.bool_]:
    """Pixels whose centre is in the footprint; those it touches when no centre is."""
    out_shape = (int(shape[0]), int(shape[1]))
    for all_touched in (False, True):
        inside: npt.NDArray[np.bool_] = rasterio.features.geometry_mask(
            [footprint],
            out_shape=out_shape,
            transform=transform,
            invert=True,
            all_touched=all_touched,
        )
        if inside.any():
            break
    return inside
