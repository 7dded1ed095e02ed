"""Queryables of a catalog, a collection or a stac-geoparquet index, wherever it lives."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
import pyarrow as pa

from dafab_static import arrow_schemas
from dafab_static.crawl import collections as _crawl_collections
from dafab_static.crawl import load as _load
from dafab_static.crawl import resolve as _resolve
from dafab_static.errors import DafabError, InputError, StorageError
from dafab_static.options import path_argument
from dafab_static.queryables._document import REL, merge_queryables, queryables_for_schema
from dafab_static.storage import arrow_filesystem, read_url


def queryables(source: str | os.PathLike[str], *, collection: str | None = None) -> dict[str, Any]:
    """The queryables of a catalog, one of its collections, or a stac-geoparquet index.

    Args:
        source: A catalog root (folder, ``catalog.json``, ``s3://`` or ``http(s)://`` URL), a
            Collection JSON, or a stac-geoparquet file or folder (local or ``s3://``).
        collection: The id of one collection; the whole catalog's when None.

    The documents a catalog links with rel :data:`REL` are returned as they are; without
    such a link they are computed from each Collection's ``collection-mirror`` index.

    Raises:
        InputError: ``source`` is missing or holds no catalog, no collection ``collection``,
            or no stac-geoparquet index to compute from.
        StorageError: ``source`` or a document it links cannot be read.

    Example:
        >>> queryables("catalog/", collection="sentinel-2-l2a")["title"]  # doctest: +SKIP
        'Queryables of sentinel-2-l2a'
    """
    source = path_argument(source, "source")
    if urlsplit(source).path.endswith(".parquet"):
        return _from_parquet([source], source, collection)
    root = source if source.endswith(".json") else source.rstrip("/") + "/catalog.json"
    try:
        doc = _load(root)
    except StorageError:
        files = [] if source.endswith(".json") else _parquet_files(source.rstrip("/"))
        if files:
            return _from_parquet(files, source, collection)
        if "://" not in source and not os.path.exists(source):
            raise InputError(f"{source}: no such file or folder") from None
        raise
    if doc.get("type") == "Collection":
        if collection not in (None, doc.get("id")):
            raise InputError(f"{source}: is collection {doc.get('id')!r}, not {collection!r}")
        return _one_collection(root, doc)
    if doc.get("type") != "Catalog":
        raise InputError(f"{source}: not a STAC Catalog or Collection, nor stac-geoparquet")
    if collection is not None:
        return _find_collection(source, root, doc, collection)
    linked = _linked(root, doc)
    if linked is not None:
        return linked
    found = [_collection_queryables(url, child) for url, child in _crawl_collections(root, doc)]
    parts = [q for q in found if q is not None]
    if not parts:
        raise InputError(f"{source}: no queryables link and no collection-mirror index")
    return merge_queryables(parts, title=f"Queryables of {doc.get('title') or doc.get('id')}")


def _find_collection(
    source: str, root: str, doc: Mapping[str, Any], collection: str
) -> dict[str, Any]:
    """The queryables of the collection ``collection`` below the catalog ``doc``."""
    ids = []
    for url, child in _crawl_collections(root, dict(doc)):
        if child.get("id") == collection:
            return _one_collection(url, child)
        ids.append(str(child.get("id")))
    known = ", ".join(sorted(ids)) or "none"
    raise InputError(f"{source}: no collection {collection!r} (collections: {known})")


def _linked(url: str, doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The queryables document ``doc`` links, if it links one."""
    for link in doc.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == REL and link.get("href"):
            return _load(_resolve(url, dict(doc), str(link["href"])))
    return None


def _one_collection(url: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    found = _collection_queryables(url, doc)
    if found is None:
        raise InputError(f"{url}: no queryables link and no collection-mirror asset")
    return found


def _collection_queryables(url: str, doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Collection's linked queryables, else computed from its ``collection-mirror``."""
    linked = _linked(url, doc)
    if linked is not None:
        return linked
    files = _mirror_files(url, doc)
    return None if files is None else _from_parquet(files, url, None, collection_doc=doc)


def _mirror_files(url: str, doc: Mapping[str, Any]) -> list[str] | None:
    """The index files of a Collection (search.sources finds them the same way)."""
    from dafab_static.search.sources import mirror_files

    files = [f.url for f in mirror_files(url, dict(doc))]
    if not files:
        return None
    # Over HTTP a file is read whole; dafab-static gives every partition one schema.
    return files[:1] if files[0].startswith(("http://", "https://")) else files


def _parquet_files(url: str) -> list[str]:
    """The ``.parquet`` files below a local or ``s3://`` folder (search lists them the same
    way); empty when there are none, or for http(s), which cannot be listed."""
    from dafab_static.search.sources import parquet_files

    if url.startswith(("http://", "https://")):
        return []
    try:
        return [f.url for f in parquet_files(url)]
    except DafabError:
        return []


def _from_parquet(
    files: list[str],
    source: str,
    collection: str | None,
    *,
    collection_doc: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Queryables of stac-geoparquet ``files``: their unified schema, described by the
    collection embedded in their metadata (or ``collection_doc``)."""
    schemas: list[pa.Schema] = []
    extensions: set[str] = set()
    embedded: dict[str, Any] = {}
    for url in files:
        schema, found = _read_parquet(url)
        schemas.append(schema)
        extensions |= found
        embedded.update(_embedded_collections(schema))
    if collection_doc is None:
        if collection is not None and embedded and collection not in embedded:
            known = ", ".join(sorted(embedded))
            raise InputError(f"{source}: no collection {collection!r} (collections: {known})")
        if collection is not None:
            collection_doc = embedded.get(collection) or {"id": collection}
        elif len(embedded) == 1:
            collection_doc = next(iter(embedded.values()))
    try:
        schema = arrow_schemas.unify(schemas)
    except (pa.ArrowException, arrow_schemas.SchemaConflict) as e:
        raise InputError(f"{source}: its Parquet files have incompatible schemas ({e})") from None
    name = (collection_doc or {}).get("title") or (collection_doc or {}).get("id") or source
    return queryables_for_schema(
        schema, collection=collection_doc, extensions=sorted(extensions),
        title=f"Queryables of {name}",
    )  # fmt: skip


def _read_parquet(url: str) -> tuple[pa.Schema, set[str]]:
    """Schema and distinct ``stac_extensions`` of one file: the footer plus that one column,
    a row group at a time."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        if url.startswith(("http://", "https://")):
            source: Any = io.BytesIO(read_url(url))
        else:
            fs, path = arrow_filesystem(url)
            source = fs.open_input_file(path)
        with source:
            file = pq.ParquetFile(source)
            schema = file.schema_arrow
            found: set[str] = set()
            field = schema.field("stac_extensions") if "stac_extensions" in schema.names else None
            if field is not None and pa.types.is_list(field.type):
                for i in range(file.num_row_groups):
                    column = file.read_row_group(i, columns=["stac_extensions"]).column(0)
                    found.update(v for v in pc.unique(pc.list_flatten(column)).to_pylist() if v)
    except FileNotFoundError:
        raise StorageError(f"{url}: no such file") from None
    except pa.ArrowInvalid as e:
        raise InputError(f"{url}: not a Parquet file ({e})") from None
    except OSError as e:
        raise StorageError(f"{url}: cannot read ({e})") from None
    return schema, found


def _embedded_collections(schema: pa.Schema) -> dict[str, Any]:
    """Collections a stac-geoparquet file embeds (1.1.0 ``collections``, 1.0.0 ``collection``)."""
    raw = (schema.metadata or {}).get(b"stac-geoparquet")
    try:
        meta = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    found = meta.get("collections") if isinstance(meta, dict) else None
    if isinstance(found, dict):
        return {k: v for k, v in found.items() if isinstance(v, dict)}
    single = meta.get("collection") if isinstance(meta, dict) else None
    return {single["id"]: single} if isinstance(single, dict) and "id" in single else {}
