"""Queryables documents: from a stac-geoparquet Arrow schema, merged, and read back."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from dafab_static.queryables._vendored import definition, schema_urls

#: Link relation of a queryables document (OGC API Features Part 3).
REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
MEDIA_TYPE = "application/schema+json"
#: The JSON Schema dialect the STAC API Filter extension's examples declare.
DIALECT = "https://json-schema.org/draft/2019-09/schema"
GEOMETRY_REF = "https://geojson.org/schema/Geometry.json"
#: Layout path of the catalog-wide document (beside the root ``catalog.json``).
CATALOG_PATH = "queryables.json"
# stac-geoparquet columns that make up the item's envelope rather than its properties.
_ENVELOPE = frozenset(
    {"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "links", "assets",
     "collection"}
)  # fmt: skip
_FIRST = ("id", "collection", "geometry", "datetime", "start_datetime", "end_datetime")
_KEY_ORDER = ("title", "description", "$ref", "type", "format", "items", "properties", "enum",
              "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")  # fmt: skip
_BOUNDS = {"minimum": min, "maximum": max, "exclusiveMinimum": min, "exclusiveMaximum": max}


def collection_path(folder: str) -> str:
    """Layout path of a collection's queryables: inside its folder, whose other entries are
    four-digit year folders, so it can never collide with the tree (nor with another
    collection, as ``<id>.queryables.json`` beside the Collection could).

    Example:
        >>> collection_path("sensors/sentinel-2/sentinel-2-l2a")
        'sensors/sentinel-2/sentinel-2-l2a/queryables.json'
    """
    return f"{folder}/queryables.json"


def queryables_for_schema(
    schema: pa.Schema,
    *,
    collection: Mapping[str, Any] | None = None,
    extensions: Iterable[str] = (),
    title: str = "Queryables",
    id_url: str | None = None,
) -> dict[str, Any]:
    """The queryables of items stored with the stac-geoparquet ``schema``.

    Args:
        schema: Arrow schema of a stac-geoparquet table; every top-level column except the
            envelope (``type``, ``stac_version``, ``stac_extensions``, ``id``, ``geometry``,
            ``bbox``, ``links``, ``assets``, ``collection``) is an item property. Binary
            columns other than ``geometry`` (WKB) and all-null columns are left out: CQL2
            cannot compare them.
        collection: The Collection: its ``id`` becomes the ``collection`` enum, its
            ``summaries`` enums (value lists) and ``minimum``/``maximum`` (range objects),
            its ``stac_extensions`` are looked up like ``extensions``.
        extensions: The items' ``stac_extensions``; those vendored describe their fields.
        title: The document's title.
        id_url: The document's absolute URL, as ``$id``; left out when None.

    Example:
        >>> schema = pa.schema([("id", pa.string()), ("eo:cloud_cover", pa.float64())])
        >>> queryables_for_schema(schema)["properties"]["eo:cloud_cover"]["type"]
        'number'
    """
    props: dict[str, dict[str, Any]] = {
        # The core schemas define "id" for several objects (providers first); an item's is this.
        "id": {"title": "Item ID", "description": "The item's identifier", "type": "string"},
        "collection": {"type": "string"},
        "geometry": {"title": "Geometry", "$ref": GEOMETRY_REF},
        "datetime": {"type": "string", "format": "date-time"},
    }
    for field in schema:
        if field.name not in _ENVELOPE and (prop := _from_arrow(field.type)) is not None:
            props[field.name] = prop
    given = collection or {}
    urls = schema_urls([*extensions, *(given.get("stac_extensions") or ())])
    summaries = given.get("summaries") or {}
    for name, prop in props.items():
        if name not in ("geometry", "id"):
            _describe(prop, definition(name, urls))
            _summarise(prop, summaries.get(name))
    if isinstance(given.get("id"), str):
        props["collection"]["enum"] = [given["id"]]
    return _document(props, title, id_url)


def merge_queryables(
    schemas: Iterable[Mapping[str, Any]], *, title: str = "Queryables", id_url: str | None = None
) -> dict[str, Any]:
    """One queryables document for several collections: the union of their properties.

    Where collections agree on a property's type its constraints are widened to cover
    all (enums united, ``minimum`` the least, ``maximum`` the greatest); a constraint only
    some give is dropped. ``integer`` and ``number`` merge to ``number``; other
    disagreements keep the list of types and no constraints.

    Example:
        >>> a = {"properties": {"gsd": {"type": "integer", "minimum": 10, "maximum": 60}}}
        >>> b = {"properties": {"gsd": {"type": "number", "minimum": 0.5, "maximum": 30}}}
        >>> merge_queryables([a, b])["properties"]["gsd"]
        {'type': 'number', 'minimum': 0.5, 'maximum': 60}
    """
    merged: dict[str, dict[str, Any]] = {}
    for doc in schemas:
        for name, prop in (doc.get("properties") or {}).items():
            merged[name] = _merge(merged[name], prop) if name in merged else copy.deepcopy(prop)
    return _document(merged, title, id_url)


def property_type(queryables: Mapping[str, Any], name: str) -> str | None:
    """What a filter may compare ``name`` with: ``"geometry"``, ``"timestamp"`` (a
    date-time string), another JSON Schema type (``"string"``, ``"number"``, ``"integer"``,
    ``"boolean"``, ``"array"``, ``"object"``), or None when unknown or ambiguous.

    Example:
        >>> q = {"properties": {"datetime": {"type": "string", "format": "date-time"}}}
        >>> property_type(q, "datetime"), property_type(q, "nope")
        ('timestamp', None)
    """
    prop = (queryables.get("properties") or {}).get(name)
    if not isinstance(prop, Mapping):
        return None
    ref = prop.get("$ref")
    if name == "geometry" or (isinstance(ref, str) and ref.startswith("https://geojson.org/")):
        return "geometry"
    kind = prop.get("type")
    if isinstance(kind, list):  # ["string", "null"] is a string; two real types are unknown
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "string" and prop.get("format") == "date-time":
        return "timestamp"
    return kind if isinstance(kind, str) else None


def _from_arrow(kind: pa.DataType) -> dict[str, Any] | None:
    """The JSON Schema of values of an Arrow type; None for those CQL2 cannot compare."""
    types = pa.types
    if types.is_dictionary(kind):
        kind = kind.value_type
    if types.is_string(kind) or types.is_large_string(kind) or types.is_string_view(kind):
        return {"type": "string"}
    if types.is_boolean(kind):
        return {"type": "boolean"}
    if types.is_integer(kind):
        return {"type": "integer"}
    if types.is_floating(kind) or types.is_decimal(kind):
        return {"type": "number"}
    if types.is_timestamp(kind):
        return {"type": "string", "format": "date-time"}
    if types.is_date(kind):
        return {"type": "string", "format": "date"}
    if any(f(kind) for f in (types.is_list, types.is_large_list, types.is_fixed_size_list,
                             types.is_list_view, types.is_large_list_view)):  # fmt: skip
        items = _from_arrow(kind.value_type)
        return {"type": "array", **({"items": items} if items else {})}
    if types.is_struct(kind):
        fields = {f.name: s for f in kind if (s := _from_arrow(f.type)) is not None}
        return {"type": "object", "properties": fields}
    if types.is_map(kind):
        return {"type": "object"}
    return None


def _fits(value: object, kind: object) -> bool:
    """Whether ``value`` is a JSON value of type ``kind`` (bool is not a number in JSON)."""
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float))
    return kind == "string" and isinstance(value, str)


def _describe(prop: dict[str, Any], found: Mapping[str, Any] | None) -> None:
    """Copy a vendored definition's title, description and the constraints that fit
    ``prop``'s type (the type itself comes from Arrow, which is what a filter meets)."""
    if found is None:
        return
    for key in ("title", "description"):
        if isinstance(found.get(key), str) and found[key].strip():
            prop[key] = found[key].strip()  # core datetime.json's descriptions end in a space
    kind = prop.get("type")
    for key in _BOUNDS:
        if kind in ("integer", "number") and _fits(found.get(key), "number"):
            prop[key] = found[key]
    enum = found.get("enum")
    if isinstance(enum, list) and enum and all(_fits(v, kind) for v in enum):
        prop["enum"] = list(enum)


def _summarise(prop: dict[str, Any], summary: object) -> None:
    """Add a Collection summary to ``prop``: a value list is an enum (of the items of an
    array), a range object gives ``minimum``/``maximum``; others are not constraints."""
    target = prop["items"] if prop.get("type") == "array" and "items" in prop else prop
    kind = target.get("type")
    if isinstance(summary, list):
        if summary and all(_fits(v, kind) for v in summary):
            target["enum"] = list(summary)
    elif isinstance(summary, Mapping) and kind in ("integer", "number"):
        for key in ("minimum", "maximum"):
            if _fits(summary.get(key), kind):
                target[key] = summary[key]


def _document(props: dict[str, dict[str, Any]], title: str, id_url: str | None) -> dict[str, Any]:
    """The whole document, properties and their keys in a stable, readable order."""
    ordered = {n: props[n] for n in _FIRST if n in props}
    ordered.update((n, props[n]) for n in sorted(props) if n not in ordered)
    doc: dict[str, Any] = {"$schema": DIALECT}
    if id_url:
        doc["$id"] = id_url
    properties = {n: _tidy(p) for n, p in ordered.items()}
    # False, as the search behaves: a filter on a property that no index has is an error
    # (STAC API Filter: with true, any name is accepted and an absent one is null, which
    # only `lenient` searches do).
    doc.update(type="object", title=title, properties=properties, additionalProperties=False)
    return doc


def _tidy(prop: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: prop[k] for k in _KEY_ORDER if k in prop}
    out.update((k, prop[k]) for k in sorted(prop) if k not in out)
    if isinstance(out.get("items"), Mapping):
        out["items"] = _tidy(out["items"])
    if isinstance(out.get("properties"), Mapping):
        out["properties"] = {n: _tidy(p) for n, p in out["properties"].items()}
    return out


def _types(prop: Mapping[str, Any]) -> set[str]:
    kind = prop.get("type")
    if isinstance(kind, list):
        return set(map(str, kind))
    return {kind} if isinstance(kind, str) else set()


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The narrowest schema that admits every value of ``a`` and of ``b``."""
    if a == b:
        return copy.deepcopy(dict(a))
    out = {k: (a.get(k) or b[k]) for k in ("title", "description") if a.get(k) or b.get(k)}
    left, right = _types(a), _types(b)
    kinds = {"number"} if left | right == {"integer", "number"} else left | right
    if len(kinds) > 1 or bool(left) != bool(right) or a.get("$ref") != b.get("$ref"):
        # Incomparable (a string here, an integer there; a type against none): only the
        # types remain, and only where both sides constrain the type at all.
        if left and right:
            out["type"] = sorted(kinds)
        return out
    if kinds:
        out["type"] = kinds.pop()
    for key in ("$ref", "format"):
        if key in a and a.get(key) == b.get(key):
            out[key] = a[key]
    for key, pick in _BOUNDS.items():
        if key in a and key in b:
            out[key] = pick(a[key], b[key])
    if isinstance(a.get("enum"), list) and isinstance(b.get("enum"), list):
        values = [*a["enum"], *(v for v in b["enum"] if v not in a["enum"])]
        try:
            out["enum"] = sorted(values)
        except TypeError:  # a foreign document mixing value types: keep first-seen order
            out["enum"] = values
    if isinstance(a.get("items"), Mapping) and isinstance(b.get("items"), Mapping):
        out["items"] = _merge(a["items"], b["items"])
    if isinstance(a.get("properties"), Mapping) or isinstance(b.get("properties"), Mapping):
        mine, theirs = a.get("properties") or {}, b.get("properties") or {}
        out["properties"] = {
            n: _merge(mine[n], theirs[n])
            if n in mine and n in theirs
            else copy.deepcopy(mine.get(n, theirs.get(n)))
            for n in sorted({*mine, *theirs})
        }
    return out
