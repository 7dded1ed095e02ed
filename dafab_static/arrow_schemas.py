"""One Arrow schema for tables that type their fields differently: unify, then conform.

A collection's partitions are written month by month, and each month's items may lack
fields that others have, or give a number where others give an integer: the dataset needs
one schema (the build), and a search across collections one table (``conflicts="string"``).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa


class SchemaConflict(TypeError):
    """Two files give one field types that no Arrow type holds both of (for example
    ``raster:bands[].nodata`` as ``0`` in one collection and ``"nan"`` in another, both
    valid STAC). ``path`` names the field, dotted, with ``[]`` for list elements."""

    def __init__(self, path: str, left: pa.DataType, right: pa.DataType) -> None:
        super().__init__(f"field {path!r} is {left} in one file and {right} in another")
        self.path = path


def unify(schemas: Iterable[pa.Schema], *, conflicts: str = "raise") -> pa.Schema:
    """One schema for several files: columns and struct fields missing somewhere become
    null, numbers widen (int64 with double gives double).

    Args:
        schemas: the files' schemas (their metadata is ignored).
        conflicts: what to do with a field whose types cannot be unified: ``"raise"`` a
            :class:`SchemaConflict` naming it (the build: an index must keep the items'
            values), or ``"string"`` to read it as text, as DuckDB's ``union_by_name`` does
            (a search returning rows of several collections as one table).
    """
    schemas = [s.remove_metadata() for s in schemas]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass  # find the field, field by field, to name it or to promote it
    # A schema is a struct's fields: merge them as one.
    merged = pa.struct(list(schemas[0]))
    for schema in schemas[1:]:
        merged = _merge(merged, pa.struct(list(schema)), "", conflicts)
    return pa.schema(list(merged))


def _merge(left: pa.DataType, right: pa.DataType, path: str, conflicts: str) -> pa.DataType:
    if left.equals(right) or pa.types.is_null(right):
        return left
    if pa.types.is_null(left):
        return right
    if pa.types.is_struct(left) and pa.types.is_struct(right):
        merged = {f.name: f.type for f in left}
        for f in right:
            known = merged.get(f.name)
            here = f"{path}.{f.name}" if path else f.name
            merged[f.name] = f.type if known is None else _merge(known, f.type, here, conflicts)
        return pa.struct(list(merged.items()))
    lists = (pa.types.is_list, pa.types.is_large_list)
    if any(t(left) for t in lists) and any(t(right) for t in lists):
        value = _merge(left.value_type, right.value_type, f"{path}[]", conflicts)
        large = pa.types.is_large_list(left) or pa.types.is_large_list(right)
        return pa.large_list(value) if large else pa.list_(value)
    try:
        pair = [pa.schema([("v", left)]), pa.schema([("v", right)])]
        return pa.unify_schemas(pair, promote_options="permissive").field("v").type
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        if conflicts == "string" and not (pa.types.is_nested(left) or pa.types.is_nested(right)):
            return pa.string()
        raise SchemaConflict(path, left, right) from None


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Reshape ``table`` to ``schema``: add missing columns as nulls, reorder, cast."""
    columns = [
        table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema.with_metadata(table.schema.metadata))
