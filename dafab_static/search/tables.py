"""Arrow tables of search results: joined, ordered, cut to a limit, made one.

Files of several collections may type one field differently; these helpers keep each
item's own types while iterating, and make one table only where one is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dafab_static import arrow_schemas
from dafab_static.errors import QueryError

#: Rows joined into one table before turning them into items, and the most tables joined.
COALESCE_ROWS = 2048
COALESCE_TABLES = 16


def coalesced(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The same rows in the same order, consecutive tables of one schema joined (up to
    about ``COALESCE_ROWS`` rows from at most ``COALESCE_TABLES`` tables). Scattered
    matches come a few rows per row group, and turning a table into dicts has a fixed cost
    (a few ms for a wide schema: 24 assets of a Sentinel-2 item) that would otherwise be
    paid once per row group. The table cap keeps iteration lazy: the first item waits for
    at most that many row groups."""
    held: list[pa.Table] = []
    count = 0
    for table in tables:
        full = count >= COALESCE_ROWS or len(held) >= COALESCE_TABLES
        if held and (full or not table.schema.equals(held[0].schema)):
            yield pa.concat_tables(held).combine_chunks()
            held, count = [], 0
        held.append(table)
        count += table.num_rows
    if held:
        yield pa.concat_tables(held).combine_chunks()


def take_in_order(pieces: list[pa.Table], piece: np.ndarray, row: np.ndarray) -> Iterator[pa.Table]:
    """Rows ``row[i]`` of ``pieces[piece[i]]``, in the order of ``i``.

    Pieces that share a schema give one table. Otherwise each run of consecutive rows from
    one piece comes as its own table, with that piece's types: files of two collections
    may type one field differently (``nodata`` 0 in one, "nan" in the other), and items
    must keep their values. Only :meth:`SearchResult.to_arrow` makes one table of them.
    """
    if not pieces:
        return
    schemas = [p.schema for p in pieces]
    if all(s.equals(schemas[0]) for s in schemas):
        offsets = np.cumsum([0] + [p.num_rows for p in pieces[:-1]])
        yield pa.concat_tables(pieces).take(pa.array(offsets[piece] + row))
        return
    starts = np.flatnonzero(np.diff(piece, prepend=-1))
    ends = np.append(starts[1:], len(row))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        yield pieces[piece[start]].take(pa.array(row[start:end]))


def bounded(
    tables: list[pa.Table], limit: int | None, keys: list[tuple[str, str]]
) -> pa.Table | None:
    if not tables:
        return None
    table = concat_keys(*tables) if len(tables) > 1 else tables[0]
    if limit is not None and table.num_rows > limit:
        table = table.take(pc.select_k_unstable(table, limit, sort_keys=keys))
    return table


def concat_keys(*tables: pa.Table) -> pa.Table:
    """The sort keys of several files as one table. A key that one collection types as a
    number (or time, or boolean) and another as text is compared as text, as that field is
    in the results' one table (:func:`concat`) and in DuckDB's ``union_by_name``."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    out = list(tables)
    for name in tables[0].column_names:
        kinds = {t.schema.field(name).type for t in tables} - {pa.null()}
        if len(kinds) > 1:
            for n, table in enumerate(out):
                index = table.schema.get_field_index(name)
                out[n] = table.set_column(index, name, table[name].cast(pa.string()))
    return pa.concat_tables(out, promote_options="permissive")


def nulls_last(keys: list[tuple[str, str]]) -> list[Any]:
    """Sort keys with nulls last (STAC API: items without the property sort after the
    others). pyarrow 25 moved null_placement from SortOptions into each key."""
    if int(pa.__version__.split(".")[0]) >= 25:
        return [(name, order, "at_end") for name, order in keys]
    return keys  # at_end is the default of older pyarrow


def sortable(column: pa.Array, name: str) -> pa.Array:
    """Sort keys of files with different types in one column: numbers as float64,
    timestamps as UTC microseconds, text as string. ``name``: the sortby field."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return column.cast(pa.float64())
    if pa.types.is_timestamp(kind):
        return column.cast(pa.timestamp("us", tz="UTC"))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(pa.string())
    if pa.types.is_boolean(kind) or pa.types.is_null(kind):
        return column  # a property absent from a file: concat promotes null to the type
    raise QueryError(f"sortby: {name!r} is {kind}, which cannot be sorted")


def concat(tables: list[pa.Table]) -> pa.Table:
    """One table of results from several files. A field that one collection types as a
    number and another as text comes back as text, as DuckDB's ``union_by_name`` does;
    iterating the result as items keeps each item's own types."""
    if len(tables) == 1:
        return tables[0]
    schemas = [t.schema for t in tables]
    if all(s.equals(schemas[0]) for s in schemas):
        return pa.concat_tables(tables)
    try:
        schema = arrow_schemas.unify(schemas, conflicts="string")
    except arrow_schemas.SchemaConflict as e:
        raise QueryError(
            f"the matching items cannot form one Arrow table: {e}; iterate the result as "
            f"items, or narrow the search to one collection"
        ) from None
    return pa.concat_tables([arrow_schemas.conform(t, schema) for t in tables])
