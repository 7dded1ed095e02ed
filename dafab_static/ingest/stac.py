"""Read other hubs' STAC: Item JSON, FeatureCollections, NDJSON, stac-geoparquet, static catalogs.

Every reader is a generator of :class:`Record` so memory stays flat in the number of items.
Items keep their ids, assets, extensions and non-structural links; the structural links
(``self``, ``root``, ``parent``, ``collection``, ``child``, ``item``) are dropped because the build
recreates them, and one ``via`` link records where the item came from. Relative hrefs are made
absolute against the document they were read from, because the item is written elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, overload
from urllib.parse import urlsplit

import orjson

from dafab_static.errors import InputError
from dafab_static.ingest._fetch import absolute, is_url, load_json, location
from dafab_static.ingest.batches import (
    NOT_STAC_GEOPARQUET,
    RawBatch,
    modern,
    raw_batches,
)
from dafab_static.ingest.conform import (
    OnNotice,
    check_extension_times,
    check_members,
    respell_times,
    rewrite,
    upgrade,
)
from dafab_static.layout import MANIFEST_ASSET, MIRROR_ASSET, is_published
from dafab_static.media_types import GEOJSON, JSON, NDJSON, PARQUET

OnError = Callable[[InputError], None]


class Prepare(Protocol):
    """A caller's last steps for the items of a file that reader processes read
    (:mod:`~dafab_static.ingest.striped`); they run there, so it must pickle."""

    def item(self, data: dict[str, Any], source: str) -> Any:
        """One checked item's value; raises InputError for an item the caller rejects."""

    def batch(self, values: list[Any]) -> Any:
        """The values of one batch's items, in order, packed to be sent back as one."""


JSON_SUFFIXES = (".json", ".geojson")
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".geojsonl")
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
#: File name endings this module reads; anything else is not STAC to it.
STAC_SUFFIXES = JSON_SUFFIXES + NDJSON_SUFFIXES + PARQUET_SUFFIXES


@dataclass(frozen=True)
class Record:
    """One STAC object read from a source, as a plain dict.

    Attributes:
        kind: ``"item"`` or ``"collection"``.
        data: The STAC Item or Collection dict, links and hrefs already rewritten.
        source: Where it was read: the absolute file or URL, with ``:LINE`` for a line of
            NDJSON, ``#/features/I`` or ``#/I`` for a member of a JSON document, ``#ROW``
            (0-based) for a Parquet row.
    """

    kind: Literal["item", "collection"]
    data: dict[str, Any]
    source: str


@dataclass(frozen=True)
class Prepared:
    """An item that a reader process read, checked and passed through ``prepare.item``:
    the ``index``-th value packed in ``batch``, which ``prepare.batch`` returned."""

    batch: Any
    index: int


@overload
def read(
    source: str,
    *,
    on_error: OnError,
    on_notice: OnNotice,
    seen: set[str] | None = None,
    prepare: None = None,
    workers: int = 0,
) -> Iterator[Record]: ...


@overload
def read(
    source: str,
    *,
    on_error: OnError,
    on_notice: OnNotice,
    seen: set[str] | None = None,
    prepare: Prepare,
    workers: int = 0,
) -> Iterator[Record | Prepared]: ...


def read(
    source: str,
    *,
    on_error: OnError,
    on_notice: OnNotice,
    seen: set[str] | None = None,
    prepare: Prepare | None = None,
    workers: int = 0,
) -> Iterator[Record | Prepared]:
    """Stream the STAC items and collections of one file, URL or static catalog.

    The format is chosen by suffix for NDJSON (``.ndjson``, ``.jsonl``, ``.geojsonl``) and
    stac-geoparquet (``.parquet``, ``.geoparquet``); anything else is JSON, read by its
    ``type``: a Feature, a FeatureCollection (or STAC API ItemCollection; its ``next`` link is
    not followed), a JSON array of Features, or a Catalog/Collection whose ``child`` and
    ``item`` links are crawled. Items older than STAC 1.0.0 are migrated by pystac.

    Args:
        source: Local path, ``file://`` URL or ``http(s)://`` URL (read with a 30 s timeout).
        on_error: Called with each bad record or unreadable document; reading goes on
            afterwards unless it raises (``--strict``).
        on_notice: Called with one line for each change worth a warning (migrations, cycles).
        seen: Absolute locations already read; documents in it are skipped and every document
            read is added, so a catalog and its item files passed together are read once.
        prepare: With it, a large local NDJSON or stac-geoparquet file is read by several
            processes (:mod:`~dafab_static.ingest.striped`), which apply it to each item and
            batch, and its items come as :class:`Prepared` instead of records, in order.
        workers: Processes for such a file; 0 means one per CPU, 1 reads it here.

    Raises:
        StorageError: a URL cannot be reached (one line naming it).

    Example:
        >>> for record in read("catalog.json", on_error=print, on_notice=print):
        ...     print(record.kind, record.data["id"])  # doctest: +SKIP
    """
    reader = Reader(on_error, on_notice, set() if seen is None else seen)
    loc = location(source)
    if loc in reader.seen:
        return
    reader.seen.add(loc)
    name = (urlsplit(loc).path if is_url(loc) else loc).lower()
    kind = NDJSON if name.endswith(NDJSON_SUFFIXES) else PARQUET
    if name.endswith(NDJSON_SUFFIXES + PARQUET_SUFFIXES):
        from dafab_static.ingest import striped

        if prepare is not None and (processes := striped.readers(loc, kind, workers)):
            yield from striped.read(loc, kind, processes=processes, prepare=prepare, reader=reader)
        else:
            yield from reader.stream(loc, kind)
    else:
        try:
            data = load_json(loc)
        except InputError as error:
            on_error(error)
            return
        yield from reader.document(data, loc, loc, (), None)
    if reader.respelled:
        old, new = reader.respelled[1]
        on_notice(
            f"{loc}: {reader.respelled[0]} item(s) with timestamps spelled otherwise than "
            f"as STAC's schema and the index hold them (RFC 3339 in UTC with 'Z', to the "
            f"microsecond; e.g. {old!r}) rewritten as the same instants ({new!r})"
        )


@dataclass
class Reader:
    """The callbacks and the set of documents read, shared by one :func:`read` call.

    Striped reader processes (:mod:`~dafab_static.ingest.striped`) each run one too, on their
    own batches, so that an item read there is checked exactly as one read here.
    """

    on_error: OnError
    on_notice: OnNotice
    seen: set[str]
    #: Items whose timestamps were respelled, and the first change: one notice per source.
    respelled: tuple[int, tuple[str, str]] | None = None

    #: A Parquet batch failed to convert: the file's one schema would fail the rest too.
    broken: bool = False
    #: Folders known to lie in (True) or out of (False) a catalog dafab-static published.
    built: dict[str, bool] = field(default_factory=dict)

    def in_built_catalog(self, loc: str) -> bool:
        """Whether the local file ``loc`` lies in a catalog that dafab-static published (a
        folder above it holds ``catalog.json`` and the release marker). Known per folder
        for this read, not beyond: a folder may become a catalog between two builds."""
        if is_url(loc):
            return False
        folder = os.path.dirname(os.path.abspath(location(loc)))
        trail = []
        while folder not in self.built:
            trail.append(folder)
            if is_published(folder):
                self.built[folder] = True
                break
            parent = os.path.dirname(folder)
            if parent == folder:
                self.built[folder] = False
                break
            folder = parent
        answer = self.built[folder]
        for below in trail:
            self.built[below] = answer
        return answer

    def stream(self, loc: str, kind: str) -> Iterator[Record]:
        """The items of a whole NDJSON or stac-geoparquet file, batch by batch."""
        for raw in raw_batches(loc, kind):
            yield from self.batch(loc, kind, raw)
            if self.broken:
                return

    def batch(self, loc: str, kind: str, raw: RawBatch) -> Iterator[Record]:
        """The items of one batch of lines or rows; errors go to ``on_error`` as they come."""
        if raw.error is not None:
            self.broken = True
            self.on_error(raw.error)
            return
        if kind == NDJSON:
            for number, line in enumerate(raw.rows, raw.first):
                if not line.strip():
                    continue
                where = f"{loc}:{number}"
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    self.on_error(InputError(f"{where}: invalid JSON: {error}"))
                    continue
                if (record := self.item(data, loc, where, NDJSON, None)) is not None:
                    yield record
            return
        import pyarrow as pa

        from dafab_static.index_items import to_items

        try:
            items = to_items(modern(raw.rows))
        except (pa.ArrowException, *NOT_STAC_GEOPARQUET) as error:
            self.broken = True
            self.on_error(InputError(f"{loc}#{raw.first}: not stac-geoparquet: {error}"))
            return
        for row, data in enumerate(items, raw.first):
            # Items with no assets ({} in JSON) leave no assets column: STAC requires one.
            data.setdefault("assets", {})
            if (record := self.item(data, loc, f"{loc}#{row}", PARQUET, None)) is not None:
                yield record

    def document(
        self, data: Any, loc: str, where: str, stack: tuple[str, ...], collection_id: str | None
    ) -> Iterator[Record]:
        """Dispatch one parsed JSON document on its ``type``."""
        if isinstance(data, list):
            if data and not any(isinstance(m, dict) and m.get("type") == "Feature" for m in data):
                # Some other JSON list (a manifest, say): one line for the file, not one per entry.
                count = f"{len(data)} value{'s' if len(data) != 1 else ''}"
                self.on_error(InputError(f"{where}: not STAC: a JSON array of {count}, no Feature"))
                return
            for index, member in enumerate(data):
                if (record := self.item(member, loc, f"{where}#/{index}", JSON, None)) is not None:
                    yield record
            return
        if not isinstance(data, dict):
            found = type(data).__name__
            self.on_error(InputError(f"{where}: not STAC: a JSON {found}, not an object"))
            return
        kind = data.get("type")
        if kind is None and "stac_version" in data and "id" in data:
            # STAC before 1.0.0-rc.1 had no "type" on catalogs and collections. The document
            # stays as it was: pystac's migration refuses an old one given a "type".
            from pystac.serialization import identify_stac_object_type

            if (identified := identify_stac_object_type(data)) is not None:
                kind = str(identified.value)
        if kind == "Feature":
            if (record := self.item(data, loc, where, GEOJSON, collection_id)) is not None:
                yield record
        elif kind == "FeatureCollection":
            features = data.get("features")
            if not isinstance(features, list):
                self.on_error(InputError(f"{where}: FeatureCollection without a 'features' list"))
                return
            for index, member in enumerate(features):
                at = f"{where}#/features/{index}"
                if (record := self.item(member, loc, at, GEOJSON, None)) is not None:
                    yield record
        elif kind in ("Catalog", "Collection"):
            yield from self.crawl(data, kind, loc, stack, collection_id)
        elif kind is None:
            self.on_error(InputError(f"{where}: not STAC: no 'type' field"))
        else:
            expected = "Feature, FeatureCollection, Catalog or Collection"
            self.on_error(InputError(f"{where}: not STAC: type {kind!r} is not {expected}"))

    def crawl(
        self,
        data: dict[str, Any],
        kind: str,
        loc: str,
        stack: tuple[str, ...],
        collection_id: str | None,
    ) -> Iterator[Record]:
        """Yield a Collection (not a Catalog), then follow its ``child`` and ``item`` links."""
        stack = (*stack, loc)
        if kind == "Collection":
            if (record := self.collection(data, loc)) is not None:
                yield record
            collection_id = data["id"] if isinstance(data.get("id"), str) else collection_id
        links = data.get("links")
        for link in links if isinstance(links, list) else ():
            if not isinstance(link, dict) or link.get("rel") not in ("child", "item"):
                continue
            rel, href = link["rel"], link.get("href")
            if not isinstance(href, str):
                self.on_error(InputError(f"{loc}: a {rel!r} link has no href"))
                continue
            target = location(absolute(href, loc))
            if target in stack:
                self.on_notice(f"{loc}: {rel} link to {target} is a cycle; not followed")
                continue
            if target in self.seen:
                continue
            self.seen.add(target)
            try:
                child = load_json(target)
            except InputError as error:
                self.on_error(InputError(f"{error} (linked from {loc})"))
                continue
            yield from self.document(child, target, target, stack, collection_id)

    def item(
        self, data: Any, loc: str, where: str, media: str, collection_id: str | None
    ) -> Record | None:
        """Check and rewrite one item; a bad one goes to ``on_error`` and gives ``None``."""
        try:
            if not isinstance(data, dict) or data.get("type") != "Feature":
                found = data.get("type") if isinstance(data, dict) else type(data).__name__
                raise InputError(f"{where}: not a STAC item: type {found!r}, expected 'Feature'")
            if missing := [f"'{k}'" for k in ("stac_version", "id", "properties") if k not in data]:
                raise InputError(f"{where}: not a STAC item: no {', '.join(missing)}")
            if not isinstance(data["id"], str) or not data["id"]:
                raise InputError(f"{where}: not a STAC item: id {data['id']!r} is not a string")
            data = upgrade(data, where, f"item {data['id']}", self.on_notice)
            properties = data["properties"]
            if not isinstance(properties, dict):
                raise InputError(f"{where}: item {data['id']}: 'properties' is not an object")
            check_members(data, where)
            if change := respell_times(properties):
                count, first = self.respelled or (0, change)
                self.respelled = (count + 1, first)
            check_extension_times(properties, f"{where}: item {data['id']}")
            if properties.get("datetime") is None and (
                properties.get("start_datetime") is None or properties.get("end_datetime") is None
            ):
                raise InputError(
                    f"{where}: item {data['id']} has no datetime "
                    "(STAC needs 'datetime', or 'start_datetime' and 'end_datetime')"
                )
        except InputError as error:
            self.on_error(error)
            return None
        if collection_id is not None and data.get("collection") is None:
            data["collection"] = collection_id
        elif collection_id is not None and data.get("collection") != collection_id:
            # The input contradicts itself (STAC: the field names the collection its
            # collection link leads to): said, not chosen silently. The item's own field wins.
            self.on_notice(
                f"{where}: item {data['id']!r} says collection {data['collection']!r} but is "
                f"listed by collection {collection_id!r}; it goes to {data['collection']!r}"
            )
        # An item of a catalog dafab-static built (`build cat --out cat`) already names
        # its source: one naming its own file was added at each rebuild in place.
        rewrite(data, loc, media, source=not self.in_built_catalog(loc))
        return Record("item", data, where)

    def collection(self, data: dict[str, Any], loc: str) -> Record | None:
        try:
            return Record("collection", conform_collection(data, loc, self.on_notice), loc)
        except InputError as error:
            self.on_error(error)
            return None


def conform_collection(data: dict[str, Any], loc: str, on_notice: OnNotice) -> dict[str, Any]:
    """A Collection read from ``loc`` (a source, or ``--collection-json``) made ready to
    publish: checked for the shapes the build relies on, migrated from before 1.0.0, its
    structural links dropped and relative hrefs made absolute, as items' are.

    Raises:
        InputError: naming ``loc`` and the member of the wrong shape.
    """
    if not isinstance(data.get("id"), str) or "stac_version" not in data:
        raise InputError(f"{loc}: not a STAC collection: no 'id' or 'stac_version'")
    links, assets = data.get("links", []), data.get("assets", {})
    if not isinstance(links, list) or not all(isinstance(link, dict) for link in links):
        raise InputError(f"{loc}: collection {data['id']!r}: 'links' is not a list of objects")
    if not isinstance(assets, dict) or not all(isinstance(a, dict) for a in assets.values()):
        raise InputError(f"{loc}: collection {data['id']!r}: 'assets' is not an object of objects")
    data = upgrade(dict(data), loc, f"collection {data['id']}", on_notice)
    built = _built_here(assets)
    if built:
        # Read back from a catalog this tool built (`build cat new.ndjson --out cat`): its
        # summaries were computed from the items then, not given, and would go stale; its
        # index assets are this build's to give (the old ones, made absolute paths, went
        # into every index file's metadata); and it is no source of itself (a rebuild in
        # place added a Source link to its own file, and changed it each time).
        data.pop("summaries", None)
        ours = (MANIFEST_ASSET, MIRROR_ASSET)
        data["assets"] = {k: v for k, v in assets.items() if k not in ours}
        if not data["assets"]:
            del data["assets"]
    rewrite(data, loc, JSON, source=not built)
    return data


def _built_here(assets: dict[str, Any]) -> bool:
    """Whether a Collection's assets are those a dafab-static build gives it: a
    ``collection-mirror`` index and its ``_partitions.json`` manifest."""
    roles = [a.get("roles") for a in assets.values()]
    hrefs = [str(a.get("href", "")) for a in assets.values()]
    mirrored = any(isinstance(r, list) and "collection-mirror" in r for r in roles)
    return mirrored and any(h.endswith("/_partitions.json") for h in hrefs)
