"""Exact k-nearest-neighbour search by cosine similarity of item embeddings.

An item's embedding from model ``M`` is its property ``emb:M``: in a stac-geoparquet index,
a top-level ``fixed_size_list<float>`` column (or ``list<double>``, as stac-geoparquet writes
it before a cast); null where the item has none. The STAC/CQL2 parameters filter first, with
the usual file and row-group pruning of :mod:`scan`; the survivors' vectors are then scored
row group by row group against the query, into one bounded running top-k shared by the
files scanned in parallel: memory holds a row group of vectors per file in flight, never
the catalog's, and only the final k rows are read in full.

Scores are computed in torch, on the GPU when there is one. Results are exact: the top k
by cosine similarity, ties broken by item id, each with its score in ``dafab:score``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from dafab_static.arrays import one_array
from dafab_static.errors import QueryError
from dafab_static.search import scan
from dafab_static.search.cosine import Entry, Scorer, TopK, vectors
from dafab_static.search.params import Request, request
from dafab_static.search.result import SearchResult
from dafab_static.search.sources import IndexFile, Source
from dafab_static.search.tables import take_in_order

SCORE = "dafab:score"
"""The property (and Arrow column) holding each result's cosine similarity."""
PREFIX = "emb:"
DEFAULT_K = 10


@dataclass(frozen=True)
class Near:
    """A validated kNN request: the query (an item id or a vector), ``k`` and the model."""

    k: int
    item: str | None = None
    vector: tuple[float, ...] | None = None
    model: str | None = None


def near_request(
    near: str | Sequence[float], *, k: int | None = None, model: str | None = None
) -> Near:
    """Check the kNN parameters once, at the edge.

    Args:
        near: an item id, or the query vector (a sequence of finite numbers, not all zero).
        k: how many neighbours, at least 1 (default 10).
        model: the embedding model, i.e. the column ``emb:<model>``; ``None`` picks the only
            one there is. A leading ``emb:`` is accepted.

    Raises:
        QueryError: naming the parameter and the value.

    >>> near_request("S2A_0001", k=5).k
    5
    """
    k = DEFAULT_K if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a positive integer, not {k!r}")
    if model is not None:
        model = model.removeprefix(PREFIX)
        if not model:
            raise QueryError("model: empty name")
    if isinstance(near, str):
        if not near.strip():
            raise QueryError("near: empty item id")
        return Near(k, item=near.strip(), model=model)
    wrong = QueryError(f"near: expected an item id or a list of numbers, not {near!r:.80}")
    # numpy would read True as 1.0 and '1' as a number: neither is a vector
    if not isinstance(near, (Sequence, np.ndarray)) or any(
        isinstance(v, (str, bytes, bool, np.bool_)) for v in near
    ):
        raise wrong
    try:
        values = np.asarray(near, dtype=np.float64)
    except (TypeError, ValueError):
        raise wrong from None
    if values.ndim != 1 or not len(values):
        raise QueryError(f"near: expected a flat, non-empty list of numbers (shape {values.shape})")
    if not np.isfinite(values).all():
        raise QueryError("near: the vector holds NaN or infinite values")
    if not values.any():
        raise QueryError("near: the vector is all zeros, so it has no cosine similarity")
    # Cosine ignores scale, but float32 does not: 1e308 overflows, 1e-320 underflows. A
    # power of two brings the largest value into [0.5, 1) and is exact, so a vector equal
    # to an item's still scores exactly 1.
    values = np.ldexp(values, -int(np.frexp(np.abs(values).max())[1]))
    return Near(k, vector=tuple(values.tolist()), model=model)


class NearestResult(SearchResult):
    """The ``k`` items most similar to the query among those the filter keeps, best first.

    Rows carry ``dafab:score`` (the cosine similarity); ``limit`` caps the count below ``k``.
    """

    def __init__(
        self,
        source: Source,
        request: Request,
        near: Near,
        *,
        geometry_column: str | None = None,
        lenient: bool = False,
    ) -> None:
        if request.sortby:
            raise QueryError("sortby: a near search is ordered by similarity; drop sortby")
        super().__init__(source, request, geometry_column=geometry_column, lenient=lenient)
        self.near = near

    # -- the public face ----------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """The results as one pyarrow Table, best first, with a ``dafab:score`` column."""
        table = super().to_arrow()
        if self._scored and SCORE not in table.column_names:  # nothing matched
            table = table.append_column(SCORE, pa.array([], pa.float64()))
        return table

    @property
    def _scored(self) -> bool:
        """Whether rows get ``dafab:score``: unless the Fields extension excludes it."""
        exclude = set(self.request.fields.exclude)
        return not {SCORE, f"properties.{SCORE}"} & exclude

    def count(self) -> int:
        """How many items the search returns, ignoring ``limit``: at most ``k``."""
        return min(self.near.k, len(self._top(self._survivors(), self.near.k)))

    # -- the scan -----------------------------------------------------------------------
    def _batches(self) -> Iterator[pa.Table]:
        limit = self.request.limit
        wanted = self.near.k if limit is None else min(self.near.k, limit)
        survivors = self._survivors()
        top = self._top(survivors, wanted)
        if not top:
            return
        keys = pa.table(
            {name: pa.array([e[i] for e in top], pa.int64()) for i, name in enumerate("fgr", 1)}
        )
        # Ids come with the rows: only now can ties at the k-th score be broken by id.
        tables = list(self._fetch(survivors, keys))
        piece = np.concatenate([np.full(t.num_rows, i) for i, t in enumerate(tables)])
        row = np.concatenate([np.arange(t.num_rows) for t in tables])
        ids: list[str] = []
        for t in tables:
            ids += t["id"].to_pylist() if "id" in t.column_names else [""] * t.num_rows
        order = sorted(range(len(top)), key=lambda i: (top[i][0], ids[i], i))[:wanted]
        # A cosine is within [-1, 1]; float32 dot products of unit vectors land a few ulps
        # outside (a self-match scored 1.0000001).
        scores = np.clip(np.array([-top[i][0] for i in order], dtype=np.float64), -1.0, 1.0)
        done = 0
        for table in take_in_order(tables, piece[order], row[order]):
            if self._scored:
                table = table.append_column(SCORE, pa.array(scores[done : done + table.num_rows]))
            done += table.num_rows
            yield table

    def _top(self, survivors: list[IndexFile], wanted: int) -> list[Entry]:
        """The best ``wanted`` entries over every surviving file, plus any that tie with the
        last of them (the id, read later, decides between those)."""
        opened = [self._with_file(f, lambda file: file, read=False) for f in survivors]
        column = self._column_of(opened, survivors)
        query = self._query(column)
        size = _fixed_size(opened, column)
        if size is not None and size != len(query):
            raise QueryError(
                f"near: the query vector has {len(query)} values, but {column} has {size}"
            )
        if not survivors:
            return []
        scorer = Scorer(query)
        positions = {f.url: i for i, f in enumerate(survivors)}
        # One top-k shared by the files scanned in parallel: its threshold (the k-th best
        # score so far, over all files) rejects most row groups' rows as soon as it is set.
        top = TopK(wanted)

        def per_file(file: scan.OpenFile, node: Any) -> None:
            if column not in file.schema.names:
                return  # a file whose items have no embedding of this model
            position = positions[file.index.url]
            where = f"{column} in {file.index.url}"
            scorer.serial()
            sidecar = _sidecar(file, column)
            for match in scan.matches(file, node, self._pruner, lenient=self.lenient):
                rows = match.rows
                if sidecar is not None:
                    # The vectors sidecar holds the same rows: no Parquet decoding at all.
                    side, starts = sidecar
                    start = int(starts[match.batch.group])
                    if len(rows) == match.batch.num_rows:
                        array = side.slice(start, len(rows))
                    else:
                        array = side.take(pa.array(rows + start))
                else:
                    array = match.batch.column(column)
                    if len(rows) != len(array):
                        array = array.take(pa.array(rows))
                values, kept, null = vectors(array, len(query), where=where)
                if kept is not None:
                    rows = rows[kept]
                if not len(rows):
                    continue
                picked, scores = scorer.candidates(values, top.threshold, wanted, null)
                if len(picked):
                    top.offer(position, match.batch.group, rows[picked], scores)

        try:
            for _ in self._per_file(per_file, survivors):
                pass
        finally:
            scorer.restore()
        return top.entries

    def _column_of(self, opened: list[scan.OpenFile], survivors: list[IndexFile]) -> str:
        """:meth:`_column` of the surviving files, or, where they do not tell (none has an
        embedding, or none of this model), of the pruned ones too, opened one by one until
        one does: whether the catalog has the embeddings must not depend on what the
        prefilter pruned (a bbox that missed every file said "has no embeddings")."""
        names = _embedding_names(opened)
        try:
            return self._column(names)
        except QueryError as error:
            problem = error
        kept = set(map(id, survivors))
        for index_file in self.source.files:
            if id(index_file) in kept:
                continue
            more = _embedding_names([self._with_file(index_file, lambda f: f, read=False)])
            if more <= names:
                continue
            names |= more
            try:
                return self._column(names)
            except QueryError as error:
                problem = error
        raise problem

    def _column(self, embedded: set[str]) -> str:
        """The embedding column: ``emb:<model>``, or the only one of ``embedded``."""
        names = sorted(embedded)
        where = self.source.location
        if self.near.model is not None:
            column = PREFIX + self.near.model
            if column not in names:
                have = f"its embeddings are {', '.join(names)}" if names else "it has none"
                raise QueryError(f"model {self.near.model!r}: {where} has no {column} ({have})")
            return column
        if not names:
            raise QueryError(f"near: {where} has no embeddings (no emb:* column to search)")
        if len(names) > 1:
            raise QueryError(
                f"near: {where} has embeddings of {len(names)} models ({', '.join(names)}); "
                "choose one with model (--model on the command line)"
            )
        return str(names[0])

    def _lookup(self, item: str, column: str, collections: list[str] | None) -> pa.Table:
        lookup = SearchResult(
            self.source,
            request(ids=[item], collections=collections, fields=[column]),
            geometry_column=self.geometry_column,
            lenient=True,
        )
        table = lookup.to_arrow()
        self.stats.add_many(lookup.stats.requests, lookup.stats.bytes)
        return table

    def _query(self, column: str) -> np.ndarray:
        """The query vector: given, or the embedding of the item named by ``near``."""
        if self.near.vector is not None:
            return np.asarray(self.near.vector, dtype=np.float64)
        item = self.near.item
        collections = sorted(self.request.collections) if self.request.collections else None
        # The filter does not apply to the query item: its id does, and the collections
        # first (ids are unique within a collection); an item of another collection is a
        # query too ("Landsat scenes like this Sentinel-2 one").
        table = self._lookup(str(item), column, collections)
        if table.num_rows == 0 and collections:
            table = self._lookup(str(item), column, None)
        if table.num_rows == 0:
            raise QueryError(f"near: no item {item!r} in {self.source.location}")
        if table.num_rows > 1:
            holders = table["collection"] if "collection" in table.column_names else []
            found = sorted(str(c) for c in holders)
            raise QueryError(
                f"near: {table.num_rows} items have the id {item!r} (collections "
                f"{', '.join(found)}); choose one with collections"
            )
        value = table[column][0].as_py() if column in table.column_names else None
        if value is None:
            raise QueryError(f"near: item {item!r} has no embedding {column}")
        vector = np.asarray(value, dtype=np.float64)
        if not np.isfinite(vector).all() or not vector.any():
            raise QueryError(f"near: the {column} of item {item!r} is zero or not finite")
        return vector


def _sidecar(file: scan.OpenFile, column: str) -> tuple[pa.Array, np.ndarray] | None:
    """``column`` from the partition's vectors sidecar (see ``index.encode_vectors``),
    memory-mapped, and the first row of each row group; None when there is none here.

    Only local files: over HTTP or S3 a sidecar would be a second download of vectors the
    Parquet file already holds, so remote searches read the Parquet column.
    """
    from urllib.parse import unquote, urlsplit

    from dafab_static.index import vectors_path

    parts = urlsplit(file.index.url)
    if parts.scheme not in ("", "file"):
        return None
    partition = unquote(parts.path) if parts.scheme == "file" else file.index.url
    table = _SIDECARS.get(partition, vectors_path(partition))
    metadata = file.parquet.metadata
    if table is None or column not in table.column_names or table.num_rows != metadata.num_rows:
        return None
    counts = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(counts)])
    return one_array(table.column(column)), starts


class _SidecarCache:
    """Opened sidecars that match their Parquet file, kept while neither file changes.

    Opening one and fingerprinting its Parquet file cost 0.5-0.9 ms a file (measured): 24
    files a query, some 15 CPU-ms of a 133 ms kNN on the 1M benchmark catalog. A file
    rewritten in place, or replaced, changes its size, mtime, ctime or inode, and the
    pair is then opened and fingerprinted again. At most ``size`` are kept (each holds a
    file descriptor and a memory map, no heap).
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._kept: dict[str, tuple[Any, pa.Table | None]] = {}
        self._lock = threading.Lock()

    def get(self, partition: str, path: str) -> pa.Table | None:
        """The sidecar at ``path`` when it was written for the Parquet file ``partition``."""
        try:
            signature = (_signature(partition), _signature(path))
        except OSError:
            return None  # no sidecar (or no file): the Parquet column answers
        with self._lock:
            kept = self._kept.get(path)
        if kept is not None and kept[0] == signature:
            return kept[1]
        table = _open_sidecar(partition, path)
        with self._lock:
            self._kept[path] = (signature, table)
            while len(self._kept) > self.size:
                self._kept.pop(next(iter(self._kept)))
        return table


def _signature(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _open_sidecar(partition: str, path: str) -> pa.Table | None:
    """The sidecar, memory-mapped, or None when it is unreadable or not this file's: the
    Parquet file was rewritten since (by another tool, with as many rows, it scored the old
    vectors), or the sidecar predates fingerprints."""
    from dafab_static.index import SIDECAR_OF, file_fingerprint

    try:
        table = pa.ipc.open_file(pa.memory_map(path)).read_all()
        written_for = (table.schema.metadata or {}).get(SIDECAR_OF)
        current = file_fingerprint(partition)
    except (OSError, pa.ArrowInvalid):
        return None  # unreadable: the Parquet column still answers
    return table if written_for == current else None


_SIDECARS = _SidecarCache()


def _is_embedding(field: pa.Field) -> bool:
    kind = field.type
    if not field.name.startswith(PREFIX):
        return False
    lists = (pa.types.is_fixed_size_list, pa.types.is_list, pa.types.is_large_list)
    return any(test(kind) for test in lists) and bool(pa.types.is_floating(kind.value_type))


def _embedding_names(files: list[scan.OpenFile]) -> set[str]:
    """The embedding columns (``emb:*`` vectors) of ``files``."""
    return {n for f in files for n in f.schema.names if _is_embedding(f.schema.field(n))}


def _fixed_size(files: list[scan.OpenFile], column: str) -> int | None:
    """The column's dimension when a file stores it as a fixed-size list."""
    for file in files:
        if column in file.schema.names:
            kind = file.schema.field(column).type
            if pa.types.is_fixed_size_list(kind):
                return int(kind.list_size)
    return None


def nearest(
    source: Source,
    request: Request,
    near: Near,
    *,
    geometry_column: str | None = None,
    lenient: bool = False,
) -> NearestResult:
    """The kNN search over ``source``, after the filters of ``request``.

    Raises:
        QueryError: ``sortby`` given (results are ordered by score); at scan time, an unknown
            item or model, several models and none chosen, or a vector of the wrong length.

    >>> from dafab_static.search.sources import resolve
    >>> nearest(resolve("out/"), request(), near_request("S2A_0001"))  # doctest: +SKIP
    """
    return NearestResult(source, request, near, geometry_column=geometry_column, lenient=lenient)
