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
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.windows
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from dafab_static.derive.footprint import footprint, geometry_bbox, union_footprints
from dafab_static.derive.mtl import parse_mtl
from dafab_static.derive.products import (
    Product,
    acquisition_datetime,
    creation_datetime,
    find_product,
    format_datetime,
    tag_platform,
)
from dafab_static.derive.projection import (
    PROJECTION_SCHEMA,
    projection_fields,
    spatial_resolution,
)
from dafab_static.derive.safe import parse_safe
from dafab_static.derive.sensors import PLATFORMS, eo_bands, scene_part, stem_band_label
from dafab_static.derive.stats import band_statistics
from dafab_static.errors import InputError

#: File suffixes the dispatcher sends here (exact match; GDAL itself ignores the case).
RASTER_SUFFIXES = (".tif", ".tiff", ".TIF", ".TIFF", ".Tif", ".Tiff", ".jp2", ".JP2")
#: Longest side, in pixels, of the decimated reads behind footprints and statistics.
MAX_READ_SIZE = 1024
#: Parent folders searched for a product id (a SAFE granule's band sits 5 levels down).
PRODUCT_SEARCH_DEPTH = 5
#: Collection of rasters whose product is not recognised.
DEFAULT_COLLECTION = "rasters"

_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
_FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
_MGRS = "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json"
_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
_VIEW = "https://stac-extensions.github.io/view/v1.0.0/schema.json"
_GEOTIFF = "image/tiff; application=geotiff"
_MEDIA_TYPES = {"GTiff": _GEOTIFF, "COG": _GEOTIFF, "JP2OpenJPEG": "image/jp2", "PNG": "image/png"}
_DATA_TYPES = {"complex64": "cfloat32", "complex128": "cfloat64", "complex_int16": "cint16"}
_BAND_NAME_TAGS = ("BANDNAME", "BAND_NAME", "NAME")
_READ_ERRORS = (RasterioError, CPLE_BaseError, OSError)
_OPEN_LOCK = threading.Lock()
# The resolution that ends a Sentinel-2 L2A band file's name: "..._B02_10m".
_RESOLUTION = re.compile(r"_(\d{2})m$")


@dataclass(frozen=True)
class _Band:
    dtype: str
    nodata: float | None
    scale: float
    offset: float
    unit: str
    labels: tuple[str, ...]
    statistics: dict[str, float] | None
    colour: str = ""  # GDAL colour interpretation: "red", "gray", "undefined"...


@dataclass(frozen=True)
class _Scene:
    crs: CRS
    transform: Affine
    shape: tuple[int, int]
    mask: npt.NDArray[np.uint8]
    mask_transform: Affine
    bands: tuple[_Band, ...]
    tags: dict[str, str]
    media_type: str | None


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
    return _item([_read_part(name, _product_fill(name))], datetime)


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
        return [_item([part], datetime) for part in parts]
    return [_item(parts, datetime)]


@dataclass(frozen=True)
class _Part:
    """One file read: where it is, what it holds, where its data is."""

    path: str
    href: str
    scene: _Scene
    geometry: dict[str, Any]
    files: dict[str, Any]


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
    stem, parents = _names(path)
    return 0.0 if find_product([stem, *parents]) is not None else None


def _read_part(name: str, fill: float | None = None) -> _Part:
    remote = _is_url(name)
    with _user_errors(name, "cannot read raster"):
        scene = _read_scene(name, fill)
        geometry = footprint(scene.mask, scene.mask_transform, scene.crs)
    if geometry is None:
        raise InputError(f"{name}: every pixel is nodata or masked; nothing to catalog")
    files = {} if remote else _file_fields(name)
    href = name if remote else os.path.abspath(name)
    return _Part(name, href, scene, geometry, files)


def _read_scene(path: str, fill: float | None = None) -> _Scene:
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


def _scene(src: Any, fill: float | None = None) -> _Scene:
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
        mask = src.dataset_mask(out_shape=out)
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
            _Band(
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
    return _Scene(
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
    if media_type != _GEOTIFF:
        return media_type
    # GDAL's COG driver tags its files; older COGs (rio-cogeo, gdal_translate -co TILED=YES
    # plus gdaladdo) are recognised by their tiles and overviews. Strips have full width.
    tiled = src.block_shapes[0][1] < src.width
    layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper()
    if layout == "COG" or (tiled and src.overviews(1)):
        return f"{_GEOTIFF}; profile=cloud-optimized"
    return _GEOTIFF


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


def _item(parts: list[_Part], fallback: _dt.datetime | None) -> dict[str, Any]:
    """The Item of one file (asset ``data``) or of one scene's per-band files."""
    first = parts[0]
    stem, parents = _names(first.path)
    split = scene_part(stem) if len(parts) > 1 else None
    product = find_product([split[0] if split else stem, *parents])
    platform = product.platform if product else tag_platform(first.scene.tags)
    known = PLATFORMS.get(platform) if platform else None
    instruments = product.instruments if product else (known.instruments if known else ())
    sidecar = _mtl(first.path, product) or _safe(first.path)
    facts = sidecar[1] if sidecar else None
    when = _acquired(first.path, first.scene.tags, product, fallback, facts)

    properties: dict[str, Any] = {"datetime": format_datetime(when)}
    if platform:
        properties["platform"] = platform
    constellation = product.constellation if product else (known.constellation if known else None)
    if constellation:
        properties["constellation"] = constellation
    if instruments:
        properties["instruments"] = list(instruments)
    extensions = {PROJECTION_SCHEMA, _RASTER}
    if product and product.mgrs_tile:
        tile = product.mgrs_tile
        properties["mgrs:utm_zone"] = int(tile[:2])
        properties["mgrs:latitude_band"] = tile[2]
        properties["mgrs:grid_square"] = tile[3:]
        extensions.add(_MGRS)
    if facts:
        properties.update(_sidecar_properties(facts, extensions))
    grids = [projection_fields(p.scene.crs, p.scene.transform, p.scene.shape) for p in parts]
    shared = {k: v for k, v in grids[0].items() if all(g.get(k) == v for g in grids[1:])}
    properties.update(shared)

    assets: dict[str, Any] = {}
    for part, grid in zip(parts, grids, strict=True):
        part_stem = _names(part.path)[0]
        label = (scene_part(part_stem) or ("", part_stem))[1]
        asset = _asset(part, part_stem, instruments, extensions)
        asset.update({k: v for k, v in grid.items() if k not in shared})
        if facts:
            _rescale(asset, facts, label)
        assets[label if split else "data"] = asset
    if sidecar and split:
        assets.update(sidecar[0])

    if split:
        item_id = product.id if product else (split[0].rstrip("_") or parents[0])
        geometry = union_footprints([p.geometry for p in parts])
    else:
        item_id = product.id if product and stem in (product.id, f"{product.id}.SAFE") else stem
        geometry = first.geometry
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": sorted(extensions),
        "id": item_id,
        "geometry": geometry,
        "bbox": geometry_bbox(geometry),
        "properties": properties,
        "links": [],
        "assets": assets,
        "collection": product.collection if product else DEFAULT_COLLECTION,
    }


def _asset(
    part: _Part, stem: str, instruments: tuple[str, ...], extensions: set[str]
) -> dict[str, Any]:
    """One file's asset: href, media type, file and raster fields, eo bands when known."""
    scene = part.scene
    asset: dict[str, Any] = {"href": part.href}
    if scene.media_type:
        asset["type"] = scene.media_type
    asset["roles"] = ["data"]
    if part.files:
        asset.update(part.files)
        extensions.add(_FILE)
    resolution = spatial_resolution(scene.crs, scene.transform, scene.shape)
    asset["raster:bands"] = [_raster_band(band, resolution) for band in scene.bands]
    stem_label = stem_band_label(stem) if len(scene.bands) == 1 else None
    labels = [[*band.labels, *([stem_label] if stem_label else [])] for band in scene.bands]
    if eo := eo_bands(instruments, labels) or _colour_bands(scene.bands):
        asset["eo:bands"] = eo
        extensions.add(_EO)
    return asset


def _colour_bands(bands: tuple[_Band, ...]) -> list[dict[str, Any]]:
    """``eo:bands`` of an RGB(A) picture of an unknown sensor, from GDAL's colour
    interpretation: the common names say which band is red, green and blue (no wavelengths
    are claimed)."""
    colours = [b.colour for b in bands if b.colour != "alpha"]
    if sorted(colours) != ["blue", "green", "red"]:
        return []
    return [
        {"name": b.colour, "common_name": b.colour} if b.colour != "alpha" else {"name": "alpha"}
        for b in bands
    ]


class _SceneFacts(Protocol):
    """What a product's metadata files add to its band files (Landsat MTL, Sentinel-2 SAFE)."""

    @property
    def datetime(self) -> _dt.datetime | None: ...
    @property
    def cloud_cover(self) -> float | None: ...
    @property
    def sun_azimuth(self) -> float | None: ...
    @property
    def sun_elevation(self) -> float | None: ...
    def rescaling(self, label: str) -> tuple[float, float, str] | None: ...


#: Assets for a product's metadata files, by key, and what they say.
_Sidecar = tuple[dict[str, dict[str, Any]], _SceneFacts]


def _safe(path: str) -> _Sidecar | None:
    """The metadata of the Sentinel-2 SAFE a band file sits in (``MTD_MSIL2A.xml`` at its
    root, ``MTD_TL.xml`` in its granule), parsed, if the file is in one."""
    if _is_url(path):
        return None
    folders = Path(os.path.abspath(path)).parents
    root = next((f for f in list(folders)[:PRODUCT_SEARCH_DEPTH] if f.name.endswith(".SAFE")), None)
    if root is None:
        return None
    granule = next((f.parent for f in folders if f.name == "IMG_DATA"), None)
    files = {
        "product-metadata": next((root / n for n in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml")
                                  if (root / n).is_file()), None),
        "granule-metadata": granule / "MTD_TL.xml" if granule else None,
    }  # fmt: skip
    texts = {key: _small_text(str(f)) if f else None for key, f in files.items()}
    if not any(texts.values()):
        return None
    assets = {
        key: {"href": str(files[key]), "type": "application/xml", "roles": ["metadata"],
              "title": f"Sentinel-2 {key.replace('-', ' ')} (SAFE)"}
        for key, text in texts.items() if text
    }  # fmt: skip
    return assets, parse_safe(texts["product-metadata"], texts["granule-metadata"])


def _small_text(path: str) -> str | None:
    """A metadata file's text (its first MiB), or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return None


def _mtl(path: str, product: Product | None) -> _Sidecar | None:
    """The Landsat MTL file beside a band file (``<scene>_MTL.txt``), parsed, if there is one."""
    if _is_url(path):
        return None
    folder, stem = os.path.split(os.path.abspath(path))
    prefix = (scene_part(os.path.splitext(stem)[0]) or ("", ""))[0]
    names = [f"{prefix}_MTL.txt"] if prefix else []
    names += [f"{product.id}_MTL.txt"] if product and product.constellation == "landsat" else []
    for name in names:
        candidate = os.path.join(folder, name)
        if (text := _small_text(candidate)) is not None:
            asset = {"href": candidate, "type": "text/plain", "roles": ["metadata"],
                     "title": "Landsat product metadata (MTL)"}  # fmt: skip
            return {"MTL": asset}, parse_mtl(text)
    return None


def _sidecar_properties(facts: _SceneFacts, extensions: set[str]) -> dict[str, Any]:
    """Cloud cover and sun angles of a product's metadata as STAC eo and view fields."""
    out: dict[str, Any] = {}
    if facts.cloud_cover is not None:
        out["eo:cloud_cover"] = facts.cloud_cover
        extensions.add(_EO)
    if facts.sun_azimuth is not None and 0 <= facts.sun_azimuth < 360:
        out["view:sun_azimuth"] = facts.sun_azimuth
    if facts.sun_elevation is not None and -90 <= facts.sun_elevation <= 90:
        out["view:sun_elevation"] = facts.sun_elevation
    if "view:sun_azimuth" in out or "view:sun_elevation" in out:
        extensions.add(_VIEW)
    return out


def _rescale(asset: dict[str, Any], facts: _SceneFacts, label: str) -> None:
    """Give a one-band asset the product metadata's reflectance (or kelvin) scale and
    offset, unless the file carries its own."""
    bands = asset.get("raster:bands", [])
    rescaling = facts.rescaling(label) if len(bands) == 1 else None
    if rescaling is None or "scale" in bands[0]:
        return
    bands[0]["scale"], bands[0]["offset"] = rescaling[0], rescaling[1]
    if rescaling[2]:
        bands[0]["unit"] = rescaling[2]


def _acquired(
    path: str,
    tags: dict[str, str],
    product: Product | None,
    fallback: _dt.datetime | None,
    facts: _SceneFacts | None = None,
) -> _dt.datetime:
    when = acquisition_datetime(tags) or (facts.datetime if facts else None)
    when = when or (product.datetime if product else None)
    when = when or creation_datetime(tags) or fallback
    if when is None:
        raise InputError(
            f"{path}: no acquisition time in the raster's tags or product name; "
            "pass --datetime (datetime= in Python)"
        )
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def _raster_band(band: _Band, resolution: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"data_type": _DATA_TYPES.get(band.dtype, band.dtype)}
    if band.nodata is not None:
        out["nodata"] = _nodata(band.nodata, band.dtype)
    if band.scale != 1.0 or band.offset != 0.0:
        out["scale"] = band.scale
        out["offset"] = band.offset
    if band.unit:
        out["unit"] = band.unit
    if resolution is not None:
        out["spatial_resolution"] = resolution
    if band.statistics is not None:
        out["statistics"] = band.statistics
    return out


def _nodata(value: float, dtype: str) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if "int" in dtype and value.is_integer() else value


def _names(path: str) -> tuple[str, list[str]]:
    """Return the file stem and the nearest parent folder names (nearest first)."""
    if _is_url(path):
        pure: PurePath = PurePosixPath(urlsplit(path).path)
    else:
        pure = PurePath(os.path.abspath(path))
    parents = [p.name for p in pure.parents if p.name][:PRODUCT_SEARCH_DEPTH]
    return pure.stem, parents


def _is_url(path: str) -> bool:
    return "://" in path or path.startswith("/vsi")


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
