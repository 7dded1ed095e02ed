"""``info``: what a published catalog holds, read from its root, collections and manifests
(never by crawling items)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dafab_static import crawl
from dafab_static.errors import InputError
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
        conformance=[str(c) for c in root.get("conformsTo", [])],
    )


def _describe(url: str, doc: dict[str, Any]) -> CollectionInfo:
    extent = doc.get("extent", {})
    manifest = None
    for asset in doc.get("assets", {}).values():
        if asset.get("href", "").endswith("partitions.json"):
            manifest = crawl.try_load(join_href(url, asset["href"]))
    return CollectionInfo(
        id=str(doc.get("id")),
        href=url,
        items=int(manifest["rows"]) if manifest else 0,
        partitions=len(manifest["partitions"]) if manifest else 0,
        bytes=int(manifest["bytes"]) if manifest else 0,
        bbox=list(extent.get("spatial", {}).get("bbox", [[]])[0]),
        interval=list(extent.get("temporal", {}).get("interval", [[None, None]])[0]),
    )
