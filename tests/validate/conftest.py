"""Fixtures for validation tests: spec examples, real hub items, a small catalog on disk."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Item = dict[str, Any]


@pytest.fixture(scope="session")
def spec_examples(shared_data: Path) -> Path:
    """``stac-items/stac-spec-examples``: the STAC spec's examples for v1.0.0 and v1.1.0."""
    path = shared_data / "stac-items" / "stac-spec-examples"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def hub_item(item: Item) -> Item:
    """An item read back from stac-geoparquet, as the hub published it.

    Arrow structs give every row every field of the union schema, so absent fields come
    back as None (``links[].title``, ``proj:centroid``...), which the schemas reject. Only
    ``properties.datetime`` may be null on purpose.
    """
    datetime = item["properties"].get("datetime", 0)
    cleaned: Item = _drop_nulls(item)
    if datetime is None:
        cleaned["properties"]["datetime"] = None
    return cleaned


@pytest.fixture(scope="session")
def parquet_items(shared_data: Path) -> Callable[[str], list[Item]]:
    """Items of one ``stac-items/*.parquet`` file, with Arrow's filler nulls dropped."""
    pq = pytest.importorskip("pyarrow.parquet")
    arrow = pytest.importorskip("stac_geoparquet.arrow")
    cache: dict[str, list[Item]] = {}

    def load(name: str) -> list[Item]:
        if name not in cache:
            table = pq.read_table(shared_data / "stac-items" / name)
            cache[name] = [hub_item(i) for i in arrow.stac_table_to_items(table)]
        return copy.deepcopy(cache[name])

    return load


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every outbound connection and DNS look-up fail; the list records attempts."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))


@pytest.fixture
def small_catalog(spec_examples: Path, tmp_path: Path) -> Iterator[Path]:
    """A valid 1.1.0 tree: catalog.json -> c1/collection.json -> c1/a/a.json, c1/b/b.json."""
    v11 = spec_examples / "v1.1.0"
    catalog = json.loads((v11 / "catalog.json").read_text())
    catalog["links"] = [
        {"rel": "root", "href": "./catalog.json"},
        {"rel": "child", "href": "./c1/collection.json"},
    ]
    collection = json.loads((v11 / "collection.json").read_text())
    collection["links"] = [
        {"rel": "root", "href": "../catalog.json"},
        {"rel": "parent", "href": "../catalog.json"},
        {"rel": "item", "href": "./a/a.json"},
        {"rel": "item", "href": "./b/b.json"},
    ]
    write_json(tmp_path / "catalog.json", catalog)
    write_json(tmp_path / "c1" / "collection.json", collection)
    core = json.loads((v11 / "core-item.json").read_text())
    for name in ("a", "b"):
        item = copy.deepcopy(core)
        item["id"] = name
        item["collection"] = collection["id"]
        item["links"] = [
            {"rel": "root", "href": "../../catalog.json"},
            {"rel": "parent", "href": "../collection.json"},
            {"rel": "collection", "href": "../collection.json"},
        ]
        write_json(tmp_path / "c1" / name / f"{name}.json", item)
    yield tmp_path
