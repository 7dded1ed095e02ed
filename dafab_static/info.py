"""``info``: what a published catalog holds, read from its root, collections and manifests
(never by crawling items)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dafab_static import crawl
from dafab_static.errors import DafabError, InputError
from dafab_static.report import counted
from dafab_static.storage import join_href


@dataclass(frozen=True)
class CollectionInfo:
    """One collection: its counts from the partitions manifest, its extent."""

    id: str
    href: str
    items: int
    partitions: int
    bytes: int
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

    @property
    def items(self) -> int:
        return sum(c.items for c in self.collections)

    def text(self) -> str:
        """Human-readable lines."""
        lines = [
            f"{self.title} ({self.root})",
            f"  STAC {self.stac_version}; built {self.built or 'unknown'} by "
            f"{self.generator or 'unknown'}",
            f"  {counted(self.items, 'item')} in {counted(len(self.collections), 'collection')}",
        ]
        if self.conformance:
            names = ", ".join(c.rsplit("/", 1)[-1] for c in self.conformance)
            lines.append(f"  search (CQL2 conformance): {names}")
        for c in self.collections:
            lines.append(
                f"  - {c.id}: {counted(c.items, 'item')}, "
                f"{counted(c.partitions, 'index partition')} "
                f"({c.bytes / 1e6:.2f} MB), {c.interval[0]} .. {c.interval[1]}, "
                f"bbox {[round(v, 4) for v in c.bbox]}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "items": self.items}


def info(target: str) -> CatalogInfo:
    """Describe the catalog at ``target`` (folder, ``catalog.json`` path, s3:// or http(s)://).

    Raises:
        InputError: when ``target`` holds no STAC catalog.
        StorageError: when it cannot be read.

    Example:
        >>> info("out").items  # doctest: +SKIP
        12
    """
    root_url = target if target.endswith(".json") else target.rstrip("/") + "/catalog.json"
    root = crawl.load(root_url)
    if root.get("type") != "Catalog":
        raise InputError(f"{root_url}: not a STAC Catalog")
    marker = crawl.try_load(join_href(root_url, ".dafab-release.json"))
    collections = [_describe(url, doc) for url, doc in crawl.collections(root_url, root)]
    return CatalogInfo(
        root=root_url,
        title=str(root.get("title") or root.get("id")),
        stac_version=str(root.get("stac_version")),
        generator=marker.get("generator") if marker else None,
        built=marker.get("built") if marker else None,
        collections=sorted(collections, key=lambda c: c.id),
        conformance=[c for c in _list(root.get("conformsTo")) if isinstance(c, str)],
    )


def _describe(url: str, doc: dict[str, Any]) -> CollectionInfo:
    manifest: dict[str, Any] = {}
    for asset in crawl.assets(doc):
        if asset["href"].endswith("partitions.json"):
            try:
                manifest = crawl.load_manifest(join_href(url, asset["href"]))
            except DafabError:  # a missing or broken manifest: counts unknown, shown as 0
                manifest = {}
    extent: dict[str, Any] = doc["extent"] if isinstance(doc.get("extent"), dict) else {}
    return CollectionInfo(
        id=str(doc.get("id")),
        href=url,
        items=_count(manifest.get("rows")),
        partitions=len(_list(manifest.get("partitions"))),
        bytes=_count(manifest.get("bytes")),
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
