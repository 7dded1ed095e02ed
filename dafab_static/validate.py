"""Check whole STAC catalogs against the vendored JSON Schemas, offline.

Each object is checked by :mod:`dafab_static.validator`; a dafab-static catalog's tree and
indexes must also agree (:mod:`dafab_static.agreement`).

:func:`validate` crawls any catalog (ours or other people's) through its ``child`` and
``item`` links, from a folder, a file, an ``http(s)://`` URL or ``s3://bucket/prefix``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import threading
import warnings
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from dafab_static._schemas import one_line
from dafab_static.agreement import Agreement
from dafab_static.errors import DafabError, InputError, StorageError
from dafab_static.extent_check import ExtentCheck
from dafab_static.layout import PIPELINE_ITEMS
from dafab_static.options import path_argument
from dafab_static.report import counted
from dafab_static.storage import join_href, read_url
from dafab_static.validator import Problem, Validator, shared_validator

_KIND = {"Feature": "Item", "Collection": "Collection", "Catalog": "Catalog"}
_HTTP_TIMEOUT_S = 30
#: The longest one document may take to arrive, however steadily it trickles in.
_HTTP_TOTAL_S = 120
_FETCH_THREADS = 8
_CHUNK = 64  # objects in flight at once: bounds memory on collections with 1M item links


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate` found in one catalog. ``counts`` is by Catalog/Collection/Item."""

    root: str
    objects_checked: int
    counts: dict[str, int]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """No error-severity problem (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def summary(self) -> str:
        """One line: verdict, root, objects by type, errors and warnings."""
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items())) or "none"
        return (
            f"{'valid' if self.ok else 'INVALID'}: {self.root}: "
            f"{counted(self.objects_checked, 'object')} ({kinds}), "
            f"{counted(len(self.errors), 'error')}, {counted(len(self.warnings), 'warning')}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: the fields plus ``ok``."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def validate(path_or_url: str | os.PathLike[str], *, recursive: bool = True) -> ValidationReport:
    """Validate a catalog, collection or item and, with ``recursive``, everything it links.

    PATH_OR_URL: a JSON file, a folder holding ``catalog.json``, an ``http(s)://`` URL or
    ``s3://bucket/prefix[/catalog.json]``. Follows ``child`` and ``item`` links of catalogs
    and collections (relative hrefs against their parent), fetching remote ones from a
    small thread pool, and reports besides schema problems: unreadable or non-JSON link
    targets, duplicate item ids within a collection, link cycles, objects linked twice, and
    items that differ between the tree and the collections' stac-geoparquet mirrors
    (:mod:`dafab_static.agreement`).

    Raises:
        InputError: the root is missing or is not JSON.
        StorageError: the root cannot be read (URL unreachable, bucket denied).

    Example:
        >>> validate("catalog/").summary()  # doctest: +SKIP
        'valid: /data/catalog/catalog.json: 7 objects (1 Catalog, 2 Collection, 4 Item), ...'
    """
    root, documents = _start(path_argument(path_or_url, "path_or_url"))
    crawl = _Crawl(shared_validator(), recursive, _origin(root))
    for href, obj, unparsed in documents:
        if unparsed is not None:
            message = str(unparsed).removeprefix(f"{href}: ")  # the href leads the line
            crawl.problems.append(Problem(href, "$", "dafab:json", message))
        else:
            crawl.visit(href, obj, None)
    pool = ThreadPoolExecutor(_FETCH_THREADS)
    try:
        while crawl.queue:
            chunk = [crawl.queue.popleft() for _ in range(min(len(crawl.queue), _CHUNK))]
            loaded = pool.map(crawl.load, [link.target for link in chunk])
            for link, (obj, error) in zip(chunk, loaded, strict=True):
                if error is None:
                    crawl.visit(link.target, obj, link)
                else:
                    crawl.fail(link, error)
    finally:
        # Not the pool's `with`, which waits for every fetch: a Ctrl-C or SIGTERM waited on
        # a server that answered a byte at a time.
        pool.shutdown(wait=False, cancel_futures=True)
    for found in crawl.agreement.check():
        crawl.problems.append(
            Problem(found.href, "$", found.rule, found.message, severity=found.severity)
        )
    crawl.problems += crawl.extents.problems()
    counts = crawl.counts
    return ValidationReport(root, sum(counts.values()), dict(counts), crawl.problems)


class _Link(NamedTuple):
    parent: str
    position: int  # in the parent's `links`
    rel: str
    target: str
    ancestors: tuple[str, ...]  # hrefs from the root to the parent


class _Crawl:
    """State of one :func:`validate` walk: what was seen, counted and found."""

    def __init__(self, checker: Validator, recursive: bool, origin: str) -> None:
        self.checker, self.recursive, self.origin = checker, recursive, origin
        self.counts: Counter[str] = Counter()
        self.problems: list[Problem] = []
        self.queue: deque[_Link] = deque()
        self.seen: dict[str, str] = {}  # href -> the parent that linked it first
        self.ids: dict[tuple[str, str], str] = {}  # (collection, item id) -> href
        self.agreement = Agreement()
        self.extents = ExtentCheck()
        self.lock = threading.Lock()

    def load(self, href: str) -> tuple[Any, DafabError | None]:
        try:
            return _parse(href, _read(href)), None
        except DafabError as e:
            return None, e

    def visit(self, href: str, obj: Any, link: _Link | None) -> None:
        kind = _KIND.get(str(obj.get("type")), "other") if isinstance(obj, dict) else "other"
        self.counts[kind] += 1
        self.problems.extend(self.checker.validate(obj, href=href))
        if link is not None:
            self._check_link(href, kind, link)
        if kind == "Item":
            self.agreement.item(obj, href)
            self.extents.item(href, obj)
        elif kind == "Collection":
            self.agreement.collection(href, obj)
            self.extents.collection(href, obj)
        if kind == "Item" and isinstance(obj.get("id"), str):
            collection = obj.get("collection")
            parent = link.parent if link else ""
            scope = collection if isinstance(collection, str) else f"\0{parent}"
            first = self.ids.setdefault((scope, obj["id"]), href)
            if first != href:
                # A warning: STAC says an id SHOULD be unique within its Collection, not MUST
                # (the spec's own example collection reuses one id for three items, and
                # stac-validator passes it). `build` refuses duplicates: they would share a path.
                if isinstance(collection, str):
                    among = f"in collection {collection!r}"
                else:
                    among = "among items without a collection" + (f" under {parent}" * bool(parent))
                message = f"item id {obj['id']!r} is also used by {first} {among}"
                self.problems.append(
                    Problem(href, "$.id", "dafab:unique-id", message, severity="warning")
                )
        if self.recursive and kind in ("Catalog", "Collection"):
            self.queue.extend(self._links(href, obj, (*link.ancestors, href) if link else (href,)))

    def _check_link(self, href: str, kind: str, link: _Link) -> None:
        """What the link that led here says against what is here: ``child`` leads to a
        Catalog or Collection, ``item`` to an Item (STAC's relation types). (An Item whose
        ``collection`` is not its parent's id is no problem: the spec's own example
        Collection links an item of another collection.)"""
        if link.rel == "child" and kind == "Item":
            message = f"child link to {href}, an Item: child links lead to Catalogs and Collections"
        elif link.rel == "item" and kind in ("Catalog", "Collection"):
            message = f"item link to {href}, a {kind}: item links lead to Items"
        else:
            return
        where = f"$.links[{link.position}].href"
        self.problems.append(Problem(link.parent, where, "dafab:link-target", message, "warning"))

    def fail(self, link: _Link, error: DafabError) -> None:
        if isinstance(error, StorageError):
            where = f"$.links[{link.position}].href"
            message = f"{link.rel} link: {error}"
            self.problems.append(Problem(link.parent, where, "dafab:readable", message))
        else:
            message = str(error).removeprefix(f"{link.target}: ")  # the href leads the line
            self.problems.append(Problem(link.target, "$", "dafab:json", message))

    def _links(
        self, href: str, obj: Mapping[str, Any], ancestors: tuple[str, ...]
    ) -> Iterator[_Link]:
        links = obj.get("links")
        for i, link in enumerate(links if isinstance(links, list) else ()):
            if not isinstance(link, dict) or link.get("rel") not in ("child", "item"):
                continue
            if not isinstance(link.get("href"), str):
                continue  # the schema reports it
            target, where, rel = join_href(href, link["href"]), f"$.links[{i}].href", link["rel"]
            origin = _origin(target)
            if origin == self.origin == "local files":
                # The file itself, not the way to it: a folder linked to itself through a
                # symlink (a/up -> ..) is a cycle, not 40 levels of the same catalog.
                target = os.path.realpath(target)
            if origin != self.origin:
                message = (f"{rel} link to {target}: elsewhere than the catalog "
                           f"({self.origin}); not followed")  # fmt: skip
                self.problems.append(Problem(href, where, "dafab:not-followed", message, "warning"))
            elif target in ancestors:
                message = f"{rel} link to {target} points back to an ancestor: a cycle"
                self.problems.append(Problem(href, where, "dafab:cycle", message))
            elif target in self.seen:
                message = f"{target} is already linked from {self.seen[target]}"
                self.problems.append(Problem(href, where, "dafab:linked-twice", message, "warning"))
            else:
                self.seen[target] = href
                yield _Link(href, i, rel, target, ancestors)


def _documents(root: str) -> Iterator[tuple[str, Any, InputError | None]]:
    """The objects to start from: the root document; each line of an NDJSON file (the
    output of ``pipeline run``, another hub's export); each feature of a FeatureCollection
    (a STAC API page) or of a JSON array of items. Each comes with its href for messages
    (``file:LINE``, ``file#/features/I``) and its parse error, if any; a bad root is an
    InputError."""
    from dafab_static.ingest.stac import NDJSON_SUFFIXES

    if root.lower().endswith(NDJSON_SUFFIXES):
        for number, line in enumerate(_lines(root), 1):
            if line.strip():
                href = f"{root}:{number}"
                try:
                    yield href, _parse(href, line), None
                except InputError as error:
                    yield href, None, error
        return
    obj = _parse(root, _read(root))
    features = obj.get("features") if isinstance(obj, dict) else None
    if isinstance(features, list) and obj.get("type") == "FeatureCollection":
        for index, feature in enumerate(features):
            yield f"{root}#/features/{index}", feature, None
        return
    if isinstance(obj, list) and any(
        isinstance(m, dict) and m.get("type") == "Feature" for m in obj
    ):
        for index, member in enumerate(obj):  # a JSON array of items, as hubs export them
            yield f"{root}#/{index}", member, None
        return
    yield root, obj, None


def _origin(href: str) -> str:
    """Where a document lives, for the crawl's one rule: links are followed within the
    catalog's own host or bucket (or, for a local catalog, this machine's files) only. A
    third party's catalog would otherwise have validate fetch whatever it names, and sign
    requests to the bucket it names with the user's AWS credentials.

    Example:
        >>> _origin("https://Example.com/stac/catalog.json"), _origin("/data/catalog.json")
        ('web example.com', 'local files')
    """
    parts = urlsplit(href)
    if parts.scheme in ("http", "https"):
        return f"web {parts.netloc.lower()}"
    if parts.scheme == "s3":
        return f"bucket {parts.netloc}"
    return "local files" if parts.scheme in ("", "file") or _DRIVE.match(href) else parts.scheme


_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def _start(path_or_url: str) -> tuple[str, Iterator[tuple[str, Any, InputError | None]]]:
    """The root's href and the documents to start from. A URL ending in ``/`` is a folder
    (its ``catalog.json``); one naming a file is that file; one naming neither
    (``https://host/stac``) is tried as a document, then as a folder."""
    root = _root_href(path_or_url)
    documents = _documents(root)
    parts = urlsplit(path_or_url)
    if parts.scheme in ("http", "https", "s3") and root == path_or_url:
        last = parts.path.rsplit("/", 1)[-1]
        if "." not in last:  # neither a folder nor, by its name, a file
            try:
                first = next(documents, None)
            except DafabError:
                folder = path_or_url.rstrip("/") + "/catalog.json"
                return folder, _documents(folder)
            return root, itertools.chain([first] if first else [], documents)
    return root, documents


def _root_href(path_or_url: str) -> str:
    parts = urlsplit(path_or_url)
    if parts.scheme in ("http", "https", "s3"):
        if not parts.path or parts.path.endswith("/"):
            return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/catalog.json"))
        return path_or_url
    path = unquote(parts.path) if parts.scheme == "file" else path_or_url  # RFC 8089
    if os.path.isdir(path):
        from dafab_static.ingest import pipeline_folder

        if not os.access(path, os.R_OK | os.X_OK):
            raise InputError(f"{path_or_url}: cannot read folder: permission denied")
        if (pipeline := pipeline_folder(path)) is not None:  # its items, line by line
            return str(pipeline / PIPELINE_ITEMS)
        path = os.path.join(path, "catalog.json")
        if not os.path.isfile(path):
            raise InputError(f"{path_or_url}: folder has no catalog.json")
    elif not os.path.isfile(path):
        raise InputError(f"{path_or_url}: no such file or folder")
    return os.path.realpath(path)


def _lines(href: str) -> Iterator[bytes]:
    """The lines of an NDJSON file: streamed from a local file (an export of millions of
    items need not fit in memory), read whole from a URL."""
    if os.path.isfile(href):
        try:
            with open(href, "rb") as f:
                yield from f
        except OSError as e:
            raise InputError(f"{href}: cannot read ({e.strerror})") from None
        return
    yield from _read(href).splitlines()


def _read(href: str) -> bytes:
    """Bytes of a local file, an ``s3://`` object or an http(s) URL."""
    return read_url(href, timeout=_HTTP_TIMEOUT_S, total=_HTTP_TOTAL_S)


def _parse(href: str, data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(f"{href}: not JSON ({e})") from None


def validate_with_stac_validator(path: str, *, recursive: bool = True) -> list[Problem]:
    """Run stac-validator (``stac_valid``) on ``path`` with the vendored schema map, offline.

    A cross-check for CI: another crawler and jsonschema set-up over the same schemas.
    Returns its failures as problems, empty when valid; ``json_path`` is always ``$``
    because stac-validator puts paths only in its message text. A folder means its
    ``catalog.json``. Unlike :func:`validate`, an unvendored extension schema makes it try
    the network.

    Example:
        >>> validate_with_stac_validator("catalog/")  # doctest: +SKIP
        []
    """
    with warnings.catch_warnings():
        # The deprecated `stac_validator` distribution, a shim over `stac_valid`, replaces
        # the module's __init__ with one that warns on import.
        warnings.simplefilter("ignore", DeprecationWarning)
        from stac_validator.validate import StacValidate

    target = os.path.join(path, "catalog.json") if os.path.isdir(path) else path
    config = str(shared_validator().schemas.schema_map_path)
    checker = StacValidate(target, recursive=recursive, schema_config=config)
    valid = checker.run()
    problems = [
        Problem(
            str(m.get("path") or target),
            "$",
            f"stac-validator:{m.get('error_type', 'invalid')}",
            one_line(str(m.get("error_message", "invalid"))),
        )
        for m in checker.message
        if not m.get("valid_stac", False)
    ]
    if not valid and not problems:
        problems.append(Problem(target, "$", "stac-validator", "invalid, with no message"))
    return problems
