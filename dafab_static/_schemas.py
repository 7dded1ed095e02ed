"""The vendored STAC JSON Schemas: loaded once, compiled on demand, never fetched.

Every file under ``dafab_static/schemas/`` is registered under its URL key in
``schema-map.json``, not under its ``$id``: some ``$id`` values are wrong (core 1.1.0
``common.json`` says ``.../commonjson``, mlm 1.0-1.3 say ``https://stac-extensions/mlm/...``,
render 1.0.1 and table 1.0.1 claim to be 1.0.0). Each loaded document gets its ``$id``
rewritten to its URL so that relative ``$ref`` values resolve to the vendored neighbours the
schema authors meant, in both engines. The files on disk stay byte-identical to
``MANIFEST.json``.

Two engines share one format policy (:func:`is_date_time` only):

- ``jsonschema-rs`` (Rust) builds one validator per schema URL and decides valid/invalid:
  measured on 1000 real NAIP items, 24k items/s, against ~4k for fastjsonschema's compiled
  Python and ~0.2k for ``jsonschema``; the build checks every item it writes, so this is
  what keeps validation off the critical path at a million items;
- ``jsonschema`` (Draft 7 + ``referencing``) runs only on objects the fast engine rejects,
  to name every failing path and keyword in the familiar form.
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jsonschema
import jsonschema_rs
import jsonschema_specifications
import orjson
import referencing
import referencing.exceptions
import referencing.jsonschema

from dafab_static.errors import InputError

_log = logging.getLogger("dafab_static.validate")
Severity = Literal["error", "warning"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Finding(NamedTuple):
    """One schema problem, before the caller adds the object's href."""

    json_path: str
    rule: str
    message: str
    severity: Severity = "error"


#: Folder holding the vendored schema tree and its ``schema-map.json``.
SCHEMA_DIR = Path(str(files("dafab_static") / "schemas"))

# Draft 7's metaschema, which collection.json references for `summaries`, ships with
# jsonschema (jsonschema-specifications); jsonschema adds it to every registry on its own.
_METASCHEMAS = jsonschema_specifications.REGISTRY
_RS_METASCHEMAS = ("http://json-schema.org/draft-07/schema",)

_DATE_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z"
)


def is_date_time(value: object) -> bool:
    """Whether ``value`` is an RFC 3339 ``date-time`` with a real calendar date.

    The only ``format`` both engines assert: STAC's datetimes matter for search, while
    ``iri``/``iri-reference``/``uri-template`` hrefs are too varied in real catalogs and
    jsonschema cannot check them without extra packages. Non-strings pass (format applies
    to strings only).

    Example:
        >>> is_date_time("2024-02-30T00:00:00Z"), is_date_time("2024-02-29T00:00:00Z")
        (False, True)
    """
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.match(value)
    if match is None:
        return False
    try:
        datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def _any_string(value: object) -> bool:
    return True


# jsonschema-rs asserts every format it knows once formats are on; these overrides leave
# only date-time, the policy both engines share.
_UNCHECKED_FORMATS = (
    *("date", "time", "email", "hostname", "idn-email", "idn-hostname", "ipv4", "ipv6"),
    *("iri", "iri-reference", "json-pointer", "relative-json-pointer", "regex"),
    *("uri", "uri-reference", "uri-template", "duration", "uuid"),
)
#: Keywords whose values are instances, not schemas: a "format" member inside is data.
_INSTANCE_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def _only_date_time_formats(node: Any) -> Any:
    """A copy of a schema without the ``format`` keywords other than ``date-time``.

    The Rust engine's copy only: it would hand every other format to
    :func:`_any_string` (see ``_FAST_FORMATS``), one call back into Python for each
    href, title or id an object holds; a tree item spent 20 of its 36 µs of validation
    there. Without them it checks the same thing, and :meth:`SchemaRegistry.detailed`
    keeps the documents as published.
    """
    if isinstance(node, list):
        return [_only_date_time_formats(value) for value in node]
    if not isinstance(node, dict):
        return node
    return {
        key: value if key in _INSTANCE_KEYWORDS else _only_date_time_formats(value)
        for key, value in node.items()
        if not (key == "format" and isinstance(value, str) and value != "date-time")
    }


_FAST_FORMATS: dict[str, Callable[[Any], bool]] = {
    **dict.fromkeys(_UNCHECKED_FORMATS, _any_string),
    "date-time": is_date_time,
}
_FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
_FORMAT_CHECKER.checks("date-time")(is_date_time)


class SchemaRegistry:
    """The vendored schemas by URL, with one compiled validator per URL.

    Thread-safe: compiled validators are pure functions; compiling is serialised.

    Example:
        >>> reg = SchemaRegistry()
        >>> "https://stac-extensions.github.io/eo/v2.0.0/schema.json" in reg
        True
    """

    def __init__(self, root: Path = SCHEMA_DIR) -> None:
        self.root = root
        self.schema_map_path = root / "schema-map.json"
        try:
            mapping: dict[str, str] = orjson.loads(self.schema_map_path.read_bytes())["schemas"]
        except (OSError, orjson.JSONDecodeError, KeyError) as e:
            raise InputError(f"{self.schema_map_path}: cannot load the schema map ({e})") from e
        self._docs: dict[str, dict[str, Any]] = {}
        for url, rel in mapping.items():
            doc = orjson.loads((root / rel).read_bytes())
            doc["$id"] = url
            self._docs[url] = doc
        # referencing's attrs classes take `retrieve`/`ref`; mypy's attrs plugin misses them.
        self.registry: referencing.Registry[Any] = referencing.Registry(
            retrieve=self._stand_in  # type: ignore[call-arg]
        ).with_resources(
            (url, referencing.jsonschema.DRAFT7.create_resource(doc))
            for url, doc in self._docs.items()
        )
        self._missing: set[str] = set()
        resources = [(url, _only_date_time_formats(doc)) for url, doc in self._docs.items()]
        resources += [(url, _METASCHEMAS.contents(url)) for url in _RS_METASCHEMAS]
        self._rs_registry = jsonschema_rs.Registry(resources, retriever=self._record_missing)
        self._fast: dict[str, Any] = {}
        self._fast_all: dict[tuple[str, ...], Any] = {}
        self._detailed: dict[str, jsonschema.Draft7Validator] = {}
        self._index: dict[int, tuple[str, str]] | None = None
        self._lock = threading.Lock()

    def __contains__(self, url: object) -> bool:
        return url in self._docs

    def __iter__(self) -> Iterator[str]:
        return iter(self._docs)

    def contents(self, url: str) -> dict[str, Any]:
        """The schema document for ``url`` (shared: do not modify); KeyError if not vendored."""
        return self._docs[url]

    def fast(self, url: str) -> Any:
        """The jsonschema-rs validator for ``url``, or None where it cannot be trusted.

        None sends callers to :meth:`detailed` for every object. Two cases in the vendored
        set, both handled by jsonschema:

        - storage 2.0.0 refers to ``./platforms/*.json``, which is not vendored; the Rust
          registry resolves references eagerly, so those get an empty placeholder and the
          schema that needs them is left to jsonschema, which reports them as unchecked;
        - a schema the Rust engine refuses to build (e.g. mlm 1.0.0-1.2.0 declare a property
          ``$comment`` whose value is not a schema).
        """
        try:
            return self._fast[url]
        except KeyError:
            pass
        with self._lock:
            if url not in self._fast:
                validator: Any = None
                base = url.rsplit("/", 1)[0] + "/"
                if not any(m.startswith(base) for m in self._missing):
                    try:
                        validator = jsonschema_rs.validator_for(
                            {"$ref": url},
                            registry=self._rs_registry,
                            validate_formats=True,
                            formats=_FAST_FORMATS,
                        )
                    except (jsonschema_rs.ReferencingError, ValueError):
                        validator = None
                self._fast[url] = validator
            return self._fast[url]

    def fast_all(self, urls: tuple[str, ...]) -> Any:
        """One jsonschema-rs validator for all of ``urls`` at once (``allOf``), or None when
        one of them has no trusted fast validator (see :meth:`fast`).

        An item is checked against its core schema and each of its extensions; every
        check converts the whole Python object for the Rust engine again, and that
        conversion is a good part of the cost: 10k NAIP items (core, eo, projection)
        took 26 µs each through one validator against 29 µs through three (33 µs with
        the bookkeeping around them). Valid under all is valid under each, so only an
        object this rejects needs the schemas one by one, to say which failed.
        """
        try:
            return self._fast_all[urls]
        except KeyError:
            pass
        validator: Any = None
        if all(self.fast(url) is not None for url in urls):
            with self._lock:
                validator = jsonschema_rs.validator_for(
                    {"allOf": [{"$ref": url} for url in urls]},
                    registry=self._rs_registry,
                    validate_formats=True,
                    formats=_FAST_FORMATS,
                )
        self._fast_all[urls] = validator
        return validator

    def _record_missing(self, uri: str) -> Any:
        # Never fetched: remembered, and answered with a schema that accepts anything, so
        # that no rejection is ever wrong; :meth:`fast` sends their users to jsonschema.
        self._missing.add(uri)
        return {}

    def detailed(self, url: str) -> jsonschema.Draft7Validator:
        """A jsonschema Draft 7 validator for ``url`` over the vendored registry."""
        try:
            return self._detailed[url]
        except KeyError:
            validator = jsonschema.Draft7Validator(
                self._docs[url], registry=self.registry, format_checker=_FORMAT_CHECKER
            )
            self._detailed[url] = validator
            return validator

    def check(self, obj: Mapping[str, Any], url: str) -> list[Finding]:
        """Problems of ``obj`` under the vendored schema ``url``: fast, detailed on failure."""
        fast = self.fast(url)
        if fast is not None and fast.is_valid(obj):
            return []
        findings = [self._finding(e, url) for e in self.detailed(url).iter_errors(obj)]
        if not findings and fast is not None:
            # The Rust engine follows ECMA-262 where Python's re does not: "$" matches
            # before a final newline in Python ("1220ab\n" passed ^[a-f0-9]+$, logged
            # apart and counted nowhere). Its rejection stands, in its words.
            findings = [
                Finding(
                    json_path(list(e.instance_path)),
                    f"{url}#/" + "/".join(map(str, e.schema_path)),
                    one_line(e.message),
                )
                for e in fast.iter_errors(obj)
            ]
        missing = self._unvendored(url)
        if missing is not None:
            # What the schema says beyond the missing document is still checked: storage
            # 2.0.0's missing ./platforms/*.json hid every other rule of it.
            message = f"{url} refers to {missing}, which is not vendored; not fully checked"
            findings.append(Finding("$", f"{url}#$ref", message, "warning"))
        return findings

    def _unvendored(self, url: str) -> str | None:
        """A document that ``url``'s schema refers to and that is not vendored, or None."""
        base = url.rsplit("/", 1)[0] + "/"
        return min((m for m in self._missing if m.startswith(base)), default=None)

    def _stand_in(self, uri: str) -> referencing.Resource[Any]:
        """A schema that is not vendored is never fetched: it is remembered and stands as
        one that accepts anything, so that no rejection is ever wrong."""
        self._missing.add(uri)
        return referencing.jsonschema.DRAFT7.create_resource({})

    def _finding(self, error: jsonschema.ValidationError, url: str) -> Finding:
        error = _deepest(error)
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            # One error per missing member; name it in the path, as a reader looks for it.
            missing = [n for n in error.validator_value if n not in error.instance]
            path += [n for n in missing if error.message.startswith(repr(n))][:1]
        located = self.locate(error.schema)
        if located is not None:
            rule = f"{located[0]}#{located[1]}/{error.validator}"
        else:  # a metaschema bundled with jsonschema, not a vendored file
            rule = f"{url}#/" + "/".join(map(str, error.absolute_schema_path))
        return Finding(json_path(path), rule, one_line(_plain(error, rule)))

    def locate(self, subschema: object) -> tuple[str, str] | None:
        """The (URL, JSON pointer) of a subschema object from a jsonschema error, if vendored."""
        if self._index is None:
            index: dict[int, tuple[str, str]] = {}
            for url, doc in self._docs.items():
                _index_nodes(doc, url, "", index)
            self._index = index
        return self._index.get(id(subschema))


def _plain(error: jsonschema.ValidationError, rule: str) -> str:
    """jsonschema's message, or plain words where the schema says it by negation: STAC
    1.1's item schema forbids ``collection`` without a collection link through
    ``"not": {}``, which jsonschema words as "'x' should not be valid under {}"; a ring
    that is too short gets GeoJSON's rule rather than "[...] is too short"."""
    if error.validator == "not" and rule.endswith("/properties/collection/not"):
        return (
            f"collection {error.instance!r} is set, but no link has rel 'collection': STAC "
            "1.1 allows the field only beside that link"
        )
    if error.validator == "minItems" and error.validator_value == 4 and "/coordinates/" in rule:
        return (
            f"a linear ring has {len(error.instance)} positions; GeoJSON needs at least 4, "
            "the last repeating the first"
        )
    return str(error.message)


def _index_nodes(node: Any, url: str, pointer: str, index: dict[int, tuple[str, str]]) -> None:
    if isinstance(node, dict):
        index[id(node)] = (url, pointer)
        for key, value in node.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            _index_nodes(value, url, f"{pointer}/{escaped}", index)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _index_nodes(value, url, f"{pointer}/{i}", index)


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Descend anyOf/oneOf failures into the alternative that got furthest into the object.

    Ties go to the first alternative, the common case in STAC schemas (``datetime`` set
    comes before ``start_datetime``/``end_datetime``).
    """
    while error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        firsts = [max(errs, key=lambda e: len(e.absolute_path)) for errs in branches.values()]
        if len(firsts) > 1 and all(
            e.validator in ("enum", "const") and e.absolute_path == firsts[0].absolute_path
            for e in firsts
        ):
            # Every alternative stops at one discriminator (GeoJSON's `type`): say what all
            # of them allow, not only the first ("'GeometryCollection' is not one of
            # ['Point']" read as if only points were allowed).
            allowed = [v for e in firsts for v in (e.validator_value if e.validator == "enum"
                                                    else [e.validator_value])]  # fmt: skip
            firsts[0].message = f"{firsts[0].instance!r} is not one of {allowed!r}"
            return firsts[0]
        # A branch whose discriminator matched (GeoJSON's `type`) says what is wrong with
        # the object; one for another type only goes deeper by mistaking it for that type
        # (a 3-position Polygon ring read as a MultiPolygon's "10 is not of type 'array'").
        matched = [errs for errs in branches.values() if not any(_discriminates(e) for e in errs)]
        candidates = matched or list(branches.values())
        best = max(candidates, key=lambda errs: max(len(e.absolute_path) for e in errs))
        error = max(best, key=lambda e: len(e.absolute_path))
    return error


def _discriminates(error: jsonschema.ValidationError) -> bool:
    """Whether ``error`` is a failed ``type`` discriminator (``const``/``enum`` on a
    member named ``type``), which rules its whole alternative out."""
    path = error.absolute_path
    return error.validator in ("enum", "const") and bool(path) and path[-1] == "type"


def json_path(parts: Iterable[object]) -> str:
    """JSONPath (RFC 9535), dotted where a name allows: ``$.properties['eo:cloud_cover']``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _NAME.match(str(part)):
            out += f".{part}"
        else:
            out += "['" + str(part).replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def one_line(message: str, limit: int = 240) -> str:
    """``message`` on one line, cut to ``limit`` characters (jsonschema repeats instances)."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
