"""The static JSON tree: STAC documents with their structural links, serialised.

Every object links ``root`` and ``parent`` (the root links itself as root), catalogs link
``child`` and ``item``, items link ``collection``. Hrefs are relative between storage keys,
so the tree is self-contained; with a base URL each ``self`` is absolute as well (STAC Browser
requires the root's ``self`` to be ``{base_url}/catalog.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dafab_static import layout
from dafab_static.media_types import GEOJSON, JSON

STAC_VERSION = "1.1.0"
#: Links that encode where an object sits in a tree; the build recreates them, so those of
#: an input are dropped (``items`` is a STAC API link, meaningless in a static tree).
STRUCTURAL_RELS = frozenset({"self", "root", "parent", "child", "item", "collection", "items"})


@dataclass(frozen=True)
class Linker:
    """Computes hrefs between objects placed by a release (see :mod:`dafab_static.publish`)."""

    locate: Callable[[str], str]
    base_url: str | None = None

    def link(
        self, rel: str, src: str, dst: str, *, kind: str = JSON, title: str | None = None
    ) -> dict[str, str]:
        """A link from the object at layout path ``src`` to the one at ``dst``."""
        out = {"rel": rel, "href": layout.href(self.locate(src), self.locate(dst)), "type": kind}
        if title:
            out["title"] = title
        return out

    def structural(
        self, path: str, parent: str | None, *, kind: str = JSON
    ) -> list[dict[str, str]]:
        """``root``, ``parent`` and (with a base URL) absolute ``self`` links of one object."""
        links = [self.link("root", path, "catalog.json")]
        if parent is not None:
            links.append(self.link("parent", path, parent))
        if self.base_url:
            href = layout.absolute(self.base_url, self.locate(path))
            links.insert(0, {"rel": "self", "href": href, "type": kind})
        return links


def dumps(doc: dict[str, Any]) -> bytes:
    """Serialise a STAC document: 2-space indent, trailing newline, stable key order."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def item_document(
    item: dict[str, Any],
    *,
    path: str,
    parent: str,
    collection: str,
    linker: Linker,
) -> dict[str, Any]:
    """The item as published: its own non-structural links kept after the structural ones."""
    own = [ln for ln in item.get("links", []) if ln.get("rel") not in STRUCTURAL_RELS]
    links = linker.structural(path, parent, kind=GEOJSON)
    links.append(linker.link("collection", path, collection))
    doc = dict(item)
    doc["links"] = links + own
    return doc


def catalog_document(
    *,
    catalog_id: str,
    title: str,
    description: str,
    path: str,
    parent: str | None,
    children: Sequence[tuple[str, str]],
    items: Sequence[str],
    linker: Linker,
) -> dict[str, Any]:
    """A Catalog linking its children (``(path, title)``) and items (paths)."""
    links = linker.structural(path, parent)
    links += [linker.link("child", path, c, title=t) for c, t in children]
    links += [linker.link("item", path, i, kind=GEOJSON) for i in items]
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": catalog_id,
        "title": title,
        "description": description,
        "links": links,
    }


def collection_document(
    collection: dict[str, Any],
    *,
    path: str,
    parent: str,
    children: Sequence[tuple[str, str]],
    linker: Linker,
) -> dict[str, Any]:
    """The Collection with structural links; asset hrefs given as layout paths made relative."""
    doc = dict(collection)
    own = [ln for ln in doc.get("links", []) if ln.get("rel") not in STRUCTURAL_RELS]
    links = linker.structural(path, parent)
    links += [linker.link("child", path, c, title=t) for c, t in children]
    doc["links"] = links + own
    return doc


def file_uris(doc: dict[str, Any]) -> None:
    """Local absolute paths in an Item's or Collection's hrefs (a source file's ``via``
    link, a raster's asset, a user Collection's license) as ``file://`` URIs. A bare
    ``/data/x.tif`` is a relative reference (RFC 3986 4.2): a client resolves it against
    the document's URL, ``https://host/data/x.tif``, a file the host does not serve;
    ``file:///data/x.tif`` says what it is."""
    for target in (*doc.get("assets", {}).values(), *doc.get("links", ())):
        href = target.get("href") if isinstance(target, dict) else None
        if isinstance(href, str) and href.startswith("/") and not href.startswith("//"):
            target["href"] = Path(href).as_uri()
