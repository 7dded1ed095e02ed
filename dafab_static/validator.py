"""Check one STAC object against the vendored JSON Schemas, offline.

An object is checked against the core schema for its ``type`` and ``stac_version`` plus
every schema in its ``stac_extensions``. A jsonschema-rs validator decides valid/invalid;
only rejected objects are re-run through jsonschema to name each failing JSON path and
schema keyword (see :mod:`dafab_static._schemas`). Nothing is ever fetched: an extension
schema that is not vendored is reported as a warning, not an error. Whole catalogs are
:mod:`dafab_static.validate`'s.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dafab_static._schemas import SchemaRegistry, Severity

_CORE = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}
_VERSIONS = ("1.0.0", "1.1.0")
_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?\Z")
_VERSION, _UNKNOWN = "dafab:stac_version", "dafab:unknown-extension"


@dataclass(frozen=True)
class Problem:
    """One finding about one STAC object.

    ``rule`` is ``<schema URL>#<JSON pointer to the failing keyword>`` for schema errors
    (``https://geojson.org/schema/Feature.json#/properties/bbox/type``) and ``dafab:<check>``
    for our own checks (``dafab:readable``, ``dafab:json``, ``dafab:cycle``,
    ``dafab:unique-id``, ``dafab:unknown-extension``, ...). For a missing ``required``
    member, ``json_path`` names the missing member (``$.properties.datetime``).
    """

    href: str
    json_path: str
    rule: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.href or '<object>'}: {self.json_path}"
        return f"{where}: {self.severity}: {self.message} [{self.rule}]"


class Validator:
    """Checks STAC objects; reuse one instance (it caches compiled schemas). Thread-safe.

    Example:
        >>> v = Validator()
        >>> [p.json_path for p in v.validate({"type": "Catalog", "stac_version": "1.1.0"})]
        ['$.id', '$.description', '$.links']
    """

    def __init__(self, schemas: SchemaRegistry | None = None) -> None:
        self.schemas = schemas or SchemaRegistry()

    def validate(self, obj: Mapping[str, Any], *, href: str = "") -> list[Problem]:
        """Problems of one STAC object; empty when it is valid. ``href`` labels the problems."""
        if not isinstance(obj, Mapping):
            return [Problem(href, "$", "dafab:type", "not a JSON object")]
        problems: list[Problem] = []
        urls = self._core(obj, href, problems)
        if urls is None:
            return problems
        if obj.get("type") == "Feature" and isinstance(obj.get("geometry"), Mapping):
            for where in _open_rings(obj["geometry"], "$.geometry"):
                problems.append(Problem(href, where, "dafab:closed-ring", _OPEN_RING))
            if (stray := _off_the_world(obj["geometry"].get("coordinates"))) is not None:
                message = (f"position {stray} is not a longitude in [-180, 180] and a latitude "
                           "in [-90, 90] (RFC 7946 3.1.1, 3.1.9: cross the antimeridian by "
                           "splitting)")  # fmt: skip
                problems.append(Problem(href, "$.geometry", "dafab:position-range", message,
                                        "warning"))  # fmt: skip
        extensions = obj.get("stac_extensions")
        for i, url in enumerate(extensions if isinstance(extensions, list) else ()):
            if not isinstance(url, str):  # the core schema reports it; a list is no key
                continue
            if url in self.schemas:
                urls.append(url)
            else:
                message = f"extension schema {url} is not vendored; not checked"
                problems.append(
                    Problem(href, f"$.stac_extensions[{i}]", _UNKNOWN, message, "warning")
                )
        every = self.schemas.fast_all(tuple(urls)) if len(urls) > 1 else None
        if every is not None and every.is_valid(obj):
            return problems
        for url in urls:
            problems.extend(Problem(href, *finding) for finding in self.schemas.check(obj, url))
        return problems

    def validate_many(self, objs: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Problem]:
        """Problems of many ``(href, object)`` pairs, in input order."""
        return [p for href, obj in objs for p in self.validate(obj, href=href)]

    def _core(self, obj: Mapping[str, Any], href: str, out: list[Problem]) -> list[str] | None:
        """The core schema URL to check (a one-item list, or empty), or None to stop here."""
        kind, version = obj.get("type"), obj.get("stac_version")
        if not isinstance(kind, str) or kind not in _CORE:
            message = f"type {kind!r} is not a STAC Feature, Collection or Catalog"
            out.append(Problem(href, "$.type", "dafab:type", message))
            return None
        match = _SEMVER.match(version) if isinstance(version, str) else None
        if match is None:
            message = f"stac_version {version!r} is not a version number"
            out.append(Problem(href, "$.stac_version", _VERSION, message))
            return None
        if version in _VERSIONS:
            name = _CORE[kind]
            return [f"https://schemas.stacspec.org/v{version}/{name}-spec/json-schema/{name}.json"]
        if (*map(int, match.groups()[:3]), match[4] is None) < (1, 0, 0, True):
            message = f"stac_version {version} is older than 1.0.0 and unsupported; migrate it"
            out.append(Problem(href, "$.stac_version", _VERSION, message))
            return None
        message = f"no vendored core schema for stac_version {version}; core not checked"
        out.append(Problem(href, "$.stac_version", _VERSION, message, "warning"))
        return []


_default: Validator | None = None
_default_lock = threading.Lock()


def shared_validator() -> Validator:
    global _default
    with _default_lock:
        if _default is None:
            _default = Validator()
        return _default


def validate_object(obj: Mapping[str, Any], *, href: str = "") -> list[Problem]:
    """Problems of one STAC object (dict) against the vendored schemas; empty when valid.

    Uses one shared :class:`Validator`. Never touches the network: each extension schema
    that is not vendored gives one ``warning``. STAC older than 1.0.0 gives one error.

    Example:
        >>> [p.message for p in validate_object({"type": "Feature", "stac_version": "0.9.0"})]
        ['stac_version 0.9.0 is older than 1.0.0 and unsupported; migrate it']
    """
    return shared_validator().validate(obj, href=href)


_OPEN_RING = "polygon ring not closed: RFC 7946 3.1.6 says its first and last positions are equal"


def _open_rings(geometry: Mapping[str, Any], path: str) -> Iterator[str]:
    """JSON paths of polygon rings whose last position is not their first, which the GeoJSON
    schemas let pass (they check array shapes only) and GEOS refuses to read."""
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        for i, member in enumerate(members if isinstance(members, list) else ()):
            if isinstance(member, Mapping):
                yield from _open_rings(member, f"{path}.geometries[{i}]")
        return
    if not isinstance(coordinates, list):
        return
    if kind == "Polygon":
        polygons = [(f"{path}.coordinates", coordinates)]
    elif kind == "MultiPolygon":
        polygons = [(f"{path}.coordinates[{i}]", p) for i, p in enumerate(coordinates)]
    else:
        return
    for where, rings in polygons:
        for j, ring in enumerate(rings if isinstance(rings, list) else ()):
            if isinstance(ring, list) and len(ring) > 1 and ring[0] != ring[-1]:
                yield f"{where}[{j}]"


def _off_the_world(coordinates: Any) -> list[Any] | None:
    """A position outside longitude [-180, 180] or latitude [-90, 90], or None."""
    stack = [coordinates]
    while stack:
        value = stack.pop()
        if not isinstance(value, list) or not value:
            continue
        if isinstance(value[0], list):
            stack.extend(value)
        elif (
            len(value) >= 2
            and all(isinstance(v, (int, float)) for v in value[:2])
            and not (-180 <= value[0] <= 180 and -90 <= value[1] <= 90)
        ):
            return value
    return None
