"""Read a scene's bands onto its analysis grid, strip by strip, with rasterio.

Runs in reader threads or processes (see :mod:`dafab_static.pipeline.runner`), so everything
here takes and returns plain, picklable data: an item dict in, numpy arrays out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from affine import Affine

from dafab_static.derive.products import reflectance_convention
from dafab_static.errors import InputError
from dafab_static.storage import file_path

#: Asset keys and band names of the quality bands the cloud step compares with.
_QA = {"scl": "scl", "qa_pixel": "qa_pixel", "bqa": "bqa_pre_collection"}
_RASTER_TYPES = ("image/tiff", "image/jp2", "image/vnd.stac.geotiff", "application/x-hdf")


@dataclass(frozen=True)
class BandSource:
    """One band of one asset file."""

    href: str
    index: int  # 1-based, as rasterio counts
    name: str  # STAC common name, or "scl" / "qa_pixel" for quality bands
    scale: float
    offset: float
    nodata: float | None
    label: str = ""  # the band's own name (B04, SR_B5)


@dataclass
class SceneData:
    """A scene on its analysis grid, as numpy (picklable across processes).

    ``pixels`` is ``(C, rows, cols)`` in the files' own data type (uint16 for most
    products: half the bytes of float32 to pickle and to move to the GPU); apply
    ``scales``/``offsets`` for reflectance (:meth:`physical`, or the runner on the device).
    ``reflectance`` is False when the bands carry no scale and are not float (8-bit display
    values), which the physical methods (cloud tests, land cover) refuse.
    """

    item_id: str
    pixels: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    bands: tuple[str, ...]
    labels: tuple[str, ...]
    transform: tuple[float, ...]
    crs: str
    window: int
    reflectance: bool
    qa: npt.NDArray[np.int32] | None = None
    qa_kind: str | None = None
    bytes_read: int = 0
    seconds: float = 0.0
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()

    def physical(self) -> npt.NDArray[np.float32]:
        """``pixels`` as float32 with scale and offset applied, invalid pixels 0."""
        scale = np.asarray(self.scales or [1.0] * len(self.bands), np.float32)[:, None, None]
        offset = np.asarray(self.offsets or [0.0] * len(self.bands), np.float32)[:, None, None]
        return np.where(self.valid, self.pixels * scale + offset, 0).astype(np.float32)


def band_sources(item: Mapping[str, Any]) -> tuple[list[BandSource], BandSource | None]:
    """The item's bands with a STAC common name, one per name, and its quality band.

    Bands are named by ``eo:bands`` (STAC 1.0) or ``bands`` (1.1) of raster assets; scale,
    offset and nodata come from ``raster:bands``, the 1.1 band objects (raster 2.0's
    ``raster:scale``/``raster:offset``) or the asset itself.
    """
    sources: dict[tuple[str, int], BandSource] = {}
    qa: BandSource | None = None
    item_id = item.get("id")
    for key, asset in item.get("assets", {}).items():
        if not isinstance(asset, Mapping) or not _is_raster(asset):
            continue
        where = f"item {item_id!r}: asset {key!r}"
        bands_key = "eo:bands" if asset.get("eo:bands") else "bands"
        described = _band_list(asset, bands_key, where)
        raster = _band_list(asset, "raster:bands", where)
        count = max(len(described), len(raster), 1)
        for i in range(count):
            eo = described[i] if i < len(described) else {}
            rb = raster[i] if i < len(raster) else {}
            name = eo.get("common_name") or eo.get("eo:common_name")
            label = str(eo.get("name") or (key if count == 1 else "")).lower()
            qa_kind = _QA.get(str(key).lower()) or _QA.get(label)
            scale, offset = (_scaling(rb, eo, asset, field, default, where, bands_key, i)
                             for field, default in (("scale", 1.0), ("offset", 0.0)))  # fmt: skip
            source = BandSource(
                href=str(asset["href"]), index=i + 1, name=qa_kind or str(name or label),
                label=str(eo.get("name") or label), scale=scale, offset=offset,
                nodata=_number(rb.get("nodata", eo.get("nodata", asset.get("nodata")))),
            )  # fmt: skip
            if qa_kind:
                qa = qa or source
            elif (name or source.label) and (source.href, i) not in sources:
                sources[(source.href, i)] = source
    # One band per common name, except bands the names of which tell them apart (Sentinel-2
    # B05, B06 and B07 are all "rededge"): a recipe may ask for either.
    kept: list[BandSource] = []
    for source in sources.values():
        if not any(k.name == source.name and k.label == source.label for k in kept):
            kept.append(source)
    return kept, qa


def _scaling(
    rb: Mapping[str, Any],
    band: Mapping[str, Any],
    asset: Mapping[str, Any],
    field: str,
    default: float,
    where: str,
    bands_key: str,
    i: int,
) -> float:
    """A band's ``scale`` or ``offset``: from ``raster:bands`` (raster extension 1.x), else
    the band object's ``raster:scale``/``raster:offset`` (raster 2.0 in STAC 1.1 ``bands``)
    or plain ``scale``/``offset``, else the asset's ``raster:scale``/``raster:offset``
    (raster 2.0 puts values all bands share there, as single-band COGs do); ``default``
    where none is given."""
    places = ((rb, field, f"raster:bands[{i}]."), (band, f"raster:{field}", f"{bands_key}[{i}]."),
              (band, field, f"{bands_key}[{i}]."), (asset, f"raster:{field}", ""))  # fmt: skip
    for fields, key, holder in places:
        if key in fields:
            return _real(fields[key], f"{where}: {holder}{key}")
    return default


def read_scene(item: Mapping[str, Any], *, max_size: int, window: int) -> SceneData:
    """Read an item's named bands (and quality band) onto one analysis grid.

    The grid is the first band's file, decimated to at most ``max_size`` pixels on the long
    side (rasterio then reads from overviews). Files on another grid are warped to it
    (``WarpedVRT``): bilinear for reflectance, nearest for quality classes.

    Raises:
        InputError: naming the item and file when it has no readable bands.
    """
    import rasterio
    from rasterio.enums import Resampling

    started = time.perf_counter()
    item_id = str(item.get("id"))
    bands, qa = band_sources(item)
    if not bands:
        raise InputError(f"item {item_id!r}: no raster asset with named bands (eo:bands)")
    files = sorted({b.href for b in bands} | ({qa.href} if qa else set()), key=_order(bands))
    with ExitStack() as stack:
        opened = {href: stack.enter_context(_open(href, item_id, rasterio)) for href in files}
        for band in (*bands, *([qa] if qa else [])):
            if band.index > opened[band.href].count:
                raise InputError(
                    f"item {item_id!r}: {band.href} has {opened[band.href].count} band(s), but "
                    f"its asset describes band {band.index} ({band.label or band.name})"
                )
        ref = opened[bands[0].href]
        factor = max(1, math.ceil(max(ref.width, ref.height) / max_size))
        rows, cols = math.ceil(ref.height / factor), math.ceil(ref.width / factor)
        grid = ref.transform @ Affine.scale(ref.width / cols, ref.height / rows)
        readers = {href: _Reader(src, grid, (rows, cols), ref.crs, _file_nodata(bands, href))
                   for href, src in opened.items()}  # fmt: skip
        dtype = np.result_type(*(opened[b.href].dtypes[b.index - 1] for b in bands))
        raw = np.zeros((len(bands), rows, cols), dtype)
        valid = np.ones((rows, cols), bool)
        qa_grid = np.zeros((rows, cols), np.int32) if qa else None
        nbytes = 0
        # Strips as tall as the file's blocks (at grid scale): each block is decoded once.
        strip = max(window, math.ceil(ref.block_shapes[0][0] / factor))
        # Reflectance is averaged onto a coarser grid; classes never are (SCL 4 beside 6
        # must not read as 5), so then the quality band takes a read of its own. On the
        # file's own grid one read serves both: a second would decode every tile again.
        smooth = Resampling.average if factor > 1 else Resampling.nearest
        for r0, c0, h, w in _windows(rows, cols, strip, width=cols):
            for href, reader in readers.items():
                wanted = [b for b in bands if b.href == href]
                # The quality band of this file, if it has it (qa_grid exists then).
                classes_at = qa.index if qa is not None and qa.href == href else None
                apart = classes_at is not None and (factor > 1 or not reader.aligned or not wanted)
                if apart and classes_at is not None and qa_grid is not None:
                    classes = reader.read([classes_at], r0, c0, h, w, Resampling.nearest)
                    qa_grid[r0 : r0 + h, c0 : c0 + w] = classes[0]
                    nbytes += classes.nbytes
                if not wanted:
                    continue
                along = [classes_at] if classes_at is not None and not apart else []
                chunk = reader.read([b.index for b in wanted] + along, r0, c0, h, w, smooth)
                nbytes += chunk.nbytes
                if along and qa_grid is not None:
                    qa_grid[r0 : r0 + h, c0 : c0 + w] = chunk[-1]
                for k, band in enumerate(wanted):
                    values = chunk[k]
                    ok = np.isfinite(values) if values.dtype.kind == "f" else True
                    if band.nodata is not None and not math.isnan(band.nodata):
                        ok = ok & (values != band.nodata)
                    valid[r0 : r0 + h, c0 : c0 + w] &= ok
                    raw[bands.index(band), r0 : r0 + h, c0 : c0 + w] = values
        reflectance = any(b.scale != 1.0 for b in bands) or ref.dtypes[0].startswith("float")
    scales, offsets = [b.scale for b in bands], [b.offset for b in bands]
    if not reflectance and np.issubdtype(dtype, np.integer) and all(b.offset == 0 for b in bands):
        # Digital numbers with no scale given: the product's documented one, where its name
        # tells it (a Landsat band folder without its MTL, Sentinel-2 bands without tags).
        found = [reflectance_convention(f"{item_id} {b.href}", b.label) for b in bands]
        if all(found):
            scales, offsets = [f[0] for f in found if f], [f[1] for f in found if f]
            reflectance = True
    return SceneData(
        item_id=item_id, pixels=raw, valid=valid, bands=tuple(b.name for b in bands),
        labels=tuple(b.label for b in bands), scales=tuple(scales), offsets=tuple(offsets),
        transform=tuple(grid)[:6], crs=ref.crs.to_string() if ref.crs else "", window=window,
        reflectance=reflectance, qa=qa_grid, qa_kind=qa.name if qa else None,
        bytes_read=nbytes, seconds=time.perf_counter() - started,
    )  # fmt: skip


class _Reader:
    """Windows of one file on the analysis grid: a direct (decimated) read when the file is
    on the grid's CRS and pixel lattice, a WarpedVRT (one per resampling) otherwise.

    ``nodata`` is the value the item's bands give (``raster:bands``) for a file that tags
    none, as ESA's JPEG 2000 bands: GDAL, not knowing it, averaged the fill into the pixels
    along the data's edge. Such a file is read through a WarpedVRT that is told it, also
    when decimated.
    """

    def __init__(
        self, src: Any, grid: Any, shape: tuple[int, int], crs: Any, nodata: float | None = None
    ) -> None:
        self.src, self.grid, self.shape, self.crs = src, grid, shape, crs
        self.aligned = src.crs == crs and _same_lattice(src, grid, shape)
        self.nodata = nodata if src.nodata is None else None
        self.vrts: dict[Any, Any] = {}
        self.fx = src.width / shape[1]
        self.fy = src.height / shape[0]

    def read(self, indexes: list[int], r0: int, c0: int, h: int, w: int, resampling: Any) -> Any:
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT
        from rasterio.windows import Window

        untold = self.nodata is not None and resampling != Resampling.nearest
        if not self.aligned or untold:
            vrt = self.vrts.get(resampling)
            if vrt is None:
                told = {"src_nodata": self.nodata, "nodata": self.nodata} if untold else {}
                vrt = self.vrts[resampling] = WarpedVRT(
                    self.src, crs=self.crs, transform=self.grid, width=self.shape[1],
                    height=self.shape[0], resampling=resampling, **told,
                )  # fmt: skip
            return vrt.read(indexes, window=Window(c0, r0, w, h))
        window = Window(c0 * self.fx, r0 * self.fy, w * self.fx, h * self.fy)
        return self.src.read(indexes, window=window, out_shape=(len(indexes), h, w),
                             resampling=resampling)  # fmt: skip


def _file_nodata(bands: list[BandSource], href: str) -> float | None:
    """The nodata value the item gives the bands of file ``href``, when they agree on one."""
    values = {b.nodata for b in bands if b.href == href}
    if len(values) != 1:
        return None
    (value,) = values
    return None if value is None or math.isnan(value) else value


def _same_lattice(src: Any, grid: Any, shape: tuple[int, int]) -> bool:
    """Whether ``src`` covers the grid with an integer decimation of the same origin."""
    t = src.transform
    return bool(
        abs(t.c - grid.c) < 1e-6 * abs(t.a) + 1e-9
        and abs(t.f - grid.f) < 1e-6 * abs(t.e) + 1e-9
        and t.b == grid.b == 0
        and t.d == grid.d == 0
        and abs(src.width * t.a - shape[1] * grid.a) < abs(grid.a)
        and abs(src.height * t.e - shape[0] * grid.e) < abs(grid.e)
    )


def _windows(
    rows: int, cols: int, size: int, *, width: int | None = None
) -> Iterator[tuple[int, int, int, int]]:
    width = width or size
    for r0 in range(0, rows, size):
        for c0 in range(0, cols, width):
            yield r0, c0, min(size, rows - r0), min(width, cols - c0)


def _open(href: str, item_id: str, rasterio: Any) -> Any:
    try:
        return rasterio.open(file_path(href))
    except rasterio.errors.RasterioIOError as e:
        raise InputError(f"item {item_id!r}: cannot read {href} ({e})") from None


def _order(bands: list[BandSource]) -> Any:
    first = {b.href: i for i, b in reversed(list(enumerate(bands)))}
    return lambda href: first.get(href, len(bands))


def _is_raster(asset: Mapping[str, Any]) -> bool:
    kind = str(asset.get("type", ""))
    href = str(asset.get("href", "")).lower()
    return kind.startswith(_RASTER_TYPES) or href.endswith((".tif", ".tiff", ".jp2"))


def _band_list(asset: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    """The asset's ``key`` band list, checked: a list of band objects, or nothing."""
    bands = asset.get(key) or []
    if not isinstance(bands, list) or not all(isinstance(b, Mapping) for b in bands):
        raise InputError(f"{where}: {key} is not a list of band objects")
    return bands


def _real(value: object, where: str) -> float:
    """A band's scale or offset as a float; a value that is not a number is named."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} {value!r}: not a number")
    return float(value)


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # "nan"/"inf" strings in STAC are handled by float(); others ignored
