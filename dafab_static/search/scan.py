"""The scan: prune, test the filter on the columns it needs, then read full rows of matches.

Pass 1 decodes, per surviving row group, only the columns the filter touches (lazily: a
conjunct that rejects every row stops the others from loading theirs). Pass 2 reads the
projected columns of the matching rows' row groups. Peers that decode every column of
every candidate row spend most of their time on rows this first pass throws away.
"""

from __future__ import annotations

import difflib
import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pygeofilter import ast

from dafab_static import storage
from dafab_static.arrays import one_array, pick_rows
from dafab_static.cql2 import nodes, to_arrow
from dafab_static.errors import QueryError, StorageError
from dafab_static.search import files, geometry
from dafab_static.search.params import DEFAULT_FIELDS, Fields, Request
from dafab_static.search.parquet import Layout, Reader
from dafab_static.search.prune import GroupStats, Pruner, conjuncts, file_crosses, proven
from dafab_static.search.sources import IndexFile

# Columns every returned item keeps, whatever ``fields`` says: without them it is no Feature.
_ALWAYS = ("type", "stac_version", "id", "collection")
#: Top-level item members other than ``_ALWAYS`` and properties (which are columns too).
_MEMBERS = ("stac_extensions", "geometry", "bbox", "links", "assets")
_INF = np.inf
_EMPTY_WKB = 9  # bytes: byte order, geometry type, a count of zero


@dataclass(frozen=True)
class Match:
    """Matching rows of one row group, and the batch that can read their other columns."""

    batch: _Batch
    rows: np.ndarray


class OpenFile:
    """A Parquet file known to the scan: its schema and property resolution, kept between
    searches (files.CACHE); its parsed footer too while ``files.FOOTERS`` has room, else
    the footer is parsed again for each use, in :meth:`opened`.

    ``io`` counts this file's requests and bytes; ``lock`` serialises its use, because a
    remote handle (one file position, the cached footer bytes) is shared by every search.
    """

    def __init__(self, index: IndexFile, geometry_column: str | None) -> None:
        self.index = index
        self.io = storage.IOStats()
        self.lock = threading.Lock()
        self.counted = False  # whether a search has counted the first footer read yet
        # A remote handle is kept: it holds the fetched footer, so reopening costs no request.
        remote = urlsplit(index.url).scheme not in ("", "file")
        self._kept: Reader | None = None
        self._source: Any = None
        self._handle = self._open_input() if remote else None
        self.parquet: Reader = None  # type: ignore[assignment]  # set inside opened()
        self._layout: Layout | None = None  # the first open's, for the next ones
        self._metadata: pq.FileMetaData | None = None  # the parsed footer, when kept
        self._footer_cost = 0  # bytes of files.FOOTERS it holds
        self._budget = files.FOOTERS
        with self.opened(keep=True):
            self._layout = self.parquet.layout
            self.schema = self.parquet.schema_arrow
            self.geometry = geometry_column or geometry.primary_column(self.schema)
            if geometry_column and geometry_column not in self.schema.names:
                close = difflib.get_close_matches(geometry_column, self.schema.names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise QueryError(
                    f"geometry_column: {index.url} has no column {geometry_column!r}{hint}"
                )
            self.crs = geometry.foreign_crs(self.schema, self.geometry)
            self._crossing: bool | None = file_crosses(self.schema)
            metadata = self.parquet.metadata
            self._footer_cost = self._budget.admit(metadata.serialized_size)
            if self._footer_cost:
                self._metadata = metadata

    def _open_input(self) -> Any:
        url, size = self.index.url, self.index.size
        # A remote file is read at the offsets its manifest's size gives; a local one is
        # checked against it too, so a file changed since the build fails alike everywhere.
        if size is not None and "://" not in url and (actual := os.path.getsize(url)) != size:
            raise QueryError(_changed(url, size, f"it has {actual}"))
        return storage.open_input(url, stats=self.io, size=size)

    @contextmanager
    def opened(self, *, keep: bool = False) -> Iterator[Reader]:
        """The file's Parquet reader, open for the duration of the block. With ``keep``,
        the next use gets this reader (a new file is opened, then used at once: one footer
        parse, not two)."""
        if self._kept is not None:
            self.parquet, self._kept = self._kept, None
            try:
                yield self.parquet
            finally:
                self._release()
            return
        handle = self._handle if self._handle is not None else self._open_input()
        handle.seek(0)
        try:
            # A reader closes its source when it closes: the kept handle must outlive it.
            source = handle if self._handle is None else _Kept(handle)
            self.parquet = Reader(source, self._layout, self._metadata)
        except StorageError as error:
            if self._handle is None:
                handle.close()
            if isinstance(error, storage.ChangedObject) and self.index.size is not None:
                raise QueryError(_changed(self.index.url, self.index.size, str(error))) from None
            raise  # the network, not the file: its own message says so
        except (pa.ArrowInvalid, OSError) as error:
            if self._handle is None:
                handle.close()
            if self.index.size is not None:
                raise QueryError(_changed(self.index.url, self.index.size, str(error))) from None
            raise QueryError(f"{self.index.url}: not a Parquet file ({error})") from None
        self._source = handle
        try:
            yield self.parquet
        finally:
            if keep:
                self._kept = self.parquet
            else:
                self._release()

    def _release(self) -> None:
        self.parquet.close()
        self.parquet = None  # type: ignore[assignment]
        if self._handle is None and self._source is not None:
            self._source.close()
        elif self._handle is not None:
            # The kept handle stays with the cache: without the object body of this use
            # (open_input's whole_below), which 432 cached files of a 1M catalog would make
            # 240 MB.
            self._handle.forget()
        self._source = None

    @property
    def crossing(self) -> bool:
        """Whether some item's bbox crosses the antimeridian (west > east), which makes
        longitude statistics unusable for pruning. The GeoParquet bbox says so when present
        (dafab-static writes it); otherwise the bbox column is read once (files are cached)."""
        if self._crossing is None:
            self._crossing = True
            if "bbox" in self.schema.names and pa.types.is_struct(self.schema.field("bbox").type):
                bbox = one_array(self.parquet.read(["bbox"])["bbox"])
                fields = {f.name for f in bbox.type}
                if {"xmin", "xmax"} <= fields:
                    west, east = pc.struct_field(bbox, "xmin"), pc.struct_field(bbox, "xmax")
                    self._crossing = bool(pc.any(pc.greater(west, east)).as_py())
        return self._crossing

    @property
    def paths(self) -> dict[str, int]:
        """Leaf column paths → indices (computed once per schema, see parquet.py)."""
        return self.parquet.paths

    def close(self) -> None:
        if self._kept is not None:
            self.parquet, self._kept = self._kept, None
            self._release()
        if self._handle is not None:
            self._handle.close()
        self._metadata = None
        if self._footer_cost:
            self._budget.release(self._footer_cost)
            self._footer_cost = 0

    def resolve(self, name: str) -> tuple[str, tuple[str, ...]] | None:
        """The top-level column and struct path of property ``name`` in this file."""
        if name.startswith("properties."):
            name = name[len("properties.") :]
        if name == "geometry" and self.geometry:
            return self.geometry, ()
        names = self.schema.names
        if name in names:
            return name, ()
        head, _, rest = name.partition(".")
        if rest and head in names and pa.types.is_struct(self.schema.field(head).type):
            return head, tuple(rest.split("."))
        return None

    def stats_path(self, name: str) -> str | None:
        """The Parquet column path whose statistics describe property ``name``."""
        found = self.resolve(name)
        if found is None:
            return None
        column, path = found
        return ".".join((column, *path))


class _Batch:
    """One row group as ``to_arrow.Columns``: columns load on first use and are kept."""

    def __init__(self, file: OpenFile, group: int, *, lenient: bool) -> None:
        self.file = file
        self.group = group
        self.lenient = lenient
        self.num_rows = file.parquet.metadata.row_group(group).num_rows
        self.loaded: dict[str, pa.Array] = {}

    def _top(self, column: str) -> pa.Array:
        if column not in self.loaded:
            self.load([column])
        return self.loaded[column]

    def load(self, columns: list[str]) -> None:
        missing = [c for c in columns if c not in self.loaded]
        if missing:
            table = self.file.parquet.read_row_group(self.group, missing)
            for name in missing:
                self.loaded[name] = one_array(table[name])

    def column(self, name: str) -> pa.Array:
        found = self.file.resolve(name)
        if found is None:
            # Known elsewhere (result.py checked the union of the files), or lenient:
            # absent here means null, CQL2's unknown.
            return pa.nulls(self.num_rows)
        column, path = found
        value = self._top(column)
        for part in path:
            if not pa.types.is_struct(value.type) or value.type.get_field_index(part) < 0:
                return pa.nulls(self.num_rows)
            value = pc.struct_field(value, part)
        return value

    def geometries(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        column = self.column(name)
        if rows is not None:
            column = column.take(pa.array(rows))
        if pa.types.is_null(column.type):  # no geometry in this file: unknown
            return np.full(len(column), None, dtype=object)
        found = self.file.resolve(name)
        encoding = geometry.encoding_of(self.file.schema, found[0]) if found else None
        return geometry.shapes(column, encoding, name=name)

    def present(self, name: str) -> np.ndarray | None:
        """Rows whose WKB geometry is neither null nor empty, from its length alone: an
        empty geometry's WKB is 9 bytes (byte order, type, zero parts), a non-empty one's
        longer. None for other encodings."""
        found = self.file.resolve(name)
        if found is None or found[1]:
            return None
        if geometry.encoding_of(self.file.schema, found[0]) not in (None, "wkb"):
            return None
        column = self.column(name)
        if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            return None
        lengths = pc.fill_null(pc.binary_length(column), 0)
        return np.asarray(lengths.to_numpy(zero_copy_only=False) > _EMPTY_WKB)

    def boxes(self, name: str) -> tuple[np.ndarray, ...] | None:
        found = self.file.resolve(name)
        if found is None or found[0] != self.file.geometry or "bbox" not in self.file.schema.names:
            return None
        bbox = self._top("bbox")
        if not pa.types.is_struct(bbox.type):
            return None
        xmin, ymin, xmax, ymax = (
            pc.struct_field(bbox, k).to_numpy(zero_copy_only=False).astype(float)
            for k in ("xmin", "ymin", "xmax", "ymax")
        )
        crossing = xmin > xmax  # west > east: the item crosses the antimeridian
        if crossing.any():
            xmin, xmax = np.where(crossing, -_INF, xmin), np.where(crossing, _INF, xmax)
        return xmin, ymin, xmax, ymax

    def read(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """Rows ``rows`` of this row group with ``columns`` (reusing pass-1 columns).

        Columns not loaded yet are decoded only up to the last wanted row. The few matches
        of a small area, which Hilbert order keeps together, end on average half way
        through a group: ``small_bbox`` on the 1M benchmark catalog (262 rows from 230
        groups) as STAC dicts went from 9.3 to 7.6 s, 16 to 12 CPU-seconds (measured).
        """
        fields = [self.file.schema.field(c) for c in columns]
        schema = pa.schema(fields, self.file.schema.metadata)
        missing = [c for c in columns if c not in self.loaded]
        stop = int(np.max(rows)) + 1 if len(rows) else self.num_rows
        if not missing or stop >= self.num_rows:
            self.load(columns)
            table = pa.Table.from_arrays([self.loaded[c] for c in columns], schema=schema)
            return pick_rows(table, rows)
        head = self.file.parquet.read_row_group(self.group, missing, stop=stop)
        arrays = [
            one_array(head[c]) if c in missing else self.loaded[c].slice(0, stop) for c in columns
        ]
        # A copy, never the prefix itself: slices of pass-1 columns keep whole groups alive.
        return pick_rows(pa.Table.from_arrays(arrays, schema=schema), rows)


class _Kept(io.RawIOBase):
    """A file object whose ``close`` leaves the underlying (cached) handle open."""

    def __init__(self, handle: Any) -> None:
        super().__init__()
        self._handle = handle

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        return self._handle.read(size)  # type: ignore[no-any-return]

    def readinto(self, buffer: Any, /) -> int:
        return self._handle.readinto(buffer)  # type: ignore[no-any-return]

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._handle.seek(offset, whence)  # type: ignore[no-any-return]

    def tell(self) -> int:
        return self._handle.tell()  # type: ignore[no-any-return]

    def size(self) -> int:
        return self._handle.size()  # type: ignore[no-any-return]


def time_conjunct(request: Request, names: set[str]) -> Any:
    """The ``datetime`` parameter as CQL2: the item's instant, or its start/end interval when
    it has one, intersects the requested interval (both ends inclusive)."""
    if request.time is None:
        return None
    start, end = request.time
    wanted = nodes.Interval(start, end)
    instant = nodes.TimeIntersects(ast.Attribute("datetime"), wanted)
    if {"start_datetime", "end_datetime"} <= names:
        span = nodes.Interval(ast.Attribute("start_datetime"), ast.Attribute("end_datetime"))
        return ast.Or(instant, nodes.TimeIntersects(span, wanted))
    return instant


def _spatial(node: Any) -> bool:
    """Whether a CQL2 node holds a spatial predicate."""
    if isinstance(node, ast.SpatialComparisonPredicate):
        return True
    if isinstance(node, list):
        return any(_spatial(item) for item in node)
    if isinstance(node, ast.Node):
        return _spatial(list(node.get_sub_nodes()))
    return False


def matches(file: OpenFile, node: Any, pruner: Pruner, *, lenient: bool) -> Iterator[Match]:
    """Pass 1 over one file: its matching rows, row group by row group."""
    if file.crs is not None and _spatial(node):
        raise QueryError(
            f"{file.index.url}: its geometries are in {file.crs}, but spatial filters (bbox, "
            "intersects, S_*) are CRS84 longitude/latitude; reproject the file to OGC:CRS84"
        )
    groups = pruner.row_groups(
        file.parquet.metadata, file.paths, crossing=lambda: file.crossing, resolve=file.stats_path
    )
    parts = list(conjuncts((node,))) if node is not None else []
    for group in groups:
        batch = _Batch(file, group, lenient=lenient)
        # Conjuncts the group's statistics prove true for all its rows need no decoding.
        stats = GroupStats(file.parquet.metadata.row_group(group), file.paths)
        left = [p for p in parts if not proven(p, stats, file.stats_path)]
        if not left:
            rows = np.arange(batch.num_rows)
        else:
            rows = np.flatnonzero(to_arrow.mask(nodes.fold(ast.And, left), batch))
        if len(rows):
            yield Match(batch, rows)


def projection(file: OpenFile, fields: Fields) -> list[str]:
    """Top-level columns of ``file`` that the Fields extension keeps, in file order: the
    default set and ``include``, minus ``exclude`` (see :class:`Fields`)."""
    names = file.schema.names
    if not fields.given:
        return list(names)
    wanted: set[str] = {c for c in _ALWAYS if c in names}
    if fields.everything:
        wanted = set(names)
    properties = set(names) - {*_ALWAYS, *_MEMBERS, file.geometry}
    named: set[str] = set()  # columns that ``include`` names one by one
    for name in fields.include if fields.exact else (*DEFAULT_FIELDS, *fields.include):
        found = file.resolve(name)
        if found is not None:
            wanted.add(found[0])
            named.add(found[0])
        elif name == "properties":
            wanted |= properties
    for name in fields.exclude:
        found = file.resolve(name)
        # A path inside a column (assets.data.type) keeps the column: Fields.nested_exclude.
        if found is not None and not found[1] and found[0] not in _ALWAYS:
            wanted.discard(found[0])
        elif name == "properties":  # all but those included by name (rule 5.1)
            wanted -= properties - named
    return [n for n in names if n in wanted]


def _changed(url: str, size: int, detail: str) -> str:
    """The message for an index file that is not the one its partitions manifest lists."""
    return (
        f"{url}: not the Parquet file its partitions manifest lists ({size} bytes; {detail}): "
        "changed since the catalog was built? `dafab-static validate` compares them"
    )
