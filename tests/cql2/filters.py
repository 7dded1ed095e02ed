"""Seeded CQL2 filters over :mod:`tests.cql2.dataset`: every operator class, alone and combined.

Each filter is written as CQL2 text; its JSON form comes from the ``cql2`` package
(``cql2.Expr(text).to_json()``), so the two encodings are produced independently of
dafab_static. Literals are drawn from the dataset's own values often enough that most
filters select some items but not all (``python -m tests.cql2.filters`` prints how many).
"""

from __future__ import annotations

import datetime as _dt
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import cql2
import shapely
from shapely.geometry import shape

from . import dataset
from .reference import Reference

SEED = 4242

SPATIAL_OPS = (
    "S_INTERSECTS",
    "S_DISJOINT",
    "S_CONTAINS",
    "S_WITHIN",
    "S_TOUCHES",
    "S_CROSSES",
    "S_OVERLAPS",
    "S_EQUALS",
)
LITERAL_KINDS = (
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
    "BBOX",
)
# CQL2 1.0 §7.8.2: the first table's functions take instants and intervals, the second's
# only intervals ("using these functions with instants will result in a client error").
INSTANT_OPS = ("T_AFTER", "T_BEFORE", "T_DISJOINT", "T_EQUALS", "T_INTERSECTS")
INTERVAL_OPS = (
    "T_CONTAINS",
    "T_DURING",
    "T_FINISHEDBY",
    "T_FINISHES",
    "T_MEETS",
    "T_METBY",
    "T_OVERLAPPEDBY",
    "T_OVERLAPS",
    "T_STARTEDBY",
    "T_STARTS",
)
ARRAY_OPS = ("A_EQUALS", "A_CONTAINS", "A_CONTAINEDBY", "A_OVERLAPS")
COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
# Null or missing on some items.
NULLABLE = (
    "eo:cloud_cover",
    "dafab:city",
    "dafab:flag",
    "dafab:tags",
    "dafab:score",
    "datetime",
    "start_datetime",
    "sar:polarizations",
)
ITEM_INTERVAL = "INTERVAL(start_datetime, end_datetime)"


@dataclass(frozen=True)
class Filter:
    """One generated filter: a pytest id, its CQL2 text and its CQL2 JSON."""

    name: str
    text: str
    json: dict[str, Any]


def filters(seed: int = SEED) -> list[Filter]:
    """All filters; the same list for the same seed."""
    draw = _Draw(random.Random(seed), dataset.items())
    made: list[tuple[str, str]] = []
    for kind, make, count in (
        ("comparison", draw.comparison, 30),
        ("like", draw.like, 25),
        ("between", draw.between, 15),
        ("in", draw.in_list, 15),
        ("null", draw.is_null, 12),
        ("casei", draw.casei, 24),
        ("arithmetic", draw.arithmetic, 24),
        ("property", draw.property_property, 12),
        ("spatial", draw.spatial, 16),
        ("temporal", draw.temporal, 20),
        ("array", draw.array, 12),
    ):
        made += [(kind, draw.selective(make)) for _ in range(count)]
    # Every operator with every kind of literal at least once.
    made += [
        ("spatial", draw.selective(partial(draw.spatial, op, kind)))
        for op in SPATIAL_OPS
        for kind in LITERAL_KINDS
    ]
    made += [
        ("temporal", draw.selective(partial(draw.temporal, op)))
        for op in INSTANT_OPS + INTERVAL_OPS
        for _ in range(2)
    ]
    made += [
        ("array", draw.selective(partial(draw.array, op))) for op in ARRAY_OPS for _ in range(3)
    ]
    made += [("combined", draw.selective(draw.combined)) for _ in range(80)]
    return [
        Filter(f"{i:03d}-{kind}", text, cql2.Expr(text).to_json())
        for i, (kind, text) in enumerate(made)
    ]


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ts(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Draw:
    """Random literals and predicates, drawn from the dataset's values where it matters."""

    def __init__(self, rng: random.Random, items: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.items = items
        props = [it["properties"] for it in items]
        self.ids = [it["id"] for it in items]
        self.values: dict[str, list[Any]] = {
            key: sorted({p[key] for p in props if p.get(key) is not None})
            for key in ("eo:cloud_cover", "dafab:score", "dafab:rank")
        }
        self.instants = sorted(
            p[key] for p in props for key in dataset.TEMPORAL if p.get(key) is not None
        )
        self.wkts = [shapely.to_wkt(shape(it["geometry"]), trim=True) for it in items]
        self.intervals = [
            (_parse(p["start_datetime"]), _parse(p["end_datetime"]))
            for p in props
            if "start_datetime" in p
        ]
        self.reference = Reference(items)

    def selective(self, make: Callable[[], str], tries: int = 8) -> str:
        """A filter from ``make`` that selects some items but not all, if one comes up."""
        for _ in range(tries):
            text = make()
            if 0 < len(self.reference.ids(cql2.Expr(text).to_json())) < len(self.items):
                break
        return text

    # --- basic and advanced comparison -------------------------------------------------

    def comparison(self) -> str:
        r, op = self.rng, self.rng.choice(COMPARISONS)
        kind = r.choice(("number", "number", "string", "boolean", "timestamp"))
        if kind == "number":
            prop = r.choice(tuple(self.values))
            literal = r.choice(self.values[prop]) if op in ("=", "<>") else self._number(prop)
            return f"{self._name(prop)} {op} {literal}"
        if kind == "string":
            prop, pool = r.choice(
                (("platform", dataset.PLATFORMS), ("dafab:city", dataset.CITIES), ("id", self.ids))
            )
            return f"{self._name(prop)} {op} {_quote(r.choice(pool))}"
        if kind == "boolean":
            return f"dafab:flag {r.choice(('=', '<>'))} {r.choice(('true', 'false', 'TRUE'))}"
        prop = r.choice(tuple(dataset.TEMPORAL))
        return f"{prop} {op} TIMESTAMP('{self._timestamp()}')"

    def like(self) -> str:
        r = self.rng
        prop, pool = r.choice(
            (
                ("id", self.ids),
                ("id", self.ids),
                ("platform", dataset.PLATFORMS),
                ("dafab:city", dataset.CITIES),
            )
        )
        value = r.choice(pool)
        keep = r.randint(1, len(value))
        pattern = ""
        for c in value[:keep]:
            roll = r.random()
            if roll < 0.15:
                pattern += "_"  # any one character
            elif c == "_" and roll < 0.45:
                pattern += "_"  # wildcard matching the underscore itself
            else:
                pattern += _escape_like(c)
        if keep < len(value) or r.random() < 0.3:
            pattern += "%"
        if r.random() < 0.2:
            pattern = "%" + pattern[r.randint(1, max(1, len(pattern) - 1)) :]
        if r.random() < 0.1:
            pattern = pattern.lower()  # LIKE is case-sensitive
        negate = " NOT" if r.random() < 0.3 else ""
        return f"{self._name(prop)}{negate} LIKE {_quote(pattern)}"

    def between(self) -> str:
        r = self.rng
        prop = r.choice(tuple(self.values))
        lo, hi = sorted((self._number(prop), self._number(prop)))
        if r.random() < 0.15:
            lo = r.choice(("dafab:rank - 60", "-dafab:rank", "eo:cloud_cover"))
        negate = " NOT" if r.random() < 0.3 else ""
        return f"{self._name(prop)}{negate} BETWEEN {lo} AND {hi}"

    def in_list(self) -> str:
        r = self.rng
        prop, pool = r.choice(
            (
                ("platform", dataset.PLATFORMS),
                ("dafab:city", dataset.CITIES),
                ("id", self.ids),
                ("dafab:rank", self.values["dafab:rank"]),
                ("dafab:score", self.values["dafab:score"]),
            )
        )
        options = r.sample(pool, r.randint(1, 5 if len(pool) > 10 else 2))
        rendered = ", ".join(_quote(o) if isinstance(o, str) else str(o) for o in options)
        negate = " NOT" if r.random() < 0.3 else ""
        return f"{self._name(prop)}{negate} IN ({rendered})"

    def is_null(self) -> str:
        prop = self.rng.choice(NULLABLE)
        return f"{self._name(prop)} IS{self.rng.choice(('', ' NOT'))} NULL"

    def casei(self) -> str:
        r = self.rng
        city = r.choice(dataset.CITIES)
        variant = r.choice((city.upper(), city.lower(), city.title(), _strip_accents(city)))
        shapes = (
            f"CASEI(dafab:city) = casei({_quote(variant)})",
            f"CASEI(dafab:city) <> casei({_quote(variant)})",
            f"ACCENTI(dafab:city) = accenti({_quote(_strip_accents(city))})",
            f"ACCENTI(dafab:city) = accenti({_quote(variant)})",
            f"CASEI(ACCENTI(dafab:city)) = casei(accenti({_quote(variant)}))",
            f"ACCENTI(CASEI(dafab:city)) = accenti(casei({_quote(variant.upper())}))",
            f"CASEI(dafab:city) LIKE casei({_quote(_escape_like(variant[:3]) + '%')})",
            f"CASEI(platform) = casei({_quote(r.choice(dataset.PLATFORMS).upper())})",
            f"CASEI(dafab:city) IN (casei({_quote(variant)}), casei('MONTREAL'))",
            f"ACCENTI(dafab:city) IN (accenti({_quote(city)}), accenti('Sao Paulo'))",
        )
        return r.choice(shapes)

    # --- arithmetic and property-property --------------------------------------------------

    def arithmetic(self) -> str:
        r = self.rng
        return r.choice(
            (
                f"dafab:rank * {r.randint(2, 5)} > {r.randint(20, 400)}",
                f"dafab:rank / 2 = {r.randint(1, 49)}.5",  # division is not integer division
                f"dafab:rank / 4 < {r.randint(1, 25) + 0.3}",
                "eo:cloud_cover / 2 + 10 < dafab:rank",
                f"dafab:rank - dafab:score >= {r.randint(-20, 100)}",
                f"dafab:rank % {r.randint(3, 9)} = {r.randint(0, 2)}",
                f"dafab:rank div {r.randint(5, 20)} = {r.randint(0, 4)}",
                f"dafab:rank ^ 2 > {r.randint(100, 9000)}",
                f"-dafab:score > {r.randint(-40, 40)}",
                f"(dafab:rank + {r.randint(1, 9)}) * 2 BETWEEN {r.randint(10, 90)} AND 150",
                f"dafab:score * -1 + dafab:rank <= {r.randint(0, 120)}",
                f"eo:cloud_cover - {r.randint(0, 50)} * 2 > dafab:score",
                f"2 + 3 * dafab:rank < {r.randint(20, 300)}",  # precedence
            )
        )

    def property_property(self) -> str:
        return self.rng.choice(
            (
                "dafab:rank > eo:cloud_cover",
                "dafab:score < dafab:rank",
                "eo:cloud_cover <= dafab:score + 50",
                "start_datetime < datetime",
                "end_datetime > datetime",
                "datetime <> start_datetime",
                "platform <> dafab:city",
                "dafab:score = dafab:score",  # NULL = NULL is NULL, not TRUE
                "T_AFTER(datetime, start_datetime)",
                "T_BEFORE(INTERVAL(start_datetime, start_datetime), end_datetime)",
            )
        )

    # --- spatial ------------------------------------------------------------------------

    def spatial(self, op: str | None = None, kind: str | None = None) -> str:
        r = self.rng
        op = op or r.choice(SPATIAL_OPS)
        kind = kind or r.choice(LITERAL_KINDS)
        if op == "S_EQUALS" and r.random() < 0.7:
            literal = self._item_geometry(kind)
        elif r.random() < 0.15 and op in ("S_INTERSECTS", "S_DISJOINT", "S_WITHIN"):
            literal = r.choice(
                (
                    "BBOX(178.5, -20, -178.5, -12)",
                    "BBOX(179.5, -19, 180, -14)",
                    "POLYGON((-180 -20, -179 -20, -179 -12, -180 -12, -180 -20))",
                )
            )
        else:
            literal = self._geometry(kind)
        if r.random() < 0.1:
            return f"{op}({literal}, geometry)"
        return f"{op}(geometry, {literal})"

    def _item_geometry(self, kind: str) -> str:
        """An item's own geometry, written as a ``kind`` literal where one can be."""
        tag = {"BBOX": "POLYGON", "GEOMETRYCOLLECTION": ""}.get(kind, kind)
        candidates = [
            w
            for w in self.wkts
            if (not tag or w.startswith(tag + " ")) and (kind != "BBOX" or w.count("(") == 2)
        ]
        wkt = self.rng.choice(candidates)
        if kind == "BBOX":
            return "BBOX({}, {}, {}, {})".format(*shapely.from_wkt(wkt).bounds)
        return f"GEOMETRYCOLLECTION ({wkt})" if kind == "GEOMETRYCOLLECTION" else wkt

    def _geometry(self, kind: str) -> str:
        """A random ``kind`` literal on the dataset's 0.5° grid, its parts near each other."""
        r = self.rng
        spread = r.choice((1, 2, 4, 8))
        x0, x1 = dataset.MAIN_X
        y0, y1 = dataset.MAIN_Y
        bx, by = (
            x0 + 0.5 * r.randrange(int(2 * (x1 - x0))),
            y0 + 0.5 * r.randrange(int(2 * (y1 - y0))),
        )

        def point() -> tuple[float, float]:
            return (bx + 0.5 * r.randint(-spread, spread), by + 0.5 * r.randint(-spread, spread))

        def box() -> shapely.Polygon:
            x, y = point()
            return shapely.box(x, y, x + 0.5 * r.randint(1, spread), y + 0.5 * r.randint(1, spread))

        def line() -> shapely.LineString:
            return shapely.LineString([point() for _ in range(r.randint(2, 3))])

        geometry: shapely.Geometry
        if kind == "BBOX":
            return "BBOX({}, {}, {}, {})".format(*box().bounds)
        if kind == "POINT":
            geometry = shapely.Point(point())
        elif kind == "LINESTRING":
            geometry = line()
        elif kind == "POLYGON":
            geometry = box()
            xa, ya, xb, yb = geometry.bounds
            if r.random() < 0.4 and min(xb - xa, yb - ya) >= 1.5:
                hole = shapely.box(xa + 0.5, ya + 0.5, xb - 0.5, yb - 0.5)
                geometry = shapely.Polygon(geometry.exterior, [hole.exterior])
        elif kind == "MULTIPOINT":
            geometry = shapely.MultiPoint([point() for _ in range(r.randint(2, 4))])
        elif kind == "MULTILINESTRING":
            geometry = shapely.MultiLineString([line() for _ in range(2)])
        elif kind == "MULTIPOLYGON":
            geometry = shapely.MultiPolygon([box() for _ in range(2)])
            if not geometry.is_valid:  # overlapping parts make an invalid MultiPolygon
                geometry = shapely.MultiPolygon([box()])
        else:
            geometry = shapely.GeometryCollection([shapely.Point(point()), r.choice((box, line))()])
        if not geometry.is_valid:  # a line through one point twice, say: draw again
            return self._geometry(kind)
        return shapely.to_wkt(geometry, trim=True)

    # --- temporal -----------------------------------------------------------------------

    def temporal(self, op: str | None = None) -> str:
        r = self.rng
        op = op or r.choice(INSTANT_OPS + INTERVAL_OPS)
        if op in INSTANT_OPS:
            first = r.choice(("datetime", "datetime", ITEM_INTERVAL))
            second = r.choice(
                (f"TIMESTAMP('{self._timestamp()}')", f"DATE('{self._date()}')", self._interval())
            )
        else:
            first, second = ITEM_INTERVAL, self._interval()
        if r.random() < 0.15:
            first, second = second, first
        return f"{op}({first}, {second})"

    def _timestamp(self) -> str:
        if self.rng.random() < 0.6:
            return self.rng.choice(self.instants)  # exactly an item's time: equality matters
        start = _dt.datetime(2024, 10, 15, tzinfo=_dt.timezone.utc)
        return _ts(start + _dt.timedelta(seconds=self.rng.randrange(180 * 86400)))

    def _date(self) -> str:
        # Day 1 or 28: no item time falls on it (see dataset's SAFE_DAYS).
        r = self.rng
        year, month = r.choice((*dataset.MONTHS, (2024, 10), (2025, 3)))
        return f"{year}-{month:02d}-{r.choice((1, 28)):02d}"

    def _interval(self) -> str:
        r = self.rng
        if r.random() < 0.2:
            ends = sorted((self._date(), self._date()))
        elif r.random() < 0.5:
            ends = sorted((self._timestamp(), self._timestamp()))
        else:
            # Ends placed around one item's interval [s, e]: before s, at s, inside, at e,
            # after e. Every Allen relation to that item comes up this way.
            s, e = r.choice(self.intervals)
            marks = [
                s - _dt.timedelta(days=r.randint(1, 30)),
                s,
                s + (e - s) / 3,
                s + 2 * (e - s) / 3,
                e,
                e + _dt.timedelta(days=r.randint(1, 30)),
            ]
            i, j = sorted(r.sample(range(len(marks)), 2))
            ends = [_ts(marks[i]), _ts(marks[j])]
        if r.random() < 0.2:
            ends[r.randrange(2)] = ".."
        return "INTERVAL({})".format(", ".join(_quote(e) for e in ends))

    # --- arrays -------------------------------------------------------------------------

    def array(self, op: str | None = None) -> str:
        r = self.rng
        op = op or r.choice(ARRAY_OPS)
        prop, pool = r.choice(
            (
                ("dafab:tags", dataset.TAGS),
                ("dafab:tags", dataset.TAGS),
                ("instruments", dataset.INSTRUMENTS),
                ("sar:polarizations", dataset.POLARIZATIONS),
                ("dafab:bands", dataset.BANDS),
            )
        )
        values = r.sample(pool, r.randint(1, 3 if op != "A_CONTAINEDBY" else len(pool) - 1))
        rendered = ", ".join(_quote(v) if isinstance(v, str) else str(v) for v in values)
        return f"{op}({prop}, ({rendered}))"

    # --- boolean combinations -----------------------------------------------------------

    def combined(self, depth: int | None = None) -> str:
        r = self.rng
        if depth is None:
            depth = r.randint(2, 3)
        if depth == 0:
            make: Callable[[], str] = r.choice(
                (
                    self.comparison,
                    self.comparison,
                    self.like,
                    self.between,
                    self.in_list,
                    self.is_null,
                    self.casei,
                    self.arithmetic,
                    self.property_property,
                    self.spatial,
                    self.spatial,
                    self.temporal,
                    self.temporal,
                    self.array,
                )
            )
            return make()
        parts = [
            self.combined(depth - 1 if r.random() < 0.7 else 0) for _ in range(r.randint(2, 3))
        ]
        if r.random() < 0.05:
            parts.append(r.choice(("TRUE", "FALSE")))
        text = f" {r.choice(('AND', 'AND', 'OR'))} ".join(f"({p})" for p in parts)
        return f"NOT ({text})" if r.random() < 0.2 else text

    def _number(self, prop: str) -> str:
        if prop == "dafab:rank":
            return str(self.rng.randint(0, 99))
        if prop == "dafab:score":
            return str(round(self.rng.uniform(-50, 50), 1))
        return str(round(self.rng.uniform(0, 100), 1))

    def _name(self, prop: str) -> str:
        # A property name may be written bare or double-quoted (CQL2 BNF `propertyName`).
        return f'"{prop}"' if self.rng.random() < 0.15 else prop


def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


if __name__ == "__main__":
    # How many of the 300 items each filter selects, as a histogram.
    from collections import Counter

    reference = Reference(dataset.items())
    edges = (0, 1, 4, 31, 151, 300, 301)
    sizes = Counter()
    for f in filters():
        n = len(reference.outcome(f.json).expected)
        lo = max(e for e in edges if e <= n)
        hi = edges[edges.index(lo) + 1] - 1
        sizes[str(lo) if lo == hi else f"{lo}-{hi}"] += 1
    print({k: sizes[k] for k in sorted(sizes, key=lambda k: int(k.split("-")[0]))})
