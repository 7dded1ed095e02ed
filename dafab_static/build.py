"""One pass from sources to a published catalog: static STAC tree + stac-geoparquet indexes.

Two streaming phases keep memory flat in the number of items:

1. **Ingest.** Records flow from :mod:`dafab_static.ingest`; each item is checked (id,
   datetime, duplicates), given its collection, and spooled as one JSON line into a temporary
   file per (collection, month). Only counts and small per-collection facts stay in memory.
2. **Write.** Month by month, items are read back, linked, validated, written as JSON, turned
   into one Hilbert-ordered Parquet partition, and folded into their collection's extent and
   summaries. Catalogs, collections and the root follow; the release is then committed
   atomically (:mod:`dafab_static.publish`).

A month is split by day (and further) when it holds more than ``max_children`` items; the
split is planned from phase 1's counts, so each item's path is known before it is written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dafab_static import __version__, index, layout
from dafab_static.collections import CollectionStats, make_collection
from dafab_static.errors import DafabError, InputError, ValidationError
from dafab_static.options import BuildOptions
from dafab_static.publish import Release
from dafab_static.tree import Linker, catalog_document, collection_document, dumps, item_document

ProgressFn = Callable[[str, int, int | None], None]
_SPOOL_FLUSH = 1 << 20


@dataclass
class BuildReport:
    """What a build did: counts, sizes, time and every problem met."""

    dest: str
    items: int = 0
    collections: dict[str, int] = field(default_factory=dict)
    partitions: int = 0
    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    published: bool = False

    @property
    def ok(self) -> bool:
        """True when the catalog was published and no input was skipped."""
        return self.published and not self.skipped

    def summary(self) -> str:
        """A few human lines: what was built, how big, how long, what went wrong."""
        state = "published" if self.published else "NOT published"
        lines = [
            f"{state} {self.dest}: {self.items} items in {len(self.collections)} collections, "
            f"{self.partitions} index partitions, {self.objects} objects, "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s",
        ]
        lines += [f"  {cid}: {n} items" for cid, n in sorted(self.collections.items())]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warnings:")
            lines += [f"  warning: {w}" for w in self.warnings[:20]]
        if self.skipped:
            lines.append(f"{len(self.skipped)} inputs skipped:")
            lines += [f"  skipped: {s}" for s in self.skipped[:50]]
            if len(self.skipped) > 50:
                lines.append(f"  ... and {len(self.skipped) - 50} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable summary (``--json``)."""
        return {
            "dest": self.dest, "published": self.published, "ok": self.ok,
            "items": self.items, "collections": dict(sorted(self.collections.items())),
            "partitions": self.partitions, "objects": self.objects, "bytes": self.bytes,
            "seconds": round(self.seconds, 3), "skipped": self.skipped, "warnings": self.warnings,
        }  # fmt: skip


@dataclass
class _CollectionState:
    place: layout.CollectionPlace
    months: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    days: dict[tuple[int, int], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    hours: dict[tuple[int, int], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))


def build(
    sources: Iterable[str],
    dest: str,
    *,
    options: BuildOptions | None = None,
    sample: bool = False,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Build and atomically publish a catalog from rasters and STAC sources.

    Args:
        sources: Files, folders, globs or URLs of rasters and STAC (items, FeatureCollections,
            ndjson, stac-geoparquet, static catalogs).
        dest: A local folder or ``s3://bucket/prefix``.
        options: See :class:`~dafab_static.options.BuildOptions`.
        sample: Also build from the bundled sample (generated offline).
        progress: Called as ``progress(stage, done, total)`` while working.

    Returns:
        A :class:`BuildReport`; inputs that were skipped are listed in it.

    Raises:
        InputError: With ``options.strict``, at the first bad input; and when nothing at all
            could be read. Nothing is published then.
        StorageError: When the destination cannot be written.

    Example:
        >>> report = build([], "/tmp/catalog", sample=True)  # doctest: +SKIP
    """
    opts = options or BuildOptions()
    started = time.perf_counter()
    report = BuildReport(dest=dest)
    release = Release(dest)
    spool = Path(tempfile.mkdtemp(prefix="dafab-spool-"))
    try:
        with _sample_sources(sample) as extra:
            srcs = [*extra, *sources]
            builder = _Builder(opts, release, report, spool, progress or _quiet)
            for folder in extra:
                builder.embed(folder, "sample")
            builder.ingest(srcs)
            if not builder.states:
                raise InputError(
                    "no STAC items found in "
                    + (", ".join(srcs) if srcs else "no sources")
                    + (f" ({len(report.skipped)} inputs skipped)" if report.skipped else "")
                )
            root = builder.write()
            builder.count_warnings()
            release.commit(root, builder.marker())
        report.published = True
    except BaseException:
        release.abort()
        raise
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _quiet(stage: str, done: int, total: int | None) -> None:
    del stage, done, total


class _sample_sources:
    """Generate the bundled sample in a temporary folder for the duration of a build."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.folder: str | None = None

    def __enter__(self) -> list[str]:
        if not self.enabled:
            return []
        from dafab_static.sample import write_sample

        self.folder = tempfile.mkdtemp(prefix="dafab-sample-")
        write_sample(self.folder)
        return [self.folder]

    def __exit__(self, *exc: object) -> None:
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


class _Builder:
    def __init__(
        self,
        opts: BuildOptions,
        release: Release,
        report: BuildReport,
        spool: Path,
        progress: ProgressFn,
    ) -> None:
        self.opts = opts
        self.release = release
        self.report = report
        self.spool = spool
        self.progress = progress
        self.linker = Linker(release.locate, opts.base_url)
        self.states: dict[str, _CollectionState] = {}
        self.given: dict[str, dict[str, Any]] = {}
        self.seen: set[bytes] = set()
        self.buffers: dict[tuple[str, int, int], list[bytes]] = defaultdict(list)
        self.buffered = 0
        self.validator = _validator() if opts.validate else None
        self.localized: dict[str, str] = {}
        self.warned: dict[str, int] = {}

    # -- problems -------------------------------------------------------------------------
    def problem(self, error: DafabError) -> None:
        if self.opts.strict:
            raise error
        self.report.skipped.append(str(error))

    def notice(self, message: str) -> None:
        self.report.warnings.append(message)

    def embed(self, folder: str, prefix: str) -> None:
        """Copy a local folder's rasters into the release, so assets there stay reachable."""
        from dafab_static.ingest.rasters import RASTER_SUFFIXES

        base = Path(os.path.abspath(folder))
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in RASTER_SUFFIXES:
                key = f"{prefix}/{path.relative_to(base).as_posix()}"
                self.put(key, path.read_bytes())
                self.localized[str(path)] = key

    def localize(self, item: dict[str, Any], path: str) -> None:
        """Point assets at embedded copies (see :meth:`embed`) with relative hrefs."""
        for asset in item.get("assets", {}).values():
            target = self.localized.get(str(asset.get("href", "")).removeprefix("file://"))
            if target:
                asset["href"] = layout.href(self.release.locate(path), self.release.locate(target))

    # -- phase 1 --------------------------------------------------------------------------
    def ingest(self, sources: list[str]) -> None:
        from dafab_static.ingest import iter_records

        for path in self.opts.collections:
            self.given_collection(_read_collection(path), path)
        count = 0
        for record in iter_records(
            sources,
            datetime=self.opts.datetime,
            on_error=self.problem,
            on_notice=self.notice,
            workers=self.opts.workers,
        ):
            if record.kind == "collection":
                self.given_collection(record.data, record.source)
                continue
            try:
                self.accept(record.data, record.source)
            except InputError as e:
                self.problem(e)
                continue
            count += 1
            if count % 1000 == 0:
                self.progress("read", count, None)
        self.progress("read", count, count)
        self.flush()

    def given_collection(self, doc: dict[str, Any], source: str) -> None:
        cid = layout.check_id(doc.get("id"), what="collection", source=source)
        if cid in self.given:
            return  # the first definition (user's --collections first) wins
        self.given[cid] = doc

    def accept(self, item: dict[str, Any], source: str) -> None:
        item_id = layout.check_id(item.get("id"), what="item", source=source)
        where = f"{source}: item {item_id!r}"
        cid = self.opts.collection or item.get("collection") or "unassigned"
        layout.check_id(cid, what="collection", source=where)
        when = _item_time(item, where)
        if not isinstance(item.get("geometry"), dict):
            raise InputError(f"{where}: has no geometry; every indexed item needs a footprint")
        if "bbox" not in item:
            import shapely.geometry

            item["bbox"] = list(shapely.geometry.shape(item["geometry"]).bounds)
        key = hashlib.blake2b(f"{cid}\0{item_id}".encode(), digest_size=12).digest()
        if key in self.seen:
            raise InputError(f"{where}: duplicate id in collection {cid!r}; the first one is kept")
        self.seen.add(key)
        item["collection"] = cid
        state = self.states.get(cid)
        if state is None:
            derived = any(ln.get("rel") == "derived_from" for ln in item.get("links", []))
            platform = layout.platform_slug(cid, item.get("properties", {}))
            state = _CollectionState(
                layout.place_collection(cid, platform=platform, derived=derived)
            )
            self.states[cid] = state
        month = (when.year, when.month)
        state.months[month] += 1
        day = f"{when.day:02d}"
        hour = f"{day}/{when.hour:02d}"
        state.days[month][day] = state.days[month].get(day, 0) + 1
        state.hours[month][hour] = state.hours[month].get(hour, 0) + 1
        line = orjson.dumps(item) + b"\n"
        self.buffers[(cid, *month)].append(line)
        self.buffered += len(line)
        if self.buffered > _SPOOL_FLUSH:
            self.flush()

    def flush(self) -> None:
        for (cid, year, month), lines in self.buffers.items():
            with open(self._spool_file(cid, year, month), "ab") as f:
                f.writelines(lines)
        self.buffers.clear()
        self.buffered = 0

    def _spool_file(self, cid: str, year: int, month: int) -> Path:
        return self.spool / f"{layout.segment(cid)}.{year:04d}-{month:02d}.ndjson"

    # -- phase 2 --------------------------------------------------------------------------
    def write(self) -> bytes:
        total = sum(sum(s.months.values()) for s in self.states.values())
        self.done = 0
        self.total = total
        platforms: dict[str, list[tuple[str, str]]] = defaultdict(list)
        derived: list[tuple[str, str]] = []
        for cid in sorted(self.states):
            state = self.states[cid]
            doc_path = self.write_collection(cid, state)
            title = str(self.given.get(cid, {}).get("title") or cid)
            if state.place.branch == layout.DERIVED:
                derived.append((doc_path, title))
            else:
                platforms[state.place.branch].append((doc_path, title))
        branches: list[tuple[str, str]] = []
        if platforms:
            sensors = f"{layout.SENSORS}/catalog.json"
            plat_children = []
            for branch in sorted(platforms):
                path = f"{branch}/catalog.json"
                name = branch.rsplit("/", 1)[1]
                self.put_catalog(
                    path,
                    sensors,
                    name,
                    f"Collections of the {name} platform",
                    children=platforms[branch],
                )
                plat_children.append((path, name))
            self.put_catalog(
                sensors,
                "catalog.json",
                "sensors",
                "Catalogs of each sensor platform",
                children=plat_children,
            )
            branches.append((sensors, "sensors"))
        if derived:
            path = f"{layout.DERIVED}/catalog.json"
            self.put_catalog(path, "catalog.json", "derived", "Derived products", children=derived)
            branches.append((path, "derived"))
        root = catalog_document(
            catalog_id="dafab-static", title=self.opts.title,
            description="Unified Earth-observation metadata catalog built by dafab-static.",
            path="catalog.json", parent=None, children=branches, items=[], linker=self.linker,
        )  # fmt: skip
        self.validate([("catalog.json", root)], fatal=True)
        data = dumps(root)
        self.report.objects += 1
        self.report.bytes += len(data)
        return data

    def put_catalog(
        self,
        path: str,
        parent: str,
        cid: str,
        description: str,
        *,
        children: list[tuple[str, str]] = (),
        items: list[str] = (),
    ) -> None:  # type: ignore[assignment]
        doc = catalog_document(
            catalog_id=cid, title=cid, description=description, path=path, parent=parent,
            children=children, items=items, linker=self.linker,
        )  # fmt: skip
        self.validate([(path, doc)], fatal=True)
        self.put(path, dumps(doc))

    def put(self, path: str, data: bytes) -> None:
        self.release.store.put(self.release.locate(path), data)
        self.report.objects += 1
        self.report.bytes += len(data)

    def write_collection(self, cid: str, state: _CollectionState) -> str:
        place = state.place
        stats = CollectionStats(cid)
        parts: list[index.PartitionInfo] = []
        schemas = []
        years: dict[int, list[tuple[str, str]]] = defaultdict(list)
        given = self.given.get(cid)
        file_collection = {
            "id": cid,
            **(
                {k: given[k] for k in ("title", "description", "license") if k in given}
                if given
                else {}
            ),
        }
        for year, month in sorted(state.months):
            written = self.write_month(cid, state, year, month, stats, file_collection)
            if written is None:
                continue
            path, info, schema = written
            parts.append(info)
            schemas.append(schema)
            years[year].append((path, f"{year:04d}-{month:02d}"))
        if not parts:
            return place.document
        self.conform_partitions(parts, schemas)
        year_children = []
        for year in sorted(years):
            ypath = f"{place.folder}/{year:04d}/catalog.json"
            self.put_catalog(
                ypath,
                place.document,
                f"{cid}-{year:04d}",
                f"{cid} items of {year}",
                children=years[year],
            )
            year_children.append((ypath, f"{year:04d}"))
        mirror = place.index_folder
        assets = {
            "geoparquet": {
                "href": layout.href(
                    self.release.locate(place.document), self.release.locate(mirror) + "/"
                ),
                "type": index.PARQUET_MEDIA_TYPE,
                "title": "stac-geoparquet index (Hive-partitioned by year/month)",
                "description": "One file per year/month partition; rows in Hilbert order of "
                "bbox centres. `partitions.json` lists every file.",
                "roles": ["collection-mirror"],
            },
            "partitions": {
                "href": layout.href(
                    self.release.locate(place.document),
                    self.release.locate(f"{mirror}/partitions.json"),
                ),
                "type": "application/json",
                "title": "Partitions manifest: path, rows, bbox, time range, bytes, checksum",
                "roles": ["metadata"],
            },
        }
        doc = make_collection(stats, given=given, assets=assets)
        parent = f"{place.branch}/catalog.json"
        doc = collection_document(
            doc, path=place.document, parent=parent, children=year_children, linker=self.linker
        )
        self.validate([(place.document, doc)], fatal=True)
        self.put(place.document, dumps(doc))
        self.put(f"{mirror}/partitions.json", index.manifest(cid, parts, base=mirror))
        self.report.collections[cid] = stats.count
        self.report.items += stats.count
        self.report.partitions += len(parts)
        return place.document

    def write_month(
        self,
        cid: str,
        state: _CollectionState,
        year: int,
        month: int,
        stats: CollectionStats,
        file_collection: dict[str, Any],
    ) -> tuple[str, index.PartitionInfo, Any] | None:
        place = state.place
        with open(self._spool_file(cid, year, month), "rb") as f:
            items = [orjson.loads(line) for line in f]
        items.sort(key=lambda it: (_time_key(it), it["id"]))
        split = layout.plan_split(
            state.months[(year, month)],
            state.days[(year, month)],
            state.hours[(year, month)],
            max_children=self.opts.max_children,
        )
        docs: list[tuple[str, dict[str, Any]]] = []
        members: dict[str, list[str]] = defaultdict(list)
        for item in items:
            when = _parse_time(_time_key(item))
            part = layout.partition_path(year, month, when.day, when.hour, item["id"], split)
            folder = f"{place.folder}/{part}"
            path = layout.item_path(place, part, item["id"])
            if self.localized:
                self.localize(item, path)
            doc = item_document(
                item,
                path=path,
                parent=f"{folder}/catalog.json",
                collection=place.document,
                linker=self.linker,
            )
            docs.append((path, doc))
        docs = self.validate(docs, fatal=False)
        for path, _ in docs:
            members[path.rsplit("/", 1)[0]].append(path)
        if not docs:
            return None
        payload = [(self.release.locate(p), dumps(d)) for p, d in docs]
        self.report.bytes += self.release.store.put_many(payload)
        self.report.objects += len(payload)
        month_folder = f"{place.folder}/{year:04d}/{month:02d}"
        self.write_partition_catalogs(cid, month_folder, members, place)
        table = index.to_table([d for _, d in docs])
        ipath = layout.index_path(place, year, month)
        data, info = index.encode(table, file_collection, path=ipath)
        self.put(ipath, data)
        stats.add(table, info.bbox, info.start_datetime, info.end_datetime)
        self.done += len(items)
        self.progress("write", self.done, self.total)
        return f"{month_folder}/catalog.json", info, table.schema

    def write_partition_catalogs(
        self,
        cid: str,
        month_folder: str,
        members: dict[str, list[str]],
        place: layout.CollectionPlace,
    ) -> None:
        """Catalogs from the month down to the leaves that hold the items."""
        folders: set[str] = set()
        for leaf in members:
            parts = leaf[len(month_folder) :].strip("/").split("/") if leaf != month_folder else []
            for depth in range(len(parts) + 1):
                folders.add("/".join([month_folder, *parts[:depth]]))
        children: dict[str, list[str]] = defaultdict(list)
        for folder in folders:
            if folder != month_folder:
                children[folder.rsplit("/", 1)[0]].append(folder)
        year_folder = month_folder.rsplit("/", 1)[0]
        for folder in sorted(folders):
            parent = (
                f"{folder.rsplit('/', 1)[0]}/catalog.json"
                if folder != month_folder
                else f"{year_folder}/catalog.json"
            )
            label = folder[len(place.folder) + 1 :].replace("/", "-")
            self.put_catalog(
                f"{folder}/catalog.json",
                parent,
                f"{cid}-{label}",
                f"{cid} items of {label}",
                children=[
                    (f"{c}/catalog.json", c.rsplit("/", 1)[1]) for c in sorted(children[folder])
                ],
                items=members.get(folder, []),
            )

    def conform_partitions(self, parts: list[index.PartitionInfo], schemas: list[Any]) -> None:
        """Rewrite partitions whose schema differs, so one dataset schema reads them all."""
        unified = index.unify(schemas)
        for i, (info, schema) in enumerate(zip(parts, schemas, strict=True)):
            if schema.remove_metadata().equals(unified):
                continue
            import io as _io

            import pyarrow.parquet as pq

            table = pq.read_table(
                _io.BytesIO(self.release.store.get(self.release.locate(info.path)))
            )
            meta = table.schema.metadata or {}
            collection = orjson.loads(meta[b"stac-geoparquet"])["collections"]
            cid = next(iter(collection))
            data, new = index.encode(index.conform(table, unified), collection[cid], path=info.path)
            self.release.store.put(self.release.locate(info.path), data)
            self.report.bytes += new.bytes - info.bytes
            parts[i] = new

    def validate(
        self, docs: list[tuple[str, dict[str, Any]]], *, fatal: bool
    ) -> list[tuple[str, dict[str, Any]]]:
        """Drop (and report) documents that fail the STAC schemas; our own must not fail."""
        if self.validator is None:
            return docs
        problems = self.validator.validate_many(docs)
        if not problems:
            return docs
        bad: set[str] = set()
        for problem in problems:
            if problem.severity != "error":
                # One line per distinct warning (e.g. an unknown extension on 1M items).
                key = problem.message
                if key not in self.warned:
                    self.warned[key] = 0
                    self.report.warnings.append(f"{problem.href}: {problem.message}")
                self.warned[key] += 1
                continue
            if fatal:
                raise ValidationError(f"internal: generated document failed validation: {problem}")
            bad.add(problem.href)
            self.problem(ValidationError(str(problem)))
        return [(p, d) for p, d in docs if p not in bad]

    def count_warnings(self) -> None:
        """Say how many objects each repeated warning concerned."""
        for i, line in enumerate(self.report.warnings):
            for message, count in self.warned.items():
                if line.endswith(message) and count > 1:
                    self.report.warnings[i] = f"{line} (and {count - 1} more objects)"

    def marker(self) -> dict[str, object]:
        return {
            "generator": f"dafab-static {__version__}",
            "built": _build_time(),
            "items": self.report.items,
            "collections": dict(sorted(self.report.collections.items())),
        }


def _validator() -> Any:
    from dafab_static.validate import Validator

    return Validator()


def _read_collection(path: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as e:
        raise InputError(f"{path}: cannot read collection ({e.strerror})") from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("type") != "Collection":
        raise InputError(f"{path}: not a STAC Collection (type must be 'Collection')")
    return doc


def _time_key(item: dict[str, Any]) -> str:
    props = item.get("properties", {})
    return str(props.get("datetime") or props.get("start_datetime"))


def _parse_time(text: str) -> _dt.datetime:
    value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(_dt.timezone.utc) if value.tzinfo else value


def _item_time(item: dict[str, Any], where: str) -> _dt.datetime:
    props = item.get("properties")
    if not isinstance(props, dict):
        raise InputError(f"{where}: has no properties object")
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise InputError(f"{where}: has no datetime (nor start_datetime/end_datetime)")
    try:
        return _parse_time(str(text))
    except ValueError:
        raise InputError(f"{where}: datetime {text!r} is not RFC 3339") from None


def _build_time() -> str:
    """Build time, honouring SOURCE_DATE_EPOCH (reproducible-builds.org) when set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
        if epoch and epoch.isdigit()
        else _dt.datetime.now(_dt.timezone.utc)
    )
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
