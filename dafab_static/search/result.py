"""The lazy result of a search: iterate items, count, page, or take an Arrow table."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pygeofilter import ast

from dafab_static import index, index_items, storage
from dafab_static.errors import QueryError
from dafab_static.search import files as filecache
from dafab_static.search import scan
from dafab_static.search.geometry import crs_of, primary_column, shapes_of_table
from dafab_static.search.params import Fields, Request
from dafab_static.search.prune import Pruner
from dafab_static.search.sources import IndexFile, Source

_SORT_CHUNK = 8192
_COALESCE_ROWS = 2048
_COALESCE_TABLES = 16
# Parquet timestamps come back with microseconds: see _short_time.
_TIMES = ("datetime", "start_datetime", "end_datetime", "created", "updated")
_NOT_PROPERTIES = {
    "type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "links", "assets",
    "collection",
}  # fmt: skip
_PAD = "dafab:pad"
T = TypeVar("T")


class SearchResult:
    """Items matching a search, read on demand; every method runs the scan afresh.

    ``stats`` totals the requests and bytes read so far (the CLI's ``--verbose``).
    """

    def __init__(
        self,
        source: Source,
        request: Request,
        *,
        geometry_column: str | None = None,
        lenient: bool = False,
    ) -> None:
        self.source = source
        self.request = request
        self.geometry_column = geometry_column
        self.lenient = lenient
        self.stats = storage.IOStats()
        self._pruner = Pruner.from_request(
            request.conjuncts, time=request.time, collections=request.collections
        )
        self._checked = False

    def with_fields(self, fields: Fields) -> SearchResult:
        """The same search, returning other members of the items (the Fields extension);
        the I/O counted so far is shared."""
        clone = copy.copy(self)
        clone.request = dataclasses.replace(self.request, fields=fields)
        return clone

    # -- files ------------------------------------------------------------------------
    def _with_file(
        self,
        index_file: IndexFile,
        work: Callable[[scan.OpenFile], T],
        *,
        read: bool = True,
        threads: bool = True,
    ) -> T:
        """Run ``work`` on a (usually cached) file, its reader open when ``read`` (with
        Arrow's column threads when ``threads``: see ``parquet.Reader``), counting its I/O."""
        file, shared = filecache.CACHE.get(
            index_file, lambda: scan.OpenFile(index_file, self.geometry_column)
        )
        with file.lock:
            requests, nbytes = file.io.requests, file.io.bytes
            if not file.counted:  # the footer read belongs to the first search that opened it
                requests, nbytes, file.counted = 0, 0, True
            try:
                if not read:
                    return work(file)
                with file.opened() as reader:
                    reader.threads = threads
                    return work(file)
            finally:
                self.stats.add_many(file.io.requests - requests, file.io.bytes - nbytes)
                if not shared:
                    file.close()

    def _survivors(self) -> list[IndexFile]:
        survivors = [f for f in self.source.files if self._pruner.file_may_match(f)]
        if not self._checked and not self.lenient and self.source.files:
            # Check against the files' columns even when the manifest pruned every file:
            # a typo must not pass as "no results" just because the bbox missed.
            # Open files until every name resolves (usually the first one suffices: footers
            # are the cost of a search, and a limit-1 search should not read them all).
            needed = {n for c in self.request.conjuncts for n in scan.attributes(c)}
            needed |= {key.field for key in self.request.sortby}
            opened: list[scan.OpenFile] = []
            # Survivors first; then pruned files, which still define what a name means (the
            # summaries may prune every file that has the column, e.g. `x > max(x)`).
            kept = set(map(id, survivors))
            pruned = [f for f in self.source.files if id(f) not in kept]
            for index_file in [*survivors, *pruned]:
                opened.append(self._with_file(index_file, lambda file: file, read=False))
                needed = {n for n in needed if all(f.resolve(n) is None for f in opened)}
                if not needed:
                    break
            scan.check(self.request, opened, where=self.source.location)
            self._checked = True
        return survivors

    def _node(self, names: set[str]) -> Any:
        parts = list(self.request.conjuncts)
        time = scan.time_conjunct(self.request, names)
        if time is not None:
            parts.insert(0, time)
        if not parts:
            return None
        node = parts[0]
        for part in parts[1:]:
            node = ast.And(node, part)
        return node

    def _per_file(
        self,
        work: Callable[[scan.OpenFile, Any], T],
        survivors: list[IndexFile],
        *,
        window: int | None = None,
        weight: Callable[[T], int] | None = None,
    ) -> Iterator[tuple[int, T]]:
        """``work(file, node)`` on every file of ``survivors``, in parallel (``window`` files
        in flight, or more while results are small: see ``filecache.ordered_map``), results
        in file order."""

        alone = len(survivors) == 1  # else files decode in parallel with each other

        def task(position: int) -> tuple[int, T]:
            def run(file: scan.OpenFile) -> T:
                return work(file, self._node(set(file.schema.names)))

            return position, self._with_file(survivors[position], run, threads=alone)

        remote = any("://" in f.url and not f.url.startswith("file:") for f in survivors)
        workers = filecache.REMOTE_WORKERS if remote else None
        sized = None if weight is None else (lambda pair: weight(pair[1]))
        return filecache.ordered_map(
            task, range(len(survivors)), window=window, workers=workers, weight=sized
        )

    # -- rows ---------------------------------------------------------------------------
    def batches(self) -> Iterator[pa.Table]:
        """Matching rows as Arrow tables, in result order (sorted when ``sortby`` is set)."""
        try:
            yield from self._batches()
        finally:
            # mimalloc keeps freed pages; a long-lived process (a notebook, a server) should
            # not hold the peak of its last search.
            pa.default_memory_pool().release_unused()

    def _batches(self) -> Iterator[pa.Table]:
        if self.request.sortby:
            yield from self._sorted()
            return
        cap = self.request.limit

        def rows(file: scan.OpenFile, node: Any) -> list[pa.Table]:
            out, left = [], cap
            for match in scan.matches(file, node, self._pruner, lenient=self.lenient):
                picked = match.rows if left is None else match.rows[:left]
                out.append(match.batch.read(picked, self._projection(file)))
                if left is not None:
                    left -= len(picked)
                    if left <= 0:
                        break
            return out

        remaining = cap
        # With a limit, read one file at a time so that reading stops where the limit does.
        window = 1 if cap is not None else None

        def size(tables: list[pa.Table]) -> int:
            # The buffers held, summed: half the cost of ``nbytes``, which works out the
            # byte ranges each array references (the same figure for these compact tables).
            return sum(t.get_total_buffer_size() for t in tables)

        per_file = self._per_file(rows, self._survivors(), window=window, weight=size)
        for _, tables in per_file:
            for table in tables:
                if remaining is not None:
                    table = table.slice(0, remaining)
                    remaining -= table.num_rows
                if table.num_rows:
                    yield table
                if remaining is not None and remaining <= 0:
                    return

    def _projection(self, file: scan.OpenFile) -> list[str]:
        return scan.projection(file, self.request.fields)

    def _sorted(self) -> Iterator[pa.Table]:
        keys = self.request.sortby
        limit = self.request.limit
        sort_keys = [
            (f"k{i}", "ascending" if k.ascending else "descending") for i, k in enumerate(keys)
        ]
        sort_keys += [("f", "ascending"), ("g", "ascending"), ("r", "ascending")]

        def key_table(file: scan.OpenFile, node: Any) -> pa.Table | None:
            tables = []
            for match in scan.matches(file, node, self._pruner, lenient=self.lenient):
                taken = pa.array(match.rows)
                columns = {
                    f"k{i}": _sortable(match.batch.column(k.field).take(taken))
                    for i, k in enumerate(keys)
                }
                columns["g"] = pa.array(np.full(len(match.rows), match.batch.group))
                columns["r"] = pa.array(match.rows)
                tables.append(pa.table(columns))
            return _bounded(tables, limit, sort_keys[: len(keys)])

        top: pa.Table | None = None
        survivors = self._survivors()
        for position, table in self._per_file(key_table, survivors):
            if table is None:
                continue
            table = table.append_column("f", pa.array(np.full(table.num_rows, position)))
            top = table if top is None else _concat_keys(top, table)
            if limit is not None and top.num_rows > 4 * limit + _SORT_CHUNK:
                top = top.take(pc.select_k_unstable(top, limit, sort_keys=sort_keys))
        if top is None:
            return
        top = top.take(pc.sort_indices(top, sort_keys=_nulls_last(sort_keys)))
        if limit is not None:
            top = top.slice(0, limit)
        for start in range(0, top.num_rows, _SORT_CHUNK):
            yield from self._fetch(survivors, top.slice(start, _SORT_CHUNK))

    def _fetch(self, survivors: list[IndexFile], keys: pa.Table) -> Iterator[pa.Table]:
        """Full rows for (file, row group, row) keys, in the keys' order, as one table or,
        for files of different schemas, several (see :func:`take_in_order`)."""
        f, g, r = (keys[c].to_numpy() for c in ("f", "g", "r"))
        pieces: list[pa.Table] = []
        where_of = np.empty(len(r), dtype=np.int64)
        position = np.empty(len(r), dtype=np.int64)
        for fi, gi in sorted(set(zip(f.tolist(), g.tolist(), strict=True))):
            where = np.flatnonzero((f == fi) & (g == gi))

            def read(file: scan.OpenFile, gi: int = gi, where: np.ndarray = where) -> pa.Table:
                batch = scan._Batch(file, gi, lenient=self.lenient)
                return batch.read(r[where], self._projection(file))

            where_of[where] = len(pieces)
            position[where] = np.arange(len(where))
            pieces.append(self._with_file(survivors[fi], read))
        yield from take_in_order(pieces, where_of, position)

    # -- the public face ----------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """All matching rows as one pyarrow Table (stac-geoparquet columns)."""
        tables = list(self.batches())
        if tables:
            return _concat(tables)
        survivors = self._survivors() or list(self.source.files[:1])
        if not survivors:
            return pa.table({})
        schema = self._with_file(survivors[0], lambda file: file.schema, read=False)
        return schema.empty_table()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Matching items as STAC (GeoJSON Feature) dicts."""
        for table in _coalesced(self.batches()):
            yield from _features(table, self.geometry_column)

    def items(self) -> Iterator[dict[str, Any]]:
        """The same as iterating: matching items as dicts."""
        return iter(self)

    def pages(self, size: int = 100) -> Iterator[list[dict[str, Any]]]:
        """Matching items in lists of at most ``size``, like STAC API pages."""
        if size < 1:
            raise QueryError(f"page size must be a positive integer, not {size}")
        page: list[dict[str, Any]] = []
        for item in self:
            page.append(item)
            if len(page) == size:
                yield page
                page = []
        if page:
            yield page

    def count(self) -> int:
        """How many items match, ignoring ``limit`` (STAC API's ``numberMatched``).

        Without any condition this is the row count from the manifest or the footers,
        with no row decoded at all.
        """
        request = self.request
        if not request.conjuncts and request.time is None and not request.sortby:
            rows = [f.rows for f in self.source.files]
            if all(n is not None for n in rows):
                return sum(n for n in rows if n is not None)

        def count(file: scan.OpenFile, node: Any) -> int:
            if node is None:
                return int(file.parquet.metadata.num_rows)
            return sum(
                len(m.rows) for m in scan.matches(file, node, self._pruner, lenient=self.lenient)
            )

        return sum(n for _, n in self._per_file(count, self._survivors()))

    def to_geodataframe(self) -> Any:
        """Matching rows as a geopandas GeoDataFrame (needs the optional ``geopandas``)."""
        try:
            import geopandas
        except ImportError:
            raise QueryError(
                "to_geodataframe needs geopandas: pip install 'dafab-static[geo]'"
            ) from None
        table = self.to_arrow()
        geometry = _geometry_name(table.schema, self.geometry_column)
        if geometry not in table.column_names:
            return geopandas.GeoDataFrame(table.to_pandas())
        geoms = shapes_of_table(table, geometry)
        frame = table.drop_columns([geometry]).to_pandas()
        return geopandas.GeoDataFrame(frame, geometry=geoms, crs=crs_of(table.schema, geometry))


def _coalesced(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The same rows in the same order, consecutive tables of one schema joined (up to
    about ``_COALESCE_ROWS`` rows from at most ``_COALESCE_TABLES`` tables). Scattered
    matches come a few rows per row group, and turning a table into dicts has a fixed cost
    (a few ms for a wide schema: 24 assets of a Sentinel-2 item) that would otherwise be
    paid once per row group. The table cap keeps iteration lazy: the first item waits for
    at most that many row groups."""
    held: list[pa.Table] = []
    count = 0
    for table in tables:
        full = count >= _COALESCE_ROWS or len(held) >= _COALESCE_TABLES
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


def _bounded(
    tables: list[pa.Table], limit: int | None, keys: list[tuple[str, str]]
) -> pa.Table | None:
    if not tables:
        return None
    table = _concat_keys(*tables) if len(tables) > 1 else tables[0]
    if limit is not None and table.num_rows > limit:
        table = table.take(pc.select_k_unstable(table, limit, sort_keys=keys))
    return table


def _concat_keys(*tables: pa.Table) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive")


def _nulls_last(keys: list[tuple[str, str]]) -> list[Any]:
    """Sort keys with nulls last (STAC API: items without the property sort after the
    others). pyarrow 25 moved null_placement from SortOptions into each key."""
    if int(pa.__version__.split(".")[0]) >= 25:
        return [(name, order, "at_end") for name, order in keys]
    return keys  # at_end is the default of older pyarrow


def _sortable(column: pa.Array) -> pa.Array:
    """Sort keys of files with different types in one column: numbers as float64,
    timestamps as UTC microseconds, text as string."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return column.cast(pa.float64())
    if pa.types.is_timestamp(kind):
        return column.cast(pa.timestamp("us", tz="UTC"))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(pa.string())
    if pa.types.is_boolean(kind) or pa.types.is_null(kind):
        return column  # a property absent from a file: concat promotes null to the type
    raise QueryError(f"sortby: a {kind} property cannot be sorted")


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table of results from several files. A field that one collection types as a
    number and another as text comes back as text, as DuckDB's ``union_by_name`` does;
    iterating the result as items keeps each item's own types."""
    if len(tables) == 1:
        return tables[0]
    schemas = [t.schema for t in tables]
    if all(s.equals(schemas[0]) for s in schemas):
        return pa.concat_tables(tables)
    try:
        schema = index.unify(schemas, conflicts="string")
    except index.SchemaConflict as e:
        raise QueryError(
            f"the matching items cannot form one Arrow table: {e}; iterate the result as "
            f"items, or narrow the search to one collection"
        ) from None
    return pa.concat_tables([index.conform(t, schema) for t in tables])


def _short_time(value: str) -> str:
    """``...10:30:31.000000Z`` → ``...10:30:31Z``, ``...31.024000Z`` → ``...31.024Z``: the
    spellings STAC items use (seconds, milliseconds, microseconds), for the same instant."""
    head, dot, fraction = value[:-1].rpartition(".")
    if not dot or len(fraction) != 6:
        return value
    if fraction == "000000":
        return f"{head}Z"
    return f"{head}.{fraction[:3]}Z" if fraction.endswith("000") else value


def _geometry_name(schema: pa.Schema, given: str | None) -> str:
    """The geometry column: the one asked for, else GeoParquet's primary, else "geometry"."""
    return given or primary_column(schema) or "geometry"


def _features(table: pa.Table, geometry_column: str | None) -> Iterator[dict[str, Any]]:
    names = table.column_names
    if "stac_version" in names and "type" in names:
        # stac-geoparquet's converter needs a bbox column and at least one property column;
        # a Fields projection may leave neither. Pad, convert, then drop the padding.
        padded = "bbox" not in names
        zeros = pa.array(np.zeros(table.num_rows))
        if padded:
            bbox = pa.StructArray.from_arrays([zeros] * 4, ["xmin", "ymin", "xmax", "ymax"])
            table = table.append_column("bbox", bbox)
        no_properties = set(names) <= _NOT_PROPERTIES
        if no_properties:
            table = table.append_column(_PAD, zeros)
        for batch in table.to_batches():
            for item in index_items.to_items(batch):
                if padded:
                    item.pop("bbox", None)
                if no_properties:
                    item["properties"].pop(_PAD, None)
                props = item.get("properties", {})
                if "datetime" not in names and props.get("datetime", 0) is None:
                    del props["datetime"]  # projected away by Fields, not null
                for key in _TIMES:
                    value = props.get(key)
                    if type(value) is str and value.endswith("000Z"):
                        props[key] = _short_time(value)
                yield item
        return
    # Plain GeoParquet: the other columns are the feature's properties.
    geometry = _geometry_name(table.schema, geometry_column)
    geoms: list[Any] = [None] * table.num_rows
    if geometry in names:
        shapes = shapes_of_table(table, geometry)
        geoms = [orjson.loads(g) if g is not None else None for g in shapely.to_geojson(shapes)]
        table = table.drop_columns([geometry])
    for row, geom in zip(table.to_pylist(), geoms, strict=True):
        feature: dict[str, Any] = {"type": "Feature", "geometry": geom, "properties": row}
        if "id" in row:
            feature["id"] = row.pop("id")
        yield feature
