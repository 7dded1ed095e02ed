"""The bundled sample, generated in code: small COGs, another hub's STAC items, one NDVI.

Nothing large lives in git: :func:`write_sample` writes the same bytes on every run (fixed
seeds, no clock, no host names) in well under a second. The scenes are synthetic but shaped
like the real thing: Sentinel-2 L2A and Landsat 9 C2 L2 products named as ESA and USGS name
them, with blue, green, red, NIR and both SWIR bands at L2A/C2 scale and offset, and the
product's own quality band last (SCL, QA_PIXEL) painted from the same cover map; nodata
borders where a swath or WRS frame ends; one scene across the antimeridian. The hub items
imitate the Planetary Computer's (links to a hub, https assets, eo/proj/sat/view fields),
mixing STAC 1.0.0 and 1.1.0, delivered as single files, a FeatureCollection and NDJSON.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.io import MemoryFile

from dafab_static import _sample_hub as hub
from dafab_static._sample_hub import valid_mask
from dafab_static.ingest.rasters import read_raster
from dafab_static.media_types import COG

#: Collection of the derived NDVI product.
NDVI_COLLECTION = "sentinel-2-l2a-ndvi"
_SIZE = 256
_COG = {"driver": "COG", "blocksize": 128, "compress": "DEFLATE", "predictor": 2,
        "overview_resampling": "nearest", "num_threads": 1, "bigtiff": "NO"}  # fmt: skip

# Surface reflectance of four cover types in blue, green, red, near infrared, SWIR 1.6 and
# 2.2 um.
_REFLECTANCE = {
    "water": (0.06, 0.05, 0.03, 0.015, 0.01, 0.005),
    "vegetation": (0.03, 0.07, 0.035, 0.38, 0.18, 0.08),
    "soil": (0.10, 0.14, 0.18, 0.26, 0.32, 0.28),
    "cloud": (0.55, 0.56, 0.58, 0.60, 0.45, 0.35),
}
# The products' own quality band, last in each file: Sentinel-2 L2A scene classification
# (4 vegetation, 5 not vegetated, 6 water, 9 cloud high probability) and Landsat C2
# QA_PIXEL bits (3 cloud, 6 clear, 7 water; bits 8-9 cloud confidence: 1 low, 3 high).
_QUALITY = {
    "SCL": {"water": 6, "vegetation": 4, "soil": 5, "cloud": 9},
    "QA_PIXEL": {"water": 448, "vegetation": 320, "soil": 320, "cloud": 776},
}


@dataclass(frozen=True)
class SampleManifest:
    """What :func:`write_sample` wrote, and the ids a build of it must produce.

    Attributes:
        folder: The sample folder.
        rasters: Sensor COGs under ``rasters/`` (one item each).
        item_files: Hub STAC files under ``items/`` (single items, a FeatureCollection, NDJSON).
        derived: Derived COGs under ``derived/``; they are assets, not scenes to ingest.
        derived_item_files: Item JSON of the derived products, under ``items/derived/``.
        items_by_collection: Collection id to the sorted ids of its items, all sources.
    """

    folder: Path
    rasters: tuple[Path, ...]
    item_files: tuple[Path, ...]
    derived: tuple[Path, ...]
    derived_item_files: tuple[Path, ...]
    items_by_collection: Mapping[str, tuple[str, ...]]

    @property
    def sources(self) -> tuple[Path, ...]:
        """The folders to build from: ``rasters/`` and ``items/``, not ``derived/``.

        Building from the whole folder would also ingest the NDVI COG as a raster scene.
        """
        return (self.folder / "rasters", self.folder / "items")

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file written, sorted."""
        every = (*self.rasters, *self.item_files, *self.derived, *self.derived_item_files)
        return tuple(sorted(every))


@dataclass(frozen=True)
class _Scene:
    name: str
    epsg: int
    origin: tuple[float, float]
    pixel: float
    bands: tuple[str, ...]
    scale: float
    offset: float
    valid: str  # see _valid_mask
    seed: int
    quality: str  # the name of the quality band, a key of _QUALITY
    tags: tuple[tuple[str, str], ...] = ()


_S2 = ("B02", "B03", "B04", "B08", "B11", "B12")
_SCENES = (
    _Scene("S2A_MSIL2A_20240715T103031_N0510_R108_T32TNS_20240715T150000", 32632,
           (518000.0, 5112000.0), 10.0, _S2, 1e-4, -0.1, "swath-east", 1, "SCL"),
    _Scene("S2B_MSIL2A_20240824T102559_N0511_R108_T33TUL_20240824T131500", 32633,
           (343300.0, 5075000.0), 10.0, _S2, 1e-4, -0.1, "swath-west", 2, "SCL"),
    _Scene("LC09_L2SP_192028_20240918_20240919_02_T1", 32632, (512000.0, 5125000.0), 30.0,
           ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"), 2.75e-5, -0.2, "frame", 3,
           "QA_PIXEL",
           (("DATE_ACQUIRED", "2024-09-18"), ("SCENE_CENTER_TIME", "10:02:43.5312450Z"))),
    _Scene("S2B_MSIL2A_20241005T221939_N0511_R029_T01KAB_20241006T001500", 32701,
           (178930.0, 8141440.0), 10.0, _S2, 1e-4, -0.1, "full", 4, "SCL"),
)  # fmt: skip


def write_sample(folder: str | os.PathLike[str]) -> SampleManifest:
    """Write the bundled sample into ``folder`` (created if needed), byte-identically.

    Layout: ``rasters/`` (four COGs: Sentinel-2 L2A in July, August and October, one across
    the antimeridian, and Landsat 9 C2 L2 in September), ``derived/`` (an NDVI COG of the
    first scene), ``items/`` (seven hub items: three single-item JSON files, a
    FeatureCollection of two Landsat items, an NDJSON file of two Sentinel-2 items) and
    ``items/derived/`` (the NDVI item, whose asset and ``derived_from`` link are relative to
    it). Build from :attr:`SampleManifest.sources`, not from ``folder``: walking ``derived/``
    would ingest the NDVI COG a second time, as a Sentinel-2 scene.

    Args:
        folder: Destination folder; existing sample files are overwritten.

    Returns:
        A :class:`SampleManifest` of the paths written and the expected ids per collection.

    Raises:
        OSError: when ``folder`` cannot be written.

    Example:
        >>> manifest = write_sample("/tmp/sample")  # doctest: +SKIP
        >>> sorted(manifest.items_by_collection)  # doctest: +SKIP
        ['landsat-c2-l2', 'sentinel-2-l2a', 'sentinel-2-l2a-ndvi']
    """
    root = Path(folder)
    for sub in ("rasters", "derived", "items/derived"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids: dict[str, list[str]] = {}
    rasters = []
    for scene in _SCENES:
        path = root / "rasters" / f"{scene.name}.tif"
        _write_cog(path, *_scene_pixels(scene))
        rasters.append(path)
        item = read_raster(path)
        ids.setdefault(item["collection"], []).append(item["id"])

    first = _SCENES[0]
    ndvi_path = root / "derived" / f"{first.name}_NDVI.tif"
    _write_cog(ndvi_path, *_ndvi(first))
    ndvi_item = _ndvi_item(ndvi_path, rasters[0], first.name)
    ndvi_file = root / "items" / "derived" / f"{ndvi_item['id']}.json"
    ndvi_file.write_bytes(_json(ndvi_item))
    ids.setdefault(NDVI_COLLECTION, []).append(ndvi_item["id"])

    item_files = []
    for name, content in hub.files():
        path = root / "items" / name
        path.write_bytes(content)
        item_files.append(path)
    for item in hub.items():
        ids.setdefault(item["collection"], []).append(item["id"])
    return SampleManifest(
        folder=root,
        rasters=tuple(rasters),
        item_files=tuple(item_files),
        derived=(ndvi_path,),
        derived_item_files=(ndvi_file,),
        items_by_collection=MappingProxyType({k: tuple(sorted(v)) for k, v in sorted(ids.items())}),
    )


def _scene_pixels(scene: _Scene) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    rng = np.random.default_rng(scene.seed)
    shape = (_SIZE, _SIZE)
    terrain = _smooth(rng, shape, 6)
    cloud = _smooth(rng, shape, 4)
    cover = np.select(
        [cloud > 0.8, terrain < 0.3, terrain < 0.7], ["cloud", "water", "vegetation"], "soil"
    )
    data = np.zeros((len(scene.bands) + 1, *shape), dtype=np.uint16)
    valid = valid_mask(scene.valid, shape)
    for b in range(len(scene.bands)):
        reflectance = np.zeros(shape)
        for kind, values in _REFLECTANCE.items():
            reflectance[cover == kind] = values[b]
        # Noise, kept physical: no negative reflectance (NDVI stays within [-1, 1]).
        reflectance = np.clip(reflectance + rng.normal(0.0, 0.008, shape), 0.001, 1.0)
        digital = np.clip(np.rint((reflectance - scene.offset) / scene.scale), 1, 65535)
        data[b] = np.where(valid, digital, 0).astype(np.uint16)
    for kind, value in _QUALITY[scene.quality].items():
        data[-1][(cover == kind) & valid] = value
    profile = {
        "crs": f"EPSG:{scene.epsg}",
        "transform": Affine(scene.pixel, 0, scene.origin[0], 0, -scene.pixel, scene.origin[1]),
        "nodata": 0,
        "descriptions": (*scene.bands, scene.quality),
        "scales": (scene.scale,) * len(scene.bands) + (1.0,),
        "offsets": (scene.offset,) * len(scene.bands) + (0.0,),
        "tags": dict(scene.tags),
    }
    return data, profile


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> npt.NDArray[Any]:
    """Bilinear upsampling of a coarse random grid: blobs of cover types, not salt noise."""
    coarse = rng.random((cells + 1, cells + 1))
    rows = np.linspace(0, cells, shape[0])
    cols = np.linspace(0, cells, shape[1])
    r0 = np.minimum(rows.astype(int), cells - 1)
    c0 = np.minimum(cols.astype(int), cells - 1)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    return np.asarray(top * (1 - fr) + bottom * fr)


def _ndvi(scene: _Scene) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    data, profile = _scene_pixels(scene)
    red = data[2] * scene.scale + scene.offset
    nir = data[3] * scene.scale + scene.offset
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = np.where((data[2] > 0) & (nir + red != 0), (nir - red) / (nir + red), np.nan)
    profile.update(nodata=float("nan"), descriptions=("NDVI",), scales=(1.0,), offsets=(0.0,))
    return ndvi[None].astype(np.float32), profile


def _write_cog(path: Path, data: npt.NDArray[Any], profile: dict[str, Any]) -> None:
    count, rows, cols = data.shape
    with MemoryFile() as memory:
        with memory.open(
            driver="GTiff",
            width=cols,
            height=rows,
            count=count,
            dtype=data.dtype.name,
            crs=profile["crs"],
            transform=profile["transform"],
            nodata=profile["nodata"],
        ) as dataset:
            dataset.write(data)
            for index, description in enumerate(profile["descriptions"], start=1):
                dataset.set_band_description(index, description)
            dataset.scales = profile["scales"]
            dataset.offsets = profile["offsets"]
            if profile["tags"]:
                dataset.update_tags(**profile["tags"])
        with memory.open() as dataset:
            rasterio.shutil.copy(dataset, str(path), **_COG)


def _ndvi_item(path: Path, source: Path, source_id: str) -> dict[str, Any]:
    """The NDVI item: read from its COG, then re-homed as a derived product."""
    item = read_raster(path)
    item["collection"] = NDVI_COLLECTION
    item["properties"]["title"] = f"NDVI of {source_id}"
    asset = item["assets"]["data"]
    asset["href"] = f"../../derived/{path.name}"
    asset["title"] = "Normalized difference vegetation index, (B08 - B04) / (B08 + B04)"
    item["links"] = [
        # A file item needs a collection link to go with its collection field (STAC 1.1
        # item schema); the build replaces structural links, so only its presence matters.
        {
            "rel": "collection",
            "href": f"../../collections/{NDVI_COLLECTION}.json",
            "type": "application/json",
        },
        {
            "rel": "derived_from",
            "href": f"../../rasters/{source.name}",
            "type": COG,
            "title": source_id,
        },
    ]
    return item


def _json(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
