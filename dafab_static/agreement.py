"""Do a catalog's tree and its stac-geoparquet mirrors hold the same items, with the same
content? Checked by :func:`dafab_static.validate` on any catalog whose Collections link a
``collection-mirror`` asset.

Items are compared by a digest of their content, so a million items cost a few dozen bytes
each, not their JSON. Timestamps are compared as instants: Parquet stores the instant, not
its spelling (``...00Z`` and ``...00.000000Z`` are the same time).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import orjson

from dafab_static import crawl, index
from dafab_static.errors import DafabError
from dafab_static.index import EMBEDDING_PREFIX
from dafab_static.report import counted
from dafab_static.spool import parse_time
from dafab_static.storage import file_path, join_href, read_url

_TIMES = ("datetime", "start_datetime", "end_datetime", "created", "updated")
_MIRROR_ROLE = "collection-mirror"
_SHOWN = 5  # differing ids named per collection; the rest are counted
_GEO = "dafab:index-geo-metadata"


@dataclass(frozen=True)
class Disagreement:
    """One way a collection's tree and index differ; ``href`` names the file to look at."""

    href: str
    rule: str
    message: str
    severity: Literal["error", "warning"] = "error"


@dataclass
class Agreement:
    """Collects item digests during a crawl, then compares them with each mirror."""

    #: Per collection, per item id: its digest and the href it was read from.
    tree: dict[str, dict[str, tuple[bytes, str]]] = field(default_factory=lambda: defaultdict(dict))
    mirrors: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def item(self, obj: dict[str, Any], href: str = "") -> None:
        """Record an item seen in the tree, read from ``href``."""
        collection, item_id = obj.get("collection"), obj.get("id")
        if isinstance(collection, str) and isinstance(item_id, str):
            self.tree[collection][item_id] = (digest(obj), href)

    def collection(self, href: str, obj: dict[str, Any]) -> None:
        """Record a Collection's ``collection-mirror`` asset, if it has one."""
        if crawl.assets_with_role(obj, _MIRROR_ROLE):
            self.mirrors.append((href, str(obj.get("id")), obj))

    def check(self) -> list[Disagreement]:
        """Compare every recorded mirror with the items seen under its collection."""
        found: list[Disagreement] = []
        for href, collection_id, obj in self.mirrors:
            try:
                found += self._check_one(href, collection_id, obj)
            except DafabError as e:
                found.append(Disagreement(href, "dafab:index-readable", str(e)))
        return found

    def _check_one(self, href: str, cid: str, obj: dict[str, Any]) -> list[Disagreement]:
        mirror = _partition_files(href, obj)
        if mirror is None:
            return []  # a mirror we cannot enumerate (a bare folder, a glob): nothing to say
        found: list[Disagreement] = list(mirror.problems)
        rows: dict[str, bytes] = {}
        tree = self.tree.get(cid, {})
        differing: dict[str, dict[str, Any]] = {}  # the first few, as the index holds them
        import pyarrow as pa
        import pyarrow.parquet as pq

        files, summaries = mirror.files, mirror.summaries
        for url, expected in files:
            data = read_url(url)
            try:
                table = pq.read_table(io.BytesIO(data))  # once, for both checks
                found += _check_file(url, data, expected, table)
                found += _check_summaries(url, summaries, table)
                for item in _rows(table):
                    key = str(item["id"])
                    if key in rows:  # a dict would keep one, and search return both
                        message = f"item {key!r} is held more than once in the index"
                        found.append(Disagreement(url, "dafab:index-duplicate-id", message))
                    rows[key] = digest(item)
                    seen = tree.get(key)
                    if seen and seen[0] != rows[key] and len(differing) < _SHOWN:
                        differing[key] = item
            except (pa.ArrowException, OSError) as e:  # truncated, corrupt, not Parquet
                found.append(Disagreement(url, "dafab:index-readable", f"not readable: {e}"))
        found += _compare(href, cid, {k: v[0] for k, v in tree.items()}, rows)
        for key, item in differing.items():
            found.append(_difference(tree[key][1], key, item))
        return found


def digest(item: dict[str, Any]) -> bytes:
    """A content digest of an item that ignores what Parquet cannot keep (:func:`comparable`)."""
    data = orjson.dumps(comparable(item), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(data, digest_size=16).digest()


def _difference(href: str, key: str, indexed: dict[str, Any]) -> Disagreement:
    """Where the item at ``href`` in the tree and its row in the index first differ."""
    message = f"item {key!r} differs between tree and index"
    try:
        in_tree = orjson.loads(read_url(href))
    except (DafabError, orjson.JSONDecodeError):
        return Disagreement(href, "dafab:tree-index-agreement", message)
    found = _first_difference(comparable(in_tree), comparable(indexed), "$")
    if found is not None:
        path, left, right = found
        message += f" at {path}: {_shown(left)} in the tree, {_shown(right)} in the index"
    return Disagreement(href, "dafab:tree-index-agreement", message)


_ABSENT = object()


def _first_difference(left: Any, right: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first JSON path where two canonical values differ, and the two values there."""
    if isinstance(left, dict) and isinstance(right, dict):
        for name in sorted(left.keys() | right.keys()):
            here = f"{path}.{name}" if name.isidentifier() else f"{path}[{name!r}]"
            found = _first_difference(left.get(name, _ABSENT), right.get(name, _ABSENT), here)
            if found is not None:
                return found
        return None
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            if (found := _first_difference(a, b, f"{path}[{i}]")) is not None:
                return found
        return None
    return None if left == right else (path, left, right)


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        value = int(value)  # canonical numbers are floats; the item may well say 7
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def comparable(item: dict[str, Any]) -> dict[str, Any]:
    """An item as Parquet can keep it, spelled one way: how timestamps and numbers are
    spelled, object members that are null (see :func:`_canonical`), properties named as
    top-level fields (:func:`~dafab_static.index.shadowed_properties`) and foreign top-level
    members (:func:`~dafab_static.index.foreign_members`) make no difference."""
    props = item.get("properties")
    if isinstance(props, dict):
        props = {k: _instant(v) if k in _TIMES else _vector(v) if k.startswith(EMBEDDING_PREFIX)
                 else v for k, v in props.items() if k not in index.TOP_LEVEL}  # fmt: skip
        item = {**item, "properties": props}
    if not item.keys() <= index.ITEM_MEMBERS:  # not in the index (index.foreign_members)
        item = {k: v for k, v in item.items() if k in index.ITEM_MEMBERS}
    canonical: dict[str, Any] = _canonical(item)
    return canonical


# Integers up to 2**53 are exactly representable as doubles.
_EXACT = 2**53


def _canonical(value: Any) -> Any:
    """``value`` as Parquet can hold it, spelled one way.

    - Integers become floats: JSON has one number type, so ``0`` and ``0.0`` are one value,
      but orjson spells them apart, and Parquet turns some integers into floats (WKB stores
      every coordinate as a double; a column holding ``0`` in one item and ``12.5`` in
      another is a double column).
    - Object members that are null, or empty objects, are dropped: a Parquet struct field or
      column is null where an item lacks the key, so ``"proj:epsg": null`` and no
      ``proj:epsg`` read back alike (stac-geoparquet's own reader does the same), and Parquet
      cannot store a struct without fields, so ``"x": {}`` is not kept. Nulls inside arrays
      stay.

    Costs about 100 µs for a 24-asset Sentinel-2 item.
    """
    kind = type(value)  # not isinstance: bool is an int, and must stay a bool
    if kind is dict:
        members = ((k, _canonical(v)) for k, v in value.items())
        return {k: v for k, v in members if v is not None and v != {}}
    if kind is list:
        return [_canonical(v) for v in value]
    if kind is int and -_EXACT <= value <= _EXACT:
        return float(value)
    return value


def _vector(value: Any) -> Any:
    """An embedding as the index holds it: float32 (the JSON keeps 7 decimals)."""
    if not isinstance(value, list):
        return value
    import numpy as np

    return np.asarray(value, np.float32).tolist()


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return parse_time(value).isoformat()
    except ValueError:
        return value


class _Mirror(NamedTuple):
    """A collection's index: (URL, manifest line) of every file, the manifest's summaries,
    and what is wrong with the manifest as a whole."""

    files: list[tuple[str, dict[str, Any]]]
    summaries: dict[str, Any]
    problems: list[Disagreement]


def _partition_files(href: str, obj: dict[str, Any]) -> _Mirror | None:
    """The collection's index files: from the partitions manifest when the collection links
    one, else the mirror itself when it is a single ``.parquet`` file."""
    for asset in crawl.assets(obj):
        if asset["href"].endswith("partitions.json"):
            manifest_url = join_href(href, asset["href"])
            manifest = crawl.load_manifest(manifest_url)
            problems = _check_manifest(manifest_url, manifest, obj.get("id"))
            folder = manifest_url.rsplit("/", 1)[0] + "/"
            listed = []
            for i, part in enumerate(manifest["partitions"]):
                url = join_href(manifest_url, part["path"])
                if not url.startswith(folder):  # never read what lies outside the index
                    message = f"partitions[{i}] path {part['path']!r} leads out of the index folder"
                    problems.append(Disagreement(manifest_url, "dafab:index-manifest", message))
                else:
                    listed.append((url, part))
            unlisted = [(url, _UNLISTED) for url in _unlisted(manifest_url, listed)]
            if "://" in manifest_url and not manifest_url.startswith("file://"):
                # Said, not silent: the same tree validated locally reported a stray file.
                problems.append(Disagreement(manifest_url, "dafab:index-manifest", (
                    "not checked for Parquet files the manifest leaves out: only a local "
                    "index folder is listed (validate a copy of it for that)"
                ), "warning"))  # fmt: skip
            summaries = manifest.get("summaries")
            return _Mirror(listed + unlisted, summaries if isinstance(summaries, dict) else {},
                           problems)  # fmt: skip
    for asset in crawl.assets_with_role(obj, _MIRROR_ROLE):
        if asset["href"].endswith(".parquet"):
            return _Mirror([(join_href(href, asset["href"]), {})], {}, [])
    return None


def _check_manifest(url: str, manifest: dict[str, Any], cid: Any) -> list[Disagreement]:
    """The manifest as a whole: its collection, its ``rows`` and ``bytes`` against the sums
    of its partitions' (what ``info`` reports without reading a file), and each partition's
    Hive folder (``year=YYYY/month=MM``, which DuckDB and pyarrow read as columns) against
    its time range."""
    found = []
    if manifest.get("collection") not in (None, cid):
        message = f"manifest is of collection {manifest['collection']!r}, not {cid!r}"
        found.append(Disagreement(url, "dafab:index-manifest", message))
    for i, part in enumerate(manifest["partitions"]):
        if (why := _hive_mismatch(part)) is not None:
            found.append(Disagreement(url, "dafab:index-manifest", f"partitions[{i}]: {why}"))
    for key in ("rows", "bytes"):
        values = [p.get(key) for p in manifest["partitions"]]
        total = sum(v for v in values if isinstance(v, int) and not isinstance(v, bool))
        given = manifest.get(key)
        if given is not None and given != total:
            message = f"manifest gives {key} {given}; its partitions add up to {total}"
            found.append(Disagreement(url, "dafab:index-manifest", message))
    return found


_HIVE = re.compile(r"(?:^|/)year=(\d{4})/month=(\d{2})/")


def _hive_mismatch(part: dict[str, Any]) -> str | None:
    """Why a partition's ``year=/month=`` folder cannot hold its time range, or None."""
    found = _HIVE.search(part["path"])
    start, end = part.get("start_datetime"), part.get("end_datetime")
    if found is None or not isinstance(start, str) or not isinstance(end, str):
        return None
    month = f"{found[1]}-{found[2]}"
    if start[:7] <= month <= end[:7]:  # the month it is filed under lies in its range
        return None
    return f"{part['path']} is filed under {month}, but its items span {start} to {end}"


def _check_summaries(url: str, summaries: dict[str, Any], table: Any) -> list[Disagreement]:
    """A partition's rows against the summaries of its manifest, which ``search`` trusts to
    skip files unopened: a value they leave out would hide its items from every search."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = []
    for name, summary in summaries.items():
        if name not in table.column_names or not table.num_rows:
            continue
        column = table[name]
        if pa.types.is_list(column.type):
            column = pc.list_flatten(column)
        if isinstance(summary, list):
            try:
                held = pc.unique(column).drop_null().to_pylist()
            except pa.ArrowException:
                continue  # not a flat column: no summary of ours is about it
            if stray := [v for v in held if v not in summary]:
                shown = ", ".join(map(repr, sorted(stray, key=str)[:3]))
                message = f"manifest summaries list no {shown} for {name!r}; the rows hold it"
                found.append(Disagreement(url, "dafab:index-manifest", message))
        elif isinstance(summary, dict) and {"minimum", "maximum"} <= set(summary):
            if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
                continue
            low, high = (v.as_py() for v in pc.min_max(column).values())
            if low is not None and (low < summary["minimum"] or high > summary["maximum"]):
                message = (f"manifest summaries give {name!r} {summary['minimum']}.."
                           f"{summary['maximum']}; the rows hold {low}..{high}")  # fmt: skip
                found.append(Disagreement(url, "dafab:index-manifest", message))
    return found


def _unlisted(manifest_url: str, listed: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Parquet files in a local index folder that its manifest does not list: a reader that
    globs the folder (DuckDB's ``**/*.parquet``) would read their rows too. A bucket or web
    server is not listed here."""
    if "://" in manifest_url and not manifest_url.startswith("file://"):
        return []
    known = {os.path.normpath(file_path(url)) for url, _ in listed}
    folder = Path(file_path(manifest_url)).parent
    return sorted(str(p) for p in folder.rglob("*.parquet") if os.path.normpath(p) not in known)


#: The manifest line of a file the manifest does not list.
_UNLISTED: dict[str, Any] = {"unlisted": True}


def _check_file(url: str, data: bytes, expected: dict[str, Any], table: Any) -> list[Disagreement]:
    """A partition against its manifest line (bytes, checksum, rows, bbox, time range) and
    its own GeoParquet metadata (bbox, geometry types): a client prunes by those without
    reading the rows, so one that is too small hides items from every search."""
    found = []

    def differs(message: str, rule: str = "dafab:index-manifest") -> None:
        found.append(Disagreement(url, rule, message))

    if expected is _UNLISTED:
        differs("a Parquet file in the index folder that the partitions manifest does not list")
        return found

    if "bytes" in expected and expected["bytes"] != len(data):
        differs(f"manifest says {expected['bytes']} bytes, the file has {len(data)}")
    checksum = "1220" + hashlib.sha256(data).hexdigest()
    if "checksum" in expected and expected["checksum"] != checksum:
        differs("checksum differs from manifest")
    if "rows" in expected and table.num_rows != expected["rows"]:
        differs(f"manifest says {expected['rows']} rows, the file has {table.num_rows}")
    if not table.num_rows or "bbox" not in table.column_names:
        return found
    bbox = [round(v, 7) for v in index.file_bbox(table)]
    if isinstance(expected.get("bbox"), list) and not _covers(expected["bbox"], bbox):
        differs(f"manifest bbox {expected['bbox']} does not cover the rows' bbox {bbox}")
    start, end = index.time_range(table)
    first, last = expected.get("start_datetime"), expected.get("end_datetime")
    if isinstance(first, str) and isinstance(last, str) and not _spans(first, last, start, end):
        differs(f"manifest time range {first}/{last} does not cover {start}/{end}")
    geo = orjson.loads((table.schema.metadata or {}).get(b"geo", b"{}"))
    column = (geo.get("columns") or {}).get("geometry") or {}
    if isinstance(column.get("bbox"), list) and not _covers(column["bbox"], bbox):
        differs(f"geo bbox {column['bbox']} does not cover the rows' bbox {bbox}", _GEO)
    declared = column.get("geometry_types")
    if "geometry" in table.column_names and declared not in (
        [],
        types := index.geometry_types(table),
    ):
        differs(f"geo geometry_types {declared} are not the rows' {types}", _GEO)
    return found


def _spans(first: str, last: str, start: str, end: str) -> bool:
    """Whether the interval ``first``/``last`` (from a manifest) holds ``start``/``end``."""
    try:
        return parse_time(first) <= parse_time(start) and parse_time(end) <= parse_time(last)
    except ValueError:  # not a timestamp: it cannot tell a client anything true
        return False


def _covers(outer: list[Any], inner: list[float]) -> bool:
    """Whether bbox ``outer`` (west, south, east, north) holds ``inner``, give or take the
    rounding to 7 decimals (1 cm) that manifests use."""
    if len(outer) != 4 or not all(isinstance(v, (int, float)) for v in outer):
        return False
    tol = 1e-6
    return bool(outer[0] - tol <= inner[0] and outer[1] - tol <= inner[1]
            and inner[2] <= outer[2] + tol and inner[3] <= outer[3] + tol)  # fmt: skip


def _rows(table: Any) -> list[dict[str, Any]]:
    from dafab_static.index_items import to_items

    out = []
    for batch in table.to_batches(max_chunksize=8192):
        out += to_items(batch)
    return out


def _compare(href: str, cid: str, tree: dict[str, bytes], index: dict[str, bytes]
             ) -> list[Disagreement]:  # fmt: skip
    found = []
    changed = sorted(i for i in tree if i in index and tree[i] != index[i])
    for label, ids in (
        ("in the index but not in the tree", sorted(set(index) - set(tree))),
        ("in the tree but not in the index", sorted(set(tree) - set(index))),
        ("differ{s} between tree and index", changed),
    ):
        if ids:
            shown = ", ".join(repr(i) for i in ids[:_SHOWN])
            more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
            label = label.format(s="s" if len(ids) == 1 else "")
            message = f"collection {cid!r}: {counted(len(ids), 'item')} {label}: {shown}{more}"
            found.append(Disagreement(href, "dafab:tree-index-agreement", message))
    return found
