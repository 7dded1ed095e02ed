"""What a pipeline step sees and returns: a batch of raster windows with their item, and the
properties, assets and layers it derives.

A scene is read once onto an *analysis grid* (its own CRS and footprint, at most
``max_size`` pixels on the long side) and cut into square windows. Steps that work per chip
(embeddings) use :attr:`Windows.pixels` directly; steps that work on the whole scene (cloud
mask, land cover, thumbnail) use :meth:`Windows.scene`, which mosaics the windows back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from affine import Affine

#: Common names a method may ask for, with the STAC 1.1 narrow-band names they also accept.
BAND_ALIASES: Mapping[str, tuple[str, ...]] = {
    "nir": ("nir", "nir08"),
    "rededge": ("rededge", "rededge071", "rededge075", "rededge078"),
}


@dataclass
class Windows:
    """A batch of windows of one scene, on the compute device.

    Attributes:
        item: The STAC item being processed (read-only for steps; they return changes).
        pixels: ``(N, C, h, w)`` float32 surface reflectance (scale and offset applied);
            invalid pixels are 0.
        valid: ``(N, h, w)`` bool, False for nodata, padding and outside the footprint.
        bands: STAC common names of the ``C`` channels, in order.
        labels: The bands' own names (``B04``, ``SR_B4``), in the same order.
        origins: ``(row, col)`` of each window's top-left pixel on the analysis grid.
        shape: ``(rows, cols)`` of the analysis grid.
        transform: Affine transform of the analysis grid, in ``crs``.
        crs: The analysis grid's CRS, as WKT or ``EPSG:n``.
        qa: ``(N, h, w)`` integer quality band when the item has one, else None.
        qa_kind: ``"scl"`` (Sentinel-2 L2A), ``"qa_pixel"`` (Landsat Collection 2) or
            ``"bqa_pre_collection"`` (Landsat 8 before Collection 1).
        layers: Scene-grid ``(rows, cols)`` results of earlier steps (``"cloud"``,
            ``"shadow"``, ``"landcover"``), for later steps of the same recipe.
    """

    item: Mapping[str, Any]
    pixels: torch.Tensor
    valid: torch.Tensor
    bands: tuple[str, ...]
    origins: tuple[tuple[int, int], ...]
    shape: tuple[int, int]
    transform: Affine
    crs: str
    qa: torch.Tensor | None = None
    qa_kind: str | None = None
    labels: tuple[str, ...] = ()
    layers: dict[str, torch.Tensor] = field(default_factory=dict)
    #: ``(C, rows, cols)`` reflectance and ``(rows, cols)`` valid mask of the whole grid, as
    #: the windows were cut from: :meth:`scene` hands them out (several steps ask for it)
    #: instead of mosaicking the windows again each time.
    grid: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.pixels.device

    def has(self, name: str) -> bool:
        """Whether band ``name`` is present: a common name (or one of its narrow-band
        aliases), or a band's own name (``B05``)."""
        try:
            self.channel(name)
        except KeyError:
            return False
        return True

    def channel(self, name: str) -> int:
        """Index of band ``name`` (see :meth:`has`) in :attr:`bands`; KeyError when absent."""
        for alias in BAND_ALIASES.get(name, (name,)):
            if alias in self.bands:
                return self.bands.index(alias)
        if name in self.labels:
            return self.labels.index(name)
        raise KeyError(name)

    def scene(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The windows mosaicked back onto the analysis grid.

        Returns:
            ``({common name: (rows, cols) reflectance}, (rows, cols) valid mask)``; narrow
            names are also given under their broad alias (``nir08`` as ``nir``).
        """
        if self.grid is None:  # windows made by hand: mosaic them once
            self.grid = (self.mosaic(self.pixels), self.mosaic(self.valid.unsqueeze(1))[0])
        stacked, valid = self.grid
        refl = {name: stacked[i] for i, name in enumerate(self.bands)}
        for broad, aliases in BAND_ALIASES.items():
            present = [a for a in aliases if a in refl]
            if broad not in refl and present:
                refl[broad] = refl[present[0]]
        return refl, valid

    def scene_qa(self) -> torch.Tensor | None:
        """The quality band mosaicked onto the analysis grid, or None."""
        return None if self.qa is None else self.mosaic(self.qa.unsqueeze(1))[0]

    def mosaic(self, tiles: torch.Tensor) -> torch.Tensor:
        """Put ``(N, C, h, w)`` window tensors back on the ``(C, rows, cols)`` grid."""
        import torch

        _, c, h, w = tiles.shape
        rows, cols = self.shape
        out = torch.zeros((c, rows, cols), dtype=tiles.dtype, device=tiles.device)
        for k, (r, col) in enumerate(self.origins):
            hh, ww = min(h, rows - r), min(w, cols - col)
            out[:, r : r + hh, col : col + ww] = tiles[k, :, :hh, :ww]
        return out


@dataclass(frozen=True)
class Asset:
    """A file a step made, and the STAC asset fields that describe it.

    Attributes:
        filename: Name of the file beside the item's other derived files (``thumbnail.png``).
        data: The file's bytes.
        fields: STAC asset fields except ``href`` (``type``, ``title``, ``roles``, ...).
    """

    filename: str
    data: bytes
    fields: Mapping[str, Any]


@dataclass
class StepOutput:
    """What one step derived for one item.

    Attributes:
        properties: Item properties to set.
        assets: Asset key to :class:`Asset`.
        extensions: Schema URLs of the STAC extensions the new fields belong to.
        layers: Scene-grid tensors for later steps (see :attr:`Windows.layers`).
        notes: Short remarks for the run summary (a test that could not be applied).
    """

    properties: dict[str, Any] = field(default_factory=dict)
    assets: dict[str, Asset] = field(default_factory=dict)
    extensions: set[str] = field(default_factory=set)
    layers: dict[str, torch.Tensor] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
