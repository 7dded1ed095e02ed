"""Synthetic Sentinel-2 L2A scenes whose truth is known, written as real GeoTIFFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine

from tests.spectra import SPECTRA

S2_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
# Sentinel-2 L2A scene classification values of the same covers.
SCL = {"water": 6, "vegetation": 4, "bare": 5, "cloud": 9, "snow-ice": 11, "built-up": 5}


def s2_name(day: int = 15, tile: str = "T32TNS") -> str:
    """A Sentinel-2 L2A product name, so the ingest names the bands and the collection."""
    return f"S2A_MSIL2A_202407{day:02d}T103031_N0510_R108_{tile}_202407{day:02d}T150000"


def write_scene(
    path: Path,
    cover: npt.NDArray[np.str_],
    *,
    valid: npt.NDArray[np.bool_] | None = None,
    bands: tuple[str, ...] = S2_BANDS,
    scl: bool = False,
    noise: float = 0.005,
    seed: int = 0,
    origin: tuple[float, float] = (500000.0, 5100000.0),
    nodata_tag: bool = True,
    scale_tags: bool = True,
) -> Path:
    """Write a uint16 L2A-scaled GeoTIFF (UTM 32N, 10 m) painting ``cover`` class names.

    ``valid`` False pixels are nodata (0), which the file tags unless ``nodata_tag`` is
    False (as ESA's JPEG 2000 bands). With ``scl`` a last band ``SCL`` holds the scene
    classification of the cover. Without ``scale_tags`` the file says nothing of its
    reflectance scale, as bands cut from a product by other tools often do.
    """
    rows, cols = cover.shape
    valid = np.ones(cover.shape, bool) if valid is None else valid
    rng = np.random.default_rng(seed)
    count = len(bands) + (1 if scl else 0)
    data = np.zeros((count, rows, cols), np.uint16)
    for b in range(len(bands)):
        refl = np.zeros(cover.shape)
        for kind, spectrum in SPECTRA.items():
            refl[cover == kind] = spectrum[b]
        refl = np.clip(refl + rng.normal(0, noise, cover.shape), 0.001, 1.5)
        data[b] = np.where(valid, np.rint((refl + 0.1) / 1e-4), 0)
    if scl:
        classes = np.zeros(cover.shape, np.uint16)
        for kind, value in SCL.items():
            classes[cover == kind] = value
        data[-1] = np.where(valid, classes, 0)
    with rasterio.open(
        path, "w", driver="GTiff", width=cols, height=rows, count=count, dtype="uint16",
        crs="EPSG:32632", transform=Affine(10, 0, origin[0], 0, -10, origin[1]),
        nodata=0 if nodata_tag else None,
        tiled=True, blockxsize=64, blockysize=64,
    ) as dst:  # fmt: skip
        dst.write(data)
        for i, name in enumerate([*bands, *(["SCL"] if scl else [])], start=1):
            dst.set_band_description(i, name)
        if scale_tags:
            dst.scales = [1e-4] * len(bands) + [1.0] * (count - len(bands))
            dst.offsets = [-0.1] * len(bands) + [0.0] * (count - len(bands))
    return path


def halves(rows: int, cols: int, left: str, right: str) -> npt.NDArray[np.str_]:
    """A cover map: ``left`` on the left half, ``right`` on the right."""
    cover = np.full((rows, cols), right, dtype="<U10")
    cover[:, : cols // 2] = left
    return cover
