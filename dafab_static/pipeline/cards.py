"""Model cards: one STAC Item per encoder model, described with the MLM extension, so that
every ``emb:<model>`` vector in the catalog names a model a reader can look up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
RASTER_SCHEMA = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
#: Collection of the model cards of the encoders a run used.
MODELS_COLLECTION = "dafab-models"
# Floats, as the index gives them back (the tree/index agreement check compares bytes).
_WORLD = {"type": "Polygon", "coordinates": [
    [[-180.0, -90.0], [180.0, -90.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]]}  # fmt: skip


def model_card(fields: Mapping[str, Any], *, when: str, description: str) -> dict[str, Any]:
    """The MLM Item of a model from its ``mlm:*`` fields; its ``model`` asset has no href yet
    (the caller publishes the weights or points at them).

    The geometry is the whole world: a model is not of a place. MLM asks for the input bands
    to be named on the model asset as well (``raster:bands``).

    Example:
        >>> card = model_card({"mlm:name": "m", "mlm:input": []}, when="2024-01-01T00:00:00Z",
        ...                   description="")
        >>> card["collection"], card["assets"]["model"]["roles"]
        ('dafab-models', ['mlm:model', 'weights'])
    """
    # No explicit nulls: the index drops them, and an absent field means the same.
    fields = _without_nulls(dict(fields))
    item: dict[str, Any] = {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [MLM_SCHEMA],
        "id": fields["mlm:name"], "collection": MODELS_COLLECTION,
        "geometry": _WORLD, "bbox": [-180.0, -90.0, 180.0, 90.0],
        "properties": {"datetime": when, "title": fields["mlm:name"],
                       "description": description, **fields},
        "links": [],
        "assets": {"model": {
            "type": "application/octet-stream; application=pytorch",
            "title": "Model weights (PyTorch state_dict)", "roles": ["mlm:model", "weights"],
            "mlm:artifact_type": "torch.save",
        }},
    }  # fmt: skip
    names = [b for i in fields.get("mlm:input", []) for b in i.get("bands", [])]
    if names:
        item["assets"]["model"]["raster:bands"] = [{"name": str(b)} for b in dict.fromkeys(names)]
        item["stac_extensions"].append(RASTER_SCHEMA)
    return item


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
