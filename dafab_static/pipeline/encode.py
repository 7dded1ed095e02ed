"""Files steps publish, as bytes: PNG pictures and single-band COG masks (rasterio/GDAL)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def png(rgba: npt.NDArray[np.uint8]) -> bytes:
    """PNG bytes of a ``(bands, rows, cols)`` uint8 array (RGB or RGBA)."""
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    count, rows, cols = rgba.shape
    # A thumbnail is a picture, not a georeferenced raster: GDAL's warning says just that.
    with warnings.catch_warnings(), MemoryFile() as memory:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with memory.open(driver="PNG", width=cols, height=rows, count=count,
                         dtype="uint8") as picture:  # fmt: skip
            picture.write(rgba)
        return bytes(memory.read())


def cog(band: npt.NDArray[Any], transform: Any, crs: str, *, nodata: int) -> bytes:
    """A single-band Cloud-Optimized GeoTIFF (DEFLATE, nearest-neighbour overviews, which
    keep class values intact)."""
    import rasterio.shutil
    from rasterio.io import MemoryFile

    rows, cols = band.shape
    with MemoryFile() as source, MemoryFile() as target:
        with source.open(driver="GTiff", width=cols, height=rows, count=1, dtype=band.dtype.name,
                         crs=crs, transform=transform, nodata=nodata) as raster:  # fmt: skip
            raster.write(band[None])
        with source.open() as raster:
            rasterio.shutil.copy(raster, target.name, driver="COG", compress="DEFLATE",
                                 overview_resampling="nearest", blocksize=256)  # fmt: skip
        return bytes(target.read())


def grid_fields(band: npt.NDArray[Any], transform: Any) -> dict[str, Any]:
    """The projection fields of a COG a step writes on the analysis grid: its shape and
    transform, on its asset, as they differ from the item's where the scene was read
    decimated (a 2048 px scene analysed at ``max_size`` 1024). The CRS is the item's."""
    rows, cols = band.shape
    return {
        "proj:shape": [int(rows), int(cols)],
        "proj:transform": [float(v) for v in transform][:6],
    }
