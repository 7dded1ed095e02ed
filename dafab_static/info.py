"""``info``: what a published catalog holds, read from its root, collections and manifests
(never by crawling items)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from dafab_static.errors import InputError
from dafab_static.storage import join_href, read_url


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

    @property
    def items(self) -> int:
        return sum(c.items for c in self.collections)

    def text(self) -> str:
        """Human-readable lines."""
        lines = [
            f"{self.title} ({self.root})",
            f"  STAC {self.stac_version}; built {self.built or 'unknown'} by "
            f"{self.generator or 'unknown'}",
            f"  {self.items} items in {len(self.collections)} collections",
        ]
        for c in self.collections:
            lines.append(
                f"  - {c.id}: {c.items} items, {c.partitions} index partitions "
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
    root = _load(root_url)
    if root.get("type") != "Catalog":
        raise InputError(f"{root_url}: not a STAC Catalog")
    marker = _try_load(join_href(root_url, ".dafab-release.json"))
    collections = [_describe(url) for url in _collections(root_url, root, depth=0)]
    return CatalogInfo(
        root=root_url,
        title=str(root.get("title") or root.get("id")),
        stac_version=str(root.get("stac_version")),
        generator=marker.get("generator") if marker else None,
        built=marker.get("built") if marker else None,
        collections=sorted(collections, key=lambda c: c.id),
    )


def _collections(url: str, doc: dict[str, Any], *, depth: int) -> list[str]:
    """URLs of the collections below a catalog (collections stop the descent)."""
    if doc.get("type") == "Collection":
        return [url]
    if depth > 4:  # sensors/<platform>/<collection>.json is depth 3
        return []
    found = []
    for link in doc.get("links", []):
        if link.get("rel") == "child":
            child = join_href(url, link["href"])
            found += _collections(child, _load(child), depth=depth + 1)
    return found


def _describe(url: str) -> CollectionInfo:
    doc = _load(url)
    extent = doc.get("extent", {})
    manifest = None
    for asset in doc.get("assets", {}).values():
        if asset.get("href", "").endswith("partitions.json"):
            manifest = _try_load(join_href(url, asset["href"]))
    return CollectionInfo(
        id=str(doc.get("id")),
        href=url,
        items=int(manifest["rows"]) if manifest else 0,
        partitions=len(manifest["partitions"]) if manifest else 0,
        bytes=int(manifest["bytes"]) if manifest else 0,
        bbox=list(extent.get("spatial", {}).get("bbox", [[]])[0]),
        interval=list(extent.get("temporal", {}).get("interval", [[None, None]])[0]),
    )


def _load(url: str) -> dict[str, Any]:
    data = read_url(url)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(f"{url}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{url}: not a STAC object")
    return doc


def _try_load(url: str) -> dict[str, Any] | None:
    try:
        return _load(url)
    except Exception:  # a missing optional document (manifest, marker) is not an error
        return None
