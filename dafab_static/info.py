"""``info``: what a published catalog holds, read from its root, collections and manifests
(never by crawling items)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from dafab_static import crawl
from dafab_static.errors import DafabError, InputError
from dafab_static.layout import RELEASE_MARKER
from dafab_static.options import path_argument
from dafab_static.report import counted
from dafab_static.storage import join_href


@dataclass(frozen=True)
class CollectionInfo:
    """One collection: its counts from the partitions manifest (None without one: a
    catalog dafab-static did not build is not crawled to count), its extent."""

    id: str
    href: str
    items: int | None
    partitions: int | None
    bytes: int | None
    bbox: list[float]
    interval: list[str | None]


@dataclass(frozen=True)
class CatalogInfo:
    """A catalog at a glance."""

    root: str
    title: str
    stac_version: str
    generator: str | None
    built: str | None
    collections: list[CollectionInfo] = field(default_factory=list)
    conformance: list[str] = field(default_factory=list)
    #: Whether a catalog links items outside any Collection: no manifest counts those.
    loose_items: bool = False
    #: What could not be read: a broken child link, a collection's unreadable manifest.
    warnings: list[str] = field(default_factory=list)

    @property
    def items(self) -> int | None:
        """Items in every collection; None when some are not counted: a collection has no
        manifest, or a catalog links items of its own."""
        counts = [c.items for c in self.collections]
        if None in counts or self.loose_items:
            return None
        return sum(c for c in counts if c is not None)

    def text(self) -> str:
        """Human-readable lines."""
        made = (
            f"built {self.built or 'at an unknown time'} by {self.generator}"
            if self.generator
            else "no dafab-static release marker"
        )
        items = "items not counted" if self.items is None else counted(self.items, "item")
        lines = [
            f"{self.title} ({self.root})",
            f"  STAC {self.stac_version}; {made}",
            f"  {items} in {counted(len(self.collections), 'collection')}",
        ]
        if self.conformance:
            names = ", ".join(c.rsplit("/", 1)[-1] for c in self.conformance)
            lines.append(f"  search (CQL2 conformance): {names}")
        for c in self.collections:
            start, end = (t or ".." for t in [*c.interval, None, None][:2])
            counts = (
                f"{counted(c.items, 'item')}, {counted(c.partitions or 0, 'index partition')} "
                f"({(c.bytes or 0) / 1e6:.2f} MB)"
                if c.items is not None
                else "no partitions manifest"
            )
            lines.append(
                f"  - {c.id}: {counts}, {start}/{end}, bbox {[round(v, 4) for v in c.bbox]}"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "items": self.items}


def info(target: str | os.PathLike[str]) -> CatalogInfo:
    """Describe the catalog at ``target`` (folder, ``catalog.json`` path, s3:// or http(s)://).

    Raises:
        InputError: when ``target`` holds no STAC catalog.
        StorageError: when it cannot be read.

    Example:
        >>> info("out").items  # doctest: +SKIP
        12
    """
    target = path_argument(target, "target")
    if "://" not in target and os.path.isfile(target) and not target.endswith(".json"):
        raise InputError(f"{target}: not a catalog; give its folder or its catalog.json")
    root_url = target if target.endswith(".json") else target.rstrip("/") + "/catalog.json"
    root = crawl.load(root_url)
    if root.get("type") != "Catalog":
        raise InputError(f"{root_url}: not a STAC Catalog")
    marker = crawl.try_load(join_href(root_url, RELEASE_MARKER))
    loose: list[str] = []
    warnings: list[str] = []
    found = crawl.collections(root_url, root, loose=loose, broken=warnings)
    collections = [_describe(url, doc, warnings) for url, doc in found]
    return CatalogInfo(
        root=root_url,
        title=str(root.get("title") or root.get("id")),
        stac_version=str(root.get("stac_version")),
        generator=marker.get("generator") if marker else None,
        built=marker.get("built") if marker else None,
        collections=sorted(collections, key=lambda c: c.id),
        conformance=[c for c in _list(root.get("conformsTo")) if isinstance(c, str)],
        loose_items=bool(loose),
        warnings=warnings,
    )


def _describe(url: str, doc: dict[str, Any], warnings: list[str]) -> CollectionInfo:
    manifest: dict[str, Any] | None = None
    for asset in crawl.assets(doc):
        if asset["href"].endswith("partitions.json"):
            try:
                manifest = crawl.load_manifest(join_href(url, asset["href"]))
            except DafabError as e:  # a missing or broken manifest: counts unknown
                warnings.append(f"collection {doc.get('id')!r}: items not counted: {e}")
                manifest = None
    extent: dict[str, Any] = doc["extent"] if isinstance(doc.get("extent"), dict) else {}
    return CollectionInfo(
        id=str(doc.get("id")),
        href=url,
        items=_count(manifest.get("rows")) if manifest is not None else None,
        partitions=len(_list(manifest.get("partitions"))) if manifest is not None else None,
        bytes=_count(manifest.get("bytes")) if manifest is not None else None,
        bbox=_first(extent, "spatial", "bbox", []),
        interval=_first(extent, "temporal", "interval", [None, None]),
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _first(extent: dict[str, Any], part: str, key: str, default: list[Any]) -> list[Any]:
    """The first of an extent's boxes or intervals (the overall one), if well formed."""
    inner = extent.get(part)
    values = inner.get(key) if isinstance(inner, dict) else None
    first = values[0] if isinstance(values, list) and values else None
    return list(first) if isinstance(first, list) else default
