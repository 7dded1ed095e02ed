"""Reading a catalog's JSON documents and finding its Collections, for ``info``,
``queryables`` and ``search`` (which read the root, the Collections and their manifests,
never the items)."""

from __future__ import annotations

from typing import Any

import orjson

from dafab_static.errors import InputError
from dafab_static.storage import join_href, read_url

# catalog.json → sensors/ → <platform>/ → <collection>.json is depth 3; leave room for
# other publishers' deeper trees, but never walk into the partition catalogs of items.
MAX_DEPTH = 6


def load(url: str) -> dict[str, Any]:
    """The JSON object at ``url`` (path, s3:// or http(s)://).

    Raises StorageError when it cannot be read, InputError when it is not a JSON object.
    """
    data = read_url(url)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(f"{url}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{url}: not a STAC object")
    return doc


def try_load(url: str) -> dict[str, Any] | None:
    """Like :func:`load`, but None for a missing or unreadable optional document."""
    try:
        return load(url)
    except Exception:  # a missing optional document (manifest, marker) is not an error
        return None


def collections(
    url: str, doc: dict[str, Any], *, depth: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """(URL, document) of every Collection reachable from ``doc`` through ``child`` links.

    A Collection ends the descent: its children are partition catalogs of items.
    """
    if doc.get("type") == "Collection":
        return [(url, doc)]
    if depth >= MAX_DEPTH:
        return []
    found: list[tuple[str, dict[str, Any]]] = []
    for link in doc.get("links", []):
        if link.get("rel") == "child" and link.get("href"):
            child = join_href(url, link["href"])
            found += collections(child, load(child), depth=depth + 1)
    return found
