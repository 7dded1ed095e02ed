"""Reading a catalog's JSON documents and finding its Collections, for ``info``,
``queryables`` and ``search`` (which read the root, the Collections and their manifests,
never the items)."""

from __future__ import annotations

import contextlib
import contextvars
import posixpath
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson

from dafab_static.errors import DafabError, InputError
from dafab_static.storage import IOStats, join_href, read_url

# catalog.json → sensors/ → <platform>/ → <collection>.json is depth 3; leave room for
# other publishers' deeper trees, but never walk into the partition catalogs of items.
MAX_DEPTH = 6


def load(url: str) -> dict[str, Any]:
    """The JSON object at ``url`` (path, s3:// or http(s)://).

    Raises StorageError when it cannot be read, InputError when it is not a JSON object.
    """
    doc = _json(url)
    if not isinstance(doc, dict):
        raise InputError(f"{url}: not a STAC object")
    return doc


#: Where the documents read in this context are counted (search's ``--verbose``).
_COUNTER: contextvars.ContextVar[IOStats | None] = contextvars.ContextVar("_COUNTER", default=None)


@contextlib.contextmanager
def counting(stats: IOStats) -> Iterator[IOStats]:
    """Count in ``stats`` each document read within the block: one request, its bytes."""
    token = _COUNTER.set(stats)
    try:
        yield stats
    finally:
        _COUNTER.reset(token)


def _json(url: str) -> Any:
    data = read_url(url)
    if (stats := _COUNTER.get()) is not None:
        stats.add(len(data))
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(f"{url}: not JSON ({e})") from None


def try_load(url: str) -> dict[str, Any] | None:
    """Like :func:`load`, but None for a missing or unreadable optional document."""
    try:
        return load(url)
    except Exception:  # a missing optional document (manifest, marker) is not an error
        return None


def links(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The link objects of a STAC document that have a string ``href``; malformed ones (in
    someone else's catalog) are passed over here, and reported by schema validation."""
    found = doc.get("links")
    if not isinstance(found, list):
        return []
    return [ln for ln in found if isinstance(ln, dict) and isinstance(ln.get("href"), str)]


def resolve(url: str, doc: dict[str, Any], href: str) -> str:
    """Where a link ``href`` of ``doc``, read from ``url``, points: ``join_href``, except
    that an absolute href below the document's own absolute ``self`` (a catalog built with
    ``--base-url``, read from its folder or a mirror before it is served there) is followed
    from ``url``, where the tree actually is.

    Example:
        >>> doc = {"links": [{"rel": "self", "href": "https://x.org/stac/catalog.json"}]}
        >>> resolve("/data/stac/catalog.json", doc, "https://x.org/stac/queryables.json")
        '/data/stac/queryables.json'
    """
    self_href = next((ln["href"] for ln in links(doc) if ln.get("rel") == "self"), None)
    if self_href and self_href != url:
        mine, theirs = urlsplit(self_href), urlsplit(href)
        if mine.scheme and (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc):
            return join_href(url, posixpath.relpath(theirs.path, posixpath.dirname(mine.path)))
    return join_href(url, href)


def assets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The asset objects of a STAC document that have a string ``href`` (as :func:`links`)."""
    found = doc.get("assets")
    if not isinstance(found, dict):
        return []
    return [a for a in found.values() if isinstance(a, dict) and isinstance(a.get("href"), str)]


def assets_with_role(doc: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The :func:`assets` of a document whose ``roles`` list holds ``role``."""
    return [a for a in assets(doc) if isinstance(a.get("roles"), list) and role in a["roles"]]


def load_manifest(url: str) -> dict[str, Any]:
    """A partitions manifest (``dafab_static.index.manifest``), checked for the shape its
    readers rely on: a ``partitions`` list of objects, each with a string ``path``.

    Raises StorageError when it cannot be read, InputError when it is not such a manifest.
    """
    doc = _json(url)
    if not isinstance(doc, dict):
        raise InputError(f"{url}: not a partitions manifest (not a JSON object)")
    parts = doc.get("partitions")
    if not isinstance(parts, list):
        raise InputError(f"{url}: not a partitions manifest (no 'partitions' list)")
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("path"), str):
            raise InputError(f"{url}: partitions[{i}] is not an object with a 'path'")
    return doc


def collections(
    url: str,
    doc: dict[str, Any],
    *,
    depth: int = 0,
    loose: list[str] | None = None,
    broken: list[str] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(URL, document) of every Collection reachable from ``doc`` through ``child`` links.

    A Collection ends the descent: its children are partition catalogs of items. The URLs
    of catalogs on the way that link items themselves (outside any Collection) are added
    to ``loose`` when it is given. With ``broken``, a child that cannot be read is named
    there and skipped; without it, it raises.
    """
    if doc.get("type") == "Collection":
        return [(url, doc)]
    if depth >= MAX_DEPTH:
        return []
    found: list[tuple[str, dict[str, Any]]] = []
    for link in links(doc):
        if link.get("rel") == "child" and link["href"]:
            child = resolve(url, doc, link["href"])
            try:
                child_doc = load(child)
            except DafabError as e:
                if broken is None:
                    raise
                broken.append(f"child link of {url}: {e}")
                continue
            found += collections(child, child_doc, depth=depth + 1, loose=loose, broken=broken)
        elif link.get("rel") == "item" and loose is not None and url not in loose:
            loose.append(url)
    return found
