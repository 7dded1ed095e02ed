"""64-d embeddings per scene (and per chip) from a torch encoder, or pooled from an
existing embedding product; the model of each vector is named and described.

Where the vectors go, one model per column so several models sit side by side:

- item property ``emb:<model>``: the scene's unit vector (64 floats). The index stores it
  as a ``fixed_size_list<float32, 64>`` column of the same name (see ``index.py``), which
  ``search(near=...)`` scans;
- asset ``embeddings-<model>``: a GeoParquet file of the scene's vector and, with
  ``chips = true``, one row per window with its footprint in CRS84. Its ``emb:*`` fields
  follow the STAC embeddings proposal (model, dimensions, data type, level). The
  proposal has no published JSON Schema yet, so the items do not list one in
  ``stac_extensions``;
- a model card for our encoders: one Item per model in the ``dafab-models`` collection,
  described with the MLM extension (architecture, input bands, output shape, weights as an
  ``mlm:model`` asset), written by the runner. A pooled product's model is its maker's; its
  asset names the product (``emb:source``) instead.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dafab_static.errors import InputError, OptionError
from dafab_static.media_types import PARQUET
from dafab_static.pipeline.registry import Step, register_step
from dafab_static.pipeline.windows import Asset, StepOutput, Windows

if TYPE_CHECKING:
    import torch

    from dafab_static.derive.encoders import Encoder

_ENCODERS = ("random-conv", "resnet18")


#: The bands of the default encoder, and of its model id ``dafab-random-conv-v1``.
_RANDOM_CONV_BANDS = ("blue", "green", "red", "nir")


@register_step("embedding")
class Embedding(Step):
    """Embed each scene with a torch encoder.

    Parameters (recipe keys):
        encoder: ``random-conv`` (the default: untrained seeded random features, needs no
            download; good for near-duplicates and same-cover retrieval, not semantics) or
            ``resnet18`` (pretrained weights, e.g. torchgeo's Sentinel-2 MoCo ResNet-18).
        weights: Path or URL of the ``resnet18`` checkpoint (a relative path is relative to
            the recipe).
        model: Model id (a slug); names the property, column, asset and model card. The
            default encoder on other bands than its own is ``dafab-random-conv-v1-<bands>``.
        bands: Common band names the encoder takes, in order.
        mean, std: Per-band normalisation of the pretrained model, in reflectance units.
        chips: Also keep one vector per window in the embeddings asset.
    """

    autocast = True
    path_parameters = ("weights",)

    def __init__(
        self,
        encoder: str = "random-conv",
        weights: str | None = None,
        model: str | None = None,
        bands: Sequence[str] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        chips: bool = False,
    ) -> None:
        if encoder not in _ENCODERS:
            raise OptionError(f"encoder={encoder!r}: expected one of {', '.join(_ENCODERS)}")
        if encoder == "resnet18" and not (weights and model and bands):
            raise OptionError("encoder='resnet18' needs weights (a path or URL), model and bands")
        if encoder == "random-conv" and weights:
            raise OptionError("encoder='random-conv' takes no weights (they come from a seed)")
        if encoder == "random-conv" and (mean is not None or std is not None):
            raise OptionError("mean and std normalise a pretrained encoder (resnet18) only")
        self.kind = encoder
        self.weights = weights
        self.bands = tuple(bands) if bands else _RANDOM_CONV_BANDS
        # Other bands make another network, whose vectors do not compare with the default
        # one's: it gets its own model id, so the two never share an index column.
        default_id = "dafab-random-conv-v1"
        if self.bands != _RANDOM_CONV_BANDS:
            default_id += "-" + "-".join(self.bands)
        self.model_id = model or default_id
        self.mean, self.std = mean, std
        self.chips = bool(chips)
        self.requires = self.bands  # per instance: the model's bands
        self.encoder: Encoder | None = None

    def setup(self, device: torch.device) -> None:
        """Build the encoder (load the weights) once; bad weights fail here, naming the file."""
        if self.kind == "resnet18":
            from dafab_static.derive.resnet import load_resnet

            assert self.weights is not None
            encoder: Encoder = load_resnet(self.weights, bands=self.bands, model_id=self.model_id,
                                           mean=self.mean, std=self.std)  # fmt: skip
        else:
            from dafab_static.derive.encoders import RandomConvEncoder

            encoder = RandomConvEncoder(self.bands, model_id=self.model_id)
        self.encoder = encoder.to(device)

    def models(self) -> list[str]:
        return [self.model_id]

    def model_card(self) -> tuple[dict[str, Any], Asset | str]:
        """MLM fields of the model, and its weights: a file to publish, or their URL."""
        assert self.encoder is not None
        fields = self.encoder.mlm()
        if self.weights:
            return fields, self.weights
        import torch

        buffer = io.BytesIO()
        torch.save(self.encoder.weights(), buffer)
        return fields, Asset(f"{self.model_id}.pt", buffer.getvalue(), {})

    def __call__(self, windows: Windows) -> StepOutput:
        import torch

        assert self.encoder is not None
        chips = windows.pixels[:, [windows.channel(b) for b in self.bands]].float()
        vectors = self.encoder.encode(chips, windows.valid).float()
        weight = windows.valid.sum(dim=(1, 2)).float()
        scene = (vectors * weight[:, None]).sum(0)
        norm = float(torch.linalg.vector_norm(scene))
        if not math.isfinite(norm):
            return StepOutput(notes=["the encoder gave NaN or infinite values"])
        if norm == 0.0:
            return StepOutput(notes=["no valid pixel to embed"])
        scene = scene / norm
        rows = [("scene", -1, -1, _footprint(windows), scene)]
        if self.chips:
            rows += [("chip", r, c, _chip_footprint(windows, r, c), v)
                     for (r, c), v, w in zip(windows.origins, vectors, weight, strict=True)
                     if float(w) > 0]  # fmt: skip
        key = f"embeddings-{self.model_id}"
        return StepOutput(
            properties={f"emb:{self.model_id}": vector_property(scene)},
            assets={key: Asset(f"{key}.parquet", _geoparquet(rows), embedding_asset_fields(
                self.model_id, levels=["scene", "chip"] if self.chips else ["scene"],
                chip_size=windows.pixels.shape[-1] if self.chips else None))},
        )  # fmt: skip


@register_step("product_embedding")
class ProductEmbedding(Step):
    """Pool an existing embedding product (Google Satellite Embedding V1) over each item's
    footprint, instead of running an encoder.

    Parameters (recipe keys):
        raster: Path or URL of the product raster (a COG or a VRT mosaic of them); a
            relative path is relative to the recipe, and a local file must exist.
        model: Model id for the vectors (default ``google-satellite-embedding-v1``).
        dequantize: ``google-int8`` for Google's int8 release, ``none`` for float rasters.
    """

    reads_pixels = False
    path_parameters = ("raster",)

    def __init__(
        self,
        raster: str = "",
        model: str = "google-satellite-embedding-v1",
        dequantize: str = "google-int8",
    ) -> None:
        if not raster:
            raise OptionError("raster: give the path or URL of the embedding product")
        if dequantize not in ("google-int8", "none"):
            raise OptionError(f"dequantize={dequantize!r}: expected 'google-int8' or 'none'")
        from dafab_static.derive.encoders import check_model_id

        try:  # it names a file: '../x' was refused only per scene, by the destination guard
            check_model_id(model, "model")
        except InputError as e:
            raise OptionError(str(e)) from None
        self.raster, self.model_id, self.dequantize = raster, model, dequantize

    def setup(self, device: torch.device) -> None:
        """The product must exist and have 64 bands of the right type and a CRS: checked
        once, before any scene is read, instead of failing every item alike."""
        from dafab_static.derive.product_embedding import check_product

        del device
        raster = self.raster
        if "://" not in raster and not raster.startswith("/vsi") and not Path(raster).is_file():
            raise OptionError(f"product_embedding raster={raster!r}: no such file")
        check_product(raster, "none" if self.dequantize == "none" else "google-int8")

    def models(self) -> list[str]:
        return [self.model_id]

    def __call__(self, windows: Windows) -> StepOutput:
        import torch

        from dafab_static.derive.product_embedding import pool_product_embedding

        footprint = _footprint(windows)
        if footprint is None:
            return StepOutput(notes=["no geometry to pool the product over"])
        vector = pool_product_embedding(
            self.raster,
            footprint,
            dequantize="none" if self.dequantize == "none" else "google-int8",
        )
        if vector is None:
            return StepOutput(notes=[f"footprint outside {self.raster} or no valid pixel"])
        scene = torch.from_numpy(vector)
        key = f"embeddings-{self.model_id}"
        rows = [("scene", -1, -1, footprint, scene)]
        return StepOutput(
            properties={f"emb:{self.model_id}": vector_property(scene)},
            assets={key: Asset(f"{key}.parquet", _geoparquet(rows), {
                **embedding_asset_fields(self.model_id, levels=["scene"]),
                "emb:source": self.raster,
            })},
        )  # fmt: skip


def _footprint(windows: Windows) -> dict[str, Any] | None:
    """The item's geometry for its scene row; STAC allows null (a null WKB row)."""
    geometry = windows.item.get("geometry")
    return dict(geometry) if geometry else None


def vector_property(vector: torch.Tensor) -> list[float]:
    """A unit vector as JSON numbers: float32 has ~7 significant digits, 7 decimals keep them."""
    return [round(float(v), 7) for v in vector.cpu()]


def embedding_asset_fields(
    model: str, *, levels: list[str], chip_size: int | None = None
) -> Mapping[str, Any]:
    """STAC asset fields of an embeddings file (``emb:`` proposal)."""
    fields: dict[str, Any] = {
        "type": PARQUET, "title": f"Embeddings by {model}", "roles": ["data", "embeddings"],
        "emb:model": model, "emb:dimensions": 64, "emb:data_type": "float32",
        "emb:normalized": True, "emb:levels": levels,
    }  # fmt: skip
    if chip_size:
        fields["emb:chip_size"] = chip_size
    return fields


def _chip_footprint(windows: Windows, row: int, col: int) -> dict[str, Any]:
    """A chip's pixels in CRS84, placed by the grid's whole affine: a rotated or sheared
    grid's chips are turned with it (its rotation terms were dropped, and a grid turned by
    90 degrees gave every chip a polygon of zero area). Densified and cut at the
    antimeridian as the scene footprint is (:func:`~dafab_static.derive.footprint.to_crs84`)."""
    import shapely
    from rasterio.crs import CRS

    from dafab_static.derive.footprint import to_crs84

    size = windows.pixels.shape[-1]
    rows, cols = windows.shape
    t = windows.transform
    last_row, last_col = min(row + size, rows), min(col + size, cols)
    corners = [t @ (c, r) for c, r in ((col, row), (last_col, row), (last_col, last_row),
                                       (col, last_row))]  # fmt: skip
    region = shapely.orient_polygons(shapely.Polygon(corners))
    lonlat = shapely.orient_polygons(to_crs84(region, CRS.from_user_input(windows.crs)))
    return dict(shapely.geometry.mapping(lonlat))


def _geoparquet(rows: Sequence[tuple[str, int, int, dict[str, Any] | None, torch.Tensor]]) -> bytes:
    """A GeoParquet 1.1 file: level, window row/col, footprint (WKB, CRS84), embedding."""
    import json

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    from dafab_static.index import geometry_types

    geometries = [None if r[3] is None else shapely.geometry.shape(r[3]) for r in rows]
    vectors = np.stack([r[4].float().cpu().numpy() for r in rows]).astype(np.float32)
    table = pa.table({
        "level": [r[0] for r in rows],
        "row": pa.array([r[1] for r in rows], pa.int32()),
        "col": pa.array([r[2] for r in rows], pa.int32()),
        # binary even when every footprint is null (pyarrow would infer a null column)
        "geometry": pa.array(shapely.to_wkb(geometries, flavor="iso"), pa.binary()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 64),
    })  # fmt: skip
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": geometry_types(table)}
    if any(g is not None for g in geometries):
        column["bbox"] = list(shapely.total_bounds(geometries))
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
