"""STAC API Item Search over stac-geoparquet indexes, with no server and no database.

``search`` takes the parameters of STAC API Item Search with its Filter, Sort and Fields
extensions, and returns a lazy :class:`SearchResult`. With ``near`` it is an exact
k-nearest-neighbour search by cosine similarity of item embeddings (:mod:`.knn`), after
those filters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from dafab_static import crawl, storage
from dafab_static.errors import QueryError
from dafab_static.options import path_argument
from dafab_static.search.knn import near_request, nearest
from dafab_static.search.params import request
from dafab_static.search.result import SearchResult
from dafab_static.search.sources import resolve

__all__ = ["SearchResult", "search"]


def search(
    source: str | os.PathLike[str],
    *,
    ids: Sequence[str] | str | None = None,
    collections: Sequence[str] | str | None = None,
    bbox: Sequence[float] | str | None = None,
    intersects: Mapping[str, Any] | str | None = None,
    datetime: str | None = None,
    filter: str | Mapping[str, Any] | None = None,
    filter_lang: str | None = None,
    filter_crs: str | None = None,
    sortby: Sequence[str | Mapping[str, str]] | str | None = None,
    limit: int | None = None,
    fields: Sequence[str] | Mapping[str, Sequence[str]] | str | None = None,
    geometry_column: str | None = None,
    lenient: bool = False,
    near: str | Sequence[float] | None = None,
    k: int | None = None,
    model: str | None = None,
) -> SearchResult:
    """Search the items of a static catalog's indexes, or of stac-geoparquet files.

    Args:
        source: a catalog root (folder, ``catalog.json``, ``s3://`` or ``https://``), or
            stac-geoparquet/GeoParquet as a file, folder or glob.
        ids, collections: keep only these item ids / collection ids.
        bbox: 4 or 6 numbers (west may exceed east across the antimeridian).
        intersects: a GeoJSON geometry.
        datetime: an instant or ``start/end`` interval, ``..`` or empty for an open end;
            partial dates cover their period; an item's start/end interval counts when set.
        filter, filter_lang: CQL2 as text or JSON (``cql2-text`` / ``cql2-json``).
        filter_crs: the Filter extension's ``filter-crs``: CRS84 (the default, and the only
            one supported; its URI is ``params.CRS84_URIS[0]``).
        sortby: ``"-eo:cloud_cover,datetime"`` or STAC API ``[{"field", "direction"}]``.
        limit: at most this many items (reading stops early unless sorting).
        fields: the Fields extension, ``"properties.eo:cloud_cover,-assets"`` or
            ``{"include", "exclude"}``: its default set (id, type, geometry, bbox, links,
            assets, properties.datetime) plus ``include`` minus ``exclude``; None for
            whole items.
        geometry_column: for plain GeoParquet whose geometry column is not ``geometry``.
        lenient: unknown properties are null (CQL2 null semantics) instead of an error.
        near: find the items most similar to this: an item id (its embedding is the query;
            ``collections`` narrows where it is looked up, the other filters do not apply to
            it) or a vector. Exact cosine similarity over the items the other parameters
            keep; results come best first, ties by id, each with property ``dafab:score``.
            Items without an embedding are skipped. ``sortby`` cannot be combined with it.
        k: how many neighbours (default 10); ``limit`` caps it further. Needs ``near``.
        model: the embedding model, i.e. the property ``emb:<model>``; by default the only
            one the index has. Needs ``near``.

    Raises:
        QueryError: a bad parameter or filter, named with its position or value; with
            ``near``: an unknown item, an item without embedding, no or several models
            (without ``model``), a vector of the wrong length, ``k`` below 1.
        InputError, StorageError: a source that is not an index or cannot be read.

    >>> result = search("out/", bbox=[5, 45, 11, 48], filter="eo:cloud_cover<20")  # doctest: +SKIP
    >>> [item["id"] for item in result]  # doctest: +SKIP
    >>> similar = search("out/", near="S2A_0001", k=5, datetime="2024")  # doctest: +SKIP
    >>> [(item["id"], item["properties"]["dafab:score"]) for item in similar]  # doctest: +SKIP
    """
    source = path_argument(source, "source")
    parsed = request(
        ids=ids,
        collections=collections,
        bbox=bbox,
        intersects=intersects,
        datetime=datetime,
        filter=filter,
        filter_lang=filter_lang,
        filter_crs=filter_crs,
        sortby=sortby,
        limit=limit,
        fields=fields,
    )
    if near is None and (k is not None or model is not None):
        raise QueryError("k and model need near (an item id or a vector)")
    wanted = near_request(near, k=k, model=model) if near is not None else None
    # The catalog's documents read to find the index files count as requests too.
    with crawl.counting(storage.IOStats()) as found:
        files = resolve(source)
    if wanted is None:
        result = SearchResult(files, parsed, geometry_column=geometry_column, lenient=lenient)
    else:
        result = nearest(files, parsed, wanted, geometry_column=geometry_column, lenient=lenient)
    result.stats.add_many(found.requests, found.bytes)
    return result
