"""A crawler over plain HTTP, as STAC Browser would: every item reachable, awkward ids too."""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import dafab_static
from dafab_static.options import BuildOptions

from .crawl import crawl
from .generate import item, write_ndjson

AWKWARD = ["plain", "with space", "hash#tag", "what?", "100%", "ünïcødé-東京", "a+b"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("http")
    src = write_ndjson(root / "a.ndjson", [item(i, item_id=v) for i, v in enumerate(AWKWARD)])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/cat"
    report = dafab_static.build([str(src)], str(root / "cat"), options=BuildOptions(base_url=base))
    assert report.ok
    try:
        yield base, root / "cat"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def test_every_item_is_reachable_over_http(served: tuple[str, Path]) -> None:
    base, _ = served
    objects = crawl(f"{base}/catalog.json", _get)
    assert sorted(d["id"] for d in objects.values() if d["type"] == "Feature") == sorted(AWKWARD)
    for url, doc in objects.items():
        self_href = next(ln["href"] for ln in doc["links"] if ln["rel"] == "self")
        assert self_href == url  # absolute self links resolve to where the object is served


def test_validate_and_info_by_url(served: tuple[str, Path]) -> None:
    base, _ = served
    report = dafab_static.validate(f"{base}/catalog.json")
    assert report.ok and report.counts["Item"] == len(AWKWARD)
    assert dafab_static.info(base).items == len(AWKWARD)
