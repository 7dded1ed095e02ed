"""The lazy result of a search: iterate items, count, page, or take an Arrow table."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pygeofilter import ast

from dafab_static import storage
from dafab_static.cql2 import nodes
from dafab_static.errors import QueryError
from dafab_static.search import checks, scan
from dafab_static.search import files as filecache
from dafab_static.search.features import features, geometry_name
from dafab_static.search.geometry import crs_of, shapes_of_table
from dafab_static.search.params import Fields, Request
from dafab_static.search.prune import Pruner
from dafab_static.search.sources import IndexFile, Source
from dafab_static.search.tables import (
    bounded,
    coalesced,
    concat,
    concat_keys,
    nulls_last,
    sortable,
    take_in_order,
)

_SORT_CHUNK = 8192
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
            needed = {n for c in self.request.conjuncts for n in checks.attributes(c)}
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
            checks.check(self.request, opened, where=self.source.location)
            self._checked = True
        return survivors

    def _node(self, names: set[str]) -> Any:
        parts = list(self.request.conjuncts)
        time = scan.time_conjunct(self.request, names)
        if time is not None:
            parts.insert(0, time)
        return nodes.fold(ast.And, parts) if parts else None

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

        sized = None if weight is None else (lambda pair: weight(pair[1]))
        return filecache.ordered_map(
            task, range(len(survivors)), window=window, workers=_workers(survivors), weight=sized
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
                    f"k{i}": sortable(match.batch.column(k.field).take(taken), k.field)
                    for i, k in enumerate(keys)
                }
                columns["g"] = pa.array(np.full(len(match.rows), match.batch.group))
                columns["r"] = pa.array(match.rows)
                tables.append(pa.table(columns))
            return bounded(tables, limit, sort_keys[: len(keys)])

        top: pa.Table | None = None
        survivors = self._survivors()
        for position, table in self._per_file(key_table, survivors):
            if table is None:
                continue
            table = table.append_column("f", pa.array(np.full(table.num_rows, position)))
            top = table if top is None else concat_keys(top, table)
            if limit is not None and top.num_rows > 4 * limit + _SORT_CHUNK:
                top = top.take(pc.select_k_unstable(top, limit, sort_keys=sort_keys))
        if top is None:
            return
        top = top.take(pc.sort_indices(top, sort_keys=nulls_last(sort_keys)))
        if limit is not None:
            top = top.slice(0, limit)
        for start in range(0, top.num_rows, _SORT_CHUNK):
            yield from self._fetch(survivors, top.slice(start, _SORT_CHUNK))

    def _fetch(self, survivors: list[IndexFile], keys: pa.Table) -> Iterator[pa.Table]:
        """Full rows for (file, row group, row) keys, in the keys' order, as one table or,
        for files of different schemas, several (see :func:`take_in_order`).

        One task per file, which opens it once for all its row groups, the files in
        parallel: opened once per row group, one after the other, the 10 rows of a kNN
        search over the 1M benchmark catalog took most of its 65 ms (measured).
        """
        f, g, r = (keys[c].to_numpy() for c in ("f", "g", "r"))
        groups: dict[int, list[int]] = {}
        for fi, gi in sorted(set(zip(f.tolist(), g.tolist(), strict=True))):
            groups.setdefault(fi, []).append(gi)
        alone = len(groups) == 1

        def task(fi: int) -> list[tuple[np.ndarray, pa.Table]]:
            def read(file: scan.OpenFile) -> list[tuple[np.ndarray, pa.Table]]:
                out = []
                for gi in groups[fi]:
                    where = np.flatnonzero((f == fi) & (g == gi))
                    batch = scan._Batch(file, gi, lenient=self.lenient)
                    out.append((where, batch.read(r[where], self._projection(file))))
                return out

            return self._with_file(survivors[fi], read, threads=alone)

        pieces: list[pa.Table] = []
        where_of = np.empty(len(r), dtype=np.int64)
        position = np.empty(len(r), dtype=np.int64)
        chosen = [survivors[fi] for fi in groups]
        for read_groups in filecache.ordered_map(task, list(groups), workers=_workers(chosen)):
            for where, table in read_groups:
                where_of[where] = len(pieces)
                position[where] = np.arange(len(where))
                pieces.append(table)
        yield from take_in_order(pieces, where_of, position)

    # -- the public face ----------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """All matching rows as one pyarrow Table (stac-geoparquet columns)."""
        tables = list(self.batches())
        if tables:
            return concat(tables)
        survivors = self._survivors() or list(self.source.files[:1])
        if not survivors:
            return pa.table({})
        schema = self._with_file(survivors[0], lambda file: file.schema, read=False)
        return schema.empty_table()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Matching items as STAC (GeoJSON Feature) dicts."""
        fields = self.request.fields
        # STAC requires both; an index whose items all had none stores no column for them.
        empty = [member for member in ("assets", "links") if fields.keeps(member)]
        nested = fields.nested_exclude
        picked = fields.nested_include
        for table in coalesced(self.batches()):
            for item in features(table, self.geometry_column):
                if "stac_version" in item:
                    for member in empty:
                        if member not in item:
                            item[member] = {} if member == "assets" else []
                    for within, paths in picked.items():
                        _keep_paths(item, within, paths)
                    for path in nested:
                        _drop_path(item, path)
                yield item

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
        geometry = geometry_name(table.schema, self.geometry_column)
        if geometry not in table.column_names:
            return geopandas.GeoDataFrame(table.to_pandas())
        geoms = shapes_of_table(table, geometry)
        frame = table.drop_columns([geometry]).to_pandas()
        return geopandas.GeoDataFrame(frame, geometry=geoms, crs=crs_of(table.schema, geometry))


def _workers(files: list[IndexFile]) -> int | None:
    """Threads for a pass over ``files``: more where any is remote (they wait on the
    network), else the default (one per core)."""
    remote = any("://" in f.url and not f.url.startswith("file:") for f in files)
    return filecache.REMOTE_WORKERS if remote else None


_NOTHING = object()


def _keep_paths(
    item: dict[str, Any], member: tuple[str, ...], paths: tuple[tuple[str, ...], ...]
) -> None:
    """Keep only ``paths`` inside ``item``'s ``member`` (Fields: ``properties.nest.b``);
    a member left with nothing is dropped, as a path that is not there is not returned."""
    holder: Any = item
    for name in member[:-1]:
        holder = holder.get(name) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or member[-1] not in holder:
        return
    kept = _pick(holder[member[-1]], paths)
    if kept is _NOTHING:
        del holder[member[-1]]
    else:
        holder[member[-1]] = kept


def _pick(value: Any, paths: tuple[tuple[str, ...], ...]) -> Any:
    if any(not path for path in paths):
        return value
    if not isinstance(value, dict):
        return _NOTHING
    out = {}
    for key, inner in value.items():
        below = tuple(path[1:] for path in paths if path[0] == key)
        if below and (kept := _pick(inner, below)) is not _NOTHING:
            out[key] = kept
    return out if out else _NOTHING


def _drop_path(item: dict[str, Any], path: tuple[str, ...]) -> None:
    """Remove ``item[path[0]]...[path[-1]]`` where it exists (Fields: ``assets.data.type``)."""
    target: Any = item
    for name in path[:-1]:
        target = target.get(name) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target.pop(path[-1], None)
