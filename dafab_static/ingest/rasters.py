"""Rasters to STAC Items: the I/O edge.

:func:`read_raster` opens a GeoTIFF (or any raster GDAL reads), takes decimated reads of the
validity mask and the pixels, hashes the file, and hands plain values to the pure functions
of ``dafab_static.derive`` (footprint, statistics, projection, sensors, product names). Every
failure a user's file can cause becomes an :class:`~dafab_static.errors.InputError` whose
message starts with the path; rasterio warnings never leak.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import math
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import rasterio
import rasterio.windows
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from dafab_static.derive.footprint import footprint
from dafab_static.derive.products import acquisition_datetime, find_product
from dafab_static.derive.sensors import scene_part
from dafab_static.derive.stats import band_statistics
from dafab_static.errors import InputError
from dafab_static.ingest.raster_items import Band, Part, Scene, is_url, item, names
from dafab_static.media_types import COG, GEOTIFF, JP2, PNG

#: File suffixes the dispatcher sends here (exact match; GDAL itself ignores the case).
RASTER_SUFFIXES = (".tif", ".tiff", ".TIF", ".TIFF", ".Tif", ".Tiff", ".jp2", ".JP2")
#: Longest side, in pixels, of the decimated reads behind footprints and statistics.
MAX_READ_SIZE = 1024
_MEDIA_TYPES = {"GTiff": GEOTIFF, "COG": GEOTIFF, "JP2OpenJPEG": JP2, "PNG": PNG}
_BAND_NAME_TAGS = ("BANDNAME", "BAND_NAME", "NAME")
_READ_ERRORS = (RasterioError, CPLE_BaseError, OSError)
_OPEN_LOCK = threading.Lock()
# The resolution that ends a Sentinel-2 L2A band file's name: "..._B02_10m".
_RESOLUTION = re.compile(r"_(\d{2})m$")


def read_raster(
    path: str | os.PathLike[str], *, datetime: _dt.datetime | None = None
) -> dict[str, Any]:
    """Describe one raster file as a STAC 1.1.0 Item dict.

    The item has one asset, ``data``, whose href is the absolute local path (or the URL as
    given), with the file (size, sha2-256 multihash), raster (per band: data type, nodata,
    scale/offset, unit, resolution, statistics) and, for recognised sensors, eo extensions.
    The geometry traces the valid-data mask; ``proj:*`` fields sit in the properties.
    ``links`` is empty: the tree writer adds them. No clock is read: the same file always
    gives the same item.

    Footprint and statistics come from reads decimated so that the long side is at most
    ``MAX_READ_SIZE`` pixels (GDAL uses overviews when the file has them): statistics of a
    large raster are therefore those of a nearest-neighbour sample, as ``gdalinfo -approx_stats``.

    The acquisition time is taken, first found, from: acquisition tags (``ACQUISITIONDATETIME``,
    ``DATE_ACQUIRED``..., see ``derive.products.ACQUISITION_TAGS``); the product's metadata
    files (a Landsat ``<scene>_MTL.txt`` beside the file, a Sentinel-2 SAFE's ``MTD_TL.xml``),
    which also give cloud cover, sun angles and the bands' reflectance scale and offset; the
    product name of the file or of a parent folder (Sentinel-2, Landsat); ``TIFFTAG_DATETIME``;
    and last the ``datetime`` argument. ``datetime`` is a fallback, like ``--datetime`` on the
    CLI: it never overrides what the file says.

    A file of a recognised product that marks no invalid pixels (no nodata, mask or alpha, as
    ESA's JPEG 2000 bands) takes the product's fill value, 0, as its nodata.

    Args:
        path: Local path or URL of the raster.
        datetime: Acquisition time for rasters that carry none (naive means UTC).

    Returns:
        The Item as a plain dict, ``collection`` set (``"rasters"`` for unknown sensors).

    Raises:
        InputError: the file cannot be opened or its pixels cannot be read (not a raster,
            truncated, corrupt), it is not georeferenced, it has no valid pixel, or no
            acquisition time is found and ``datetime`` is None.

    Example:
        >>> name = "S2A_MSIL2A_20240715T103031_N0510_R108_T32TNS_20240715T150000.tif"
        >>> item = read_raster(name)  # doctest: +SKIP
        >>> item["properties"]["datetime"], item["collection"]  # doctest: +SKIP
        ('2024-07-15T10:30:31Z', 'sentinel-2-l2a')
    """
    name = os.fspath(path)
    return item([_read_part(name, _product_fill(name))], datetime)


def read_scene_files(
    paths: Sequence[str | os.PathLike[str]], *, datetime: _dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Describe the per-band files of one scene (``..._B2.TIF``, ``..._QA_PIXEL.TIF``) as one Item.

    USGS ships a Landsat scene as one GeoTIFF per band and quality layer; one Item per file
    would give a pipeline no scene to compute an index on, and a search one hit per band. The
    Item has an asset per file, keyed by its part label (``B4``, ``SR_B4``, ``QA_PIXEL``, see
    ``derive.sensors.scene_part``), each with the fields :func:`read_raster` gives its
    ``data`` asset. Projection fields that all files share sit in the properties; the others
    (a 15 m panchromatic band's shape and transform) sit in their assets. The geometry is the
    union of the files' footprints. The id is the product id found in the names (the files'
    common prefix, then their folders), else that prefix.

    A band found at several resolutions (a Sentinel-2 SAFE's ``R10m/``, ``R20m/``, ``R60m/``)
    is read at the finest. The product's metadata files become metadata assets (``MTL``,
    ``product-metadata``, ``granule-metadata``); see :func:`read_raster` for what they give.
    Files that turn out not to be one scene (different CRS or acquisition times in their tags)
    are described one by one instead, as :func:`read_raster` does.

    Args:
        paths: The files, as found; at least one.
        datetime: Acquisition time for scenes that carry none (naive means UTC).

    Returns:
        One Item, or one per file when they are not one scene.

    Raises:
        InputError: as :func:`read_raster`, naming the file at fault.
    """
    names = _finest([os.fspath(p) for p in paths])
    fill = _product_fill(names[0])
    parts = [_read_part(name, fill) for name in names]
    times = {acquisition_datetime(p.scene.tags) for p in parts} - {None}
    if len(parts) == 1 or len({p.scene.crs for p in parts}) > 1 or len(times) > 1:
        return [item([part], datetime) for part in parts]
    return [item(parts, datetime)]


def _finest(paths: list[str]) -> list[str]:
    """One file per band label, the finest resolution (a Sentinel-2 L2A SAFE holds ``B02`` at
    10, 20 and 60 m, in ``R10m/``, ``R20m/``, ``R60m/``), in the given order."""
    best: dict[str, tuple[int, str]] = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        label = (scene_part(stem) or ("", stem))[1].upper()
        resolution = int(match[1]) if (match := _RESOLUTION.search(stem)) else 0
        if label not in best or resolution < best[label][0]:
            best[label] = (resolution, path)
    kept = {path for _, path in best.values()}
    return [path for path in paths if path in kept]


def _product_fill(path: str) -> float | None:
    """The fill value of the product ``path`` belongs to, for files that do not tag one:
    0 for Sentinel-2 L1C/L2A (ESA's product specification; its JP2 files carry no nodata)
    and Landsat, whose bands mark fill with 0 too."""
    stem, parents = names(path)
    return 0.0 if find_product([stem, *parents]) is not None else None


def _read_part(name: str, fill: float | None = None) -> Part:
    remote = is_url(name)
    with _user_errors(name, "cannot read raster"):
        scene = _read_scene(name, fill)
        geometry = footprint(scene.mask, scene.mask_transform, scene.crs)
    if geometry is None:
        raise InputError(f"{name}: every pixel is nodata or masked; nothing to catalog")
    files = {} if remote else _file_fields(name)
    href = name if remote else os.path.abspath(name)
    return Part(name, href, scene, geometry, files)


def _read_scene(path: str, fill: float | None = None) -> Scene:
    with _open(path) as src:
        _check_georeferenced(src, path)
        with _user_errors(path, "cannot read pixel data (truncated or corrupt file?)"):
            return _scene(src, fill)


def _open(path: str) -> Any:
    """Open a raster without leaking rasterio's NotGeoreferencedWarning.

    rasterio warns once, while opening; :func:`_check_georeferenced` reports the same fact
    as an InputError naming the file. ``warnings.catch_warnings`` swaps process-wide state,
    so opens are serialised: the dispatcher reads rasters from a thread pool.
    """
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def _scene(src: Any, fill: float | None = None) -> Scene:
    """Read what an Item says about a raster; ``fill`` is the product's fill value, used
    only when the file marks no invalid pixels of its own (no nodata, mask or alpha)."""
    rows, cols = src.height, src.width
    factor = max(1, math.ceil(max(rows, cols) / MAX_READ_SIZE))
    out = (math.ceil(rows / factor), math.ceil(cols / factor))
    unmarked = all(v is None for v in src.nodatavals) and all(
        flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums
    )
    nodatavals = list(src.nodatavals)
    if fill is not None and unmarked:
        pixels = src.read(out_shape=(src.count, *out))
        data = np.ma.MaskedArray(pixels, pixels == fill)
        mask = np.where((pixels != fill).any(axis=0), 255, 0).astype(np.uint8)
        nodatavals = [fill] * src.count
    else:
        # Averaged, not sampled: a decimated cell is valid when any pixel under it is, so
        # the footprint covers small or thin valid areas that nearest sampling stepped
        # over (a 2x2 patch in 4096^2 was "every pixel is nodata"). A lone pixel is lost
        # only past a factor of 22, where its share of a cell rounds to 0 of 255.
        mask = src.dataset_mask(out_shape=out, resampling=Resampling.average)
        data = src.read(out_shape=(src.count, *out), masked=True)
    if factor > 1:
        _read_last_blocks(src)
    valid = ~np.ma.getmaskarray(data)
    complex_data = np.issubdtype(data.dtype, np.complexfloating)
    bands = []
    for i, bidx in enumerate(src.indexes):
        names = [v for k, v in src.tags(bidx).items() if k.upper() in _BAND_NAME_TAGS]
        description = src.descriptions[i]
        bands.append(
            Band(
                dtype=src.dtypes[i],
                nodata=nodatavals[i],
                scale=src.scales[i],
                offset=src.offsets[i],
                unit=src.units[i] or "",
                labels=tuple(([description] if description else []) + names),
                statistics=None if complex_data else band_statistics(data.data[i], valid[i]),
                colour=src.colorinterp[i].name,
            )
        )
    return Scene(
        crs=src.crs,
        transform=src.transform,
        shape=(rows, cols),
        mask=mask,
        mask_transform=src.transform @ Affine.scale(cols / out[1], rows / out[0]),
        bands=tuple(bands),
        tags={**src.tags(), **src.tags(ns="IMAGERY")},
        media_type=_media_type(src),
    )


def _read_last_blocks(src: Any) -> None:
    """Read each band's last full-resolution block.

    Decimated reads come from overviews, which a COG stores before the full-resolution
    tiles: a truncated file would read fine without this check.
    """
    for bidx in src.indexes:
        block_rows, block_cols = src.block_shapes[bidx - 1]
        row = (src.height - 1) // block_rows * block_rows
        col = (src.width - 1) // block_cols * block_cols
        window = rasterio.windows.Window(col, row, src.width - col, src.height - row)
        src.read(bidx, window=window)


def _check_georeferenced(src: Any, path: str) -> None:
    if src.transform == Affine.identity():
        if src.gcps[0] or src.rpcs:
            raise InputError(
                f"{path}: georeferenced only by GCPs or RPCs; warp it to a grid first "
                "(gdalwarp), then catalog the result"
            )
        raise InputError(
            f"{path}: not georeferenced (no geotransform); assign one with gdal_edit.py"
        )
    if src.crs is None:
        raise InputError(
            f"{path}: has a geotransform but no CRS; assign one with gdal_edit.py -a_srs"
        )


def _media_type(src: Any) -> str | None:
    media_type = _MEDIA_TYPES.get(src.driver)
    if media_type != GEOTIFF:
        return media_type
    # GDAL's COG driver tags its files; older COGs (rio-cogeo, gdal_translate -co TILED=YES
    # plus gdaladdo) are recognised by their tiles and overviews. Strips have full width.
    tiled = src.block_shapes[0][1] < src.width
    layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper()
    if layout == "COG" or (tiled and src.overviews(1)):
        return COG
    return GEOTIFF


def _file_fields(path: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            size = 0
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    # Multihash: 0x12 = sha2-256, 0x20 = 32-byte digest.
    return {"file:size": size, "file:checksum": "1220" + digest.hexdigest()}


@contextlib.contextmanager
def _user_errors(path: str, what: str) -> Iterator[None]:
    """Turn GDAL/rasterio failures into one InputError naming the file and the cause."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: {what}: {_cause(exc)}") from exc


def _cause(exc: BaseException) -> str:
    """The deepest message in the chain: GDAL's own, more precise than rasterio's summary."""
    message = str(exc)
    seen: BaseException | None = exc
    while seen is not None:
        message = str(seen) or message
        seen = seen.__cause__ or seen.__context__
    return message
