"""A minimal STAC crawler for tests, as a browser would walk the tree: only links."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit


def crawl(root_url: str, read: Callable[[str], bytes]) -> dict[str, dict[str, Any]]:
    """Every object reachable from ``root_url`` through ``child`` and ``item`` links."""
    seen: dict[str, dict[str, Any]] = {}
    todo = [root_url]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        doc = json.loads(read(url))
        seen[url] = doc
        for link in doc.get("links", []):
            if link["rel"] in ("child", "item"):
                todo.append(join(url, link["href"]))
    return seen


def join(base: str, href: str) -> str:
    """``urljoin`` that also resolves under ``s3://``, which urljoin treats as opaque."""
    if base.startswith("s3://"):
        return "s3://" + urljoin("http://" + base[len("s3://") :], href)[len("http://") :]
    return urljoin(base, href)


def file_reader(url: str) -> bytes:
    """Read a file:// URL the way a web server maps a URL path to a file."""
    with open(unquote(urlsplit(url).path), "rb") as f:
        return f.read()


def link(doc: dict[str, Any], rel: str) -> dict[str, Any]:
    """The one link of ``doc`` with relation ``rel``."""
    found = [ln for ln in doc["links"] if ln["rel"] == rel]
    assert len(found) == 1, (rel, doc["links"])
    return found[0]
