"""Field definitions in the vendored STAC and extension JSON Schemas, never fetched."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin

from dafab_static._schemas import SchemaRegistry

_CORE = tuple(
    f"https://schemas.stacspec.org/v{version}/item-spec/json-schema/{name}.json"
    for version in ("1.1.0", "1.0.0")
    for name in ("basics", "datetime", "instrument", "licensing", "provider", "bands",
                 "data-values", "item")
)  # fmt: skip
#: Definitions of the core Item schema that describe objects other than the Item.
_OBJECT_DEFINITIONS = frozenset({"link", "links", "asset", "assets"})
_CONSTRAINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum")
_VERSION = re.compile(r"/v(\d+)\.(\d+)\.(\d+)/")


@functools.lru_cache(maxsize=1)
def _registry() -> SchemaRegistry:
    # Loaded once per process (~0.1 s), on the first queryables computed.
    return SchemaRegistry()


def schema_urls(extensions: Iterable[object]) -> tuple[str, ...]:
    """Vendored schemas to describe fields from: the named extensions that are vendored,
    newest version first (eo v2 wins over v1 when items mix them), then the STAC core item
    schemas (1.1.0 before 1.0.0).

    Example:
        >>> schema_urls(["https://example.com/not-vendored.json"])[0]
        'https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/basics.json'
    """
    registry = _registry()
    named = {u for u in extensions if isinstance(u, str) and u in registry}

    def version(url: str) -> tuple[int, ...]:
        match = _VERSION.search(url)
        return tuple(map(int, match.groups())) if match else ()

    ordered = sorted(named, key=lambda u: (version(u), u), reverse=True)
    return (*ordered, *(u for u in _CORE if u in registry))


def definition(name: str, urls: Iterable[str]) -> dict[str, Any] | None:
    """The definition of the field ``name`` in the first of the vendored schemas ``urls``
    that defines it (``$ref`` resolved; shared, do not modify), or None.

    Example:
        >>> definition("eo:cloud_cover", schema_urls([]))  # not named: core schemas only
        >>> definition("platform", schema_urls([]))["title"]
        'Platform'
    """
    for url in urls:
        found = _definitions(url).get(name)
        if found is not None:
            return found
    return None


@functools.cache
def _definitions(url: str) -> dict[str, dict[str, Any]]:
    """Field name → the most informative definition in the vendored schema ``url``.

    Every ``properties`` member anywhere in the document counts, ``$ref`` resolved. In an
    extension only prefixed names (``eo:cloud_cover``) count: its unprefixed ones describe
    assets or bands (``href``, ``name``), not item properties. In a core schema, members of
    a field's own definition do not count either: ``count`` and ``mean`` inside
    ``statistics``, ``name`` and ``url`` inside ``providers``, ``rel`` inside a link
    describe those objects, not an item property of the same name.
    """
    core = url in _CORE
    best: dict[str, tuple[int, dict[str, Any]]] = {}

    def walk(node: Any, nested: bool) -> None:
        if isinstance(node, dict):
            members = node.get("properties")
            for name, sub in members.items() if isinstance(members, dict) else ():
                if (core and not nested) or ":" in name:
                    found = _resolve(sub, url)
                    score = _score(found)
                    if score > best.get(name, (0, {}))[0]:
                        best[name] = (score, found)
                # An Item's `properties` object holds item properties; any other field's
                # definition holds the members of that field.
                walk(sub, nested or name != "properties")
            for key, value in node.items():
                if key in ("definitions", "$defs") and core and isinstance(value, dict):
                    # The Item schema's own definitions: ``core`` is the Item; ``link(s)``
                    # and ``asset(s)`` describe objects whose members are not properties.
                    for term, body in value.items():
                        walk(body, nested or term in _OBJECT_DEFINITIONS)
                elif key != "properties" or not isinstance(value, dict):
                    walk(value, nested)
        elif isinstance(node, list):
            for value in node:
                walk(value, nested)

    walk(_registry().contents(url), False)
    return {name: found for name, (_, found) in best.items()}


def _resolve(node: Any, url: str) -> Any:
    """``node`` with its ``$ref`` chain followed through the vendored schemas."""
    for _ in range(8):
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            return node
        doc_url, _, pointer = urljoin(url, node["$ref"]).partition("#")
        if doc_url not in _registry():
            return node
        target: Any = _registry().contents(doc_url)
        for part in filter(None, pointer.split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return node
        node, url = {**target, **{k: v for k, v in node.items() if k != "$ref"}}, doc_url
    return node


def _score(node: Any) -> int:
    """How much a definition tells: 0 for nothing, or for a summaries-style definition."""
    if not isinstance(node, dict) or node.get("type") == ["array", "object"]:
        return 0
    return (
        2 * isinstance(node.get("title"), str)
        + 2 * isinstance(node.get("description"), str)
        + any(k in node for k in _CONSTRAINTS)
    )
