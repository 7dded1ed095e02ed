"""The STAC Item of a raster scene: what was read of its files, and of its product's metadata.

:mod:`~dafab_static.ingest.rasters` reads the files (GDAL, decimated reads, hashes) into
:class:`Part` values; :func:`item` turns one file's part, or the parts of one scene's
per-band files, into the Item: ids, datetime, platform, extensions, assets, geometry. It also
reads the small metadata files a product ships beside its bands (a Landsat MTL, a
Sentinel-2 SAFE's ``MTD_*.xml``), which add cloud cover, sun angles and reflectance scales.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS

from dafab_static.derive.footprint import geometry_bbox, union_footprints
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
from dafab_static.derive.stats import EXACT_INTEGERS
from dafab_static.errors import InputError

#: Parent folders searched for a product id (a SAFE granule's band sits 5 levels down).
PRODUCT_SEARCH_DEPTH = 5
#: Collection of rasters whose product is not recognised.
DEFAULT_COLLECTION = "rasters"

_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
_FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
_MGRS = "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json"
_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
_VIEW = "https://stac-extensions.github.io/view/v1.0.0/schema.json"
_DATA_TYPES = {"complex64": "cfloat32", "complex128": "cfloat64", "complex_int16": "cint16"}


@dataclass(frozen=True)
class Band:
    """One band of a file, as read: what its ``raster:bands`` and ``eo:bands`` entries say."""

    dtype: str
    nodata: float | None
    scale: float
    offset: float
    unit: str
    labels: tuple[str, ...]
    statistics: dict[str, float] | None
    colour: str = ""  # GDAL colour interpretation: "red", "gray", "undefined"...


@dataclass(frozen=True)
class Scene:
    """One file, as read: its grid, a decimated validity mask, its bands and its tags."""

    crs: CRS
    transform: Affine
    shape: tuple[int, int]
    mask: npt.NDArray[np.uint8]
    mask_transform: Affine
    bands: tuple[Band, ...]
    tags: dict[str, str]
    media_type: str | None


@dataclass(frozen=True)
class Part:
    """One file read: where it is, what it holds, where its data is."""

    path: str
    href: str
    scene: Scene
    geometry: dict[str, Any]
    files: dict[str, Any]


def item(parts: list[Part], fallback: _dt.datetime | None) -> dict[str, Any]:
    """The Item of one file (asset ``data``) or of one scene's per-band files."""
    first = parts[0]
    stem, parents = names(first.path)
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
        part_stem = names(part.path)[0]
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
    part: Part, stem: str, instruments: tuple[str, ...], extensions: set[str]
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


def _colour_bands(bands: tuple[Band, ...]) -> list[dict[str, Any]]:
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


class SceneFacts(Protocol):
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
_Sidecar = tuple[dict[str, dict[str, Any]], SceneFacts]


def _safe(path: str) -> _Sidecar | None:
    """The metadata of the Sentinel-2 SAFE a band file sits in (``MTD_MSIL2A.xml`` at its
    root, ``MTD_TL.xml`` in its granule), parsed, if the file is in one."""
    if is_url(path):
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
    if is_url(path):
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


def _sidecar_properties(facts: SceneFacts, extensions: set[str]) -> dict[str, Any]:
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


def _rescale(asset: dict[str, Any], facts: SceneFacts, label: str) -> None:
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
    facts: SceneFacts | None = None,
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


def _raster_band(band: Band, resolution: float | None) -> dict[str, Any]:
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
    # rasterio gives nodata as a double: an integer only where the double holds it exactly.
    exact = value.is_integer() and abs(value) <= EXACT_INTEGERS
    return int(value) if "int" in dtype and exact else value


def names(path: str) -> tuple[str, list[str]]:
    """Return the file stem and the nearest parent folder names (nearest first)."""
    if is_url(path):
        pure: PurePath = PurePosixPath(urlsplit(path).path)
    else:
        pure = PurePath(os.path.abspath(path))
    parents = [p.name for p in pure.parents if p.name][:PRODUCT_SEARCH_DEPTH]
    return pure.stem, parents


def is_url(path: str) -> bool:
    return "://" in path or path.startswith("/vsi")
