"""``dafab-static search``: STAC API Item Search parameters and CQL2 over the indexes."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dafab_static._cli_console import err, expand_home, fail, say
from dafab_static.errors import DafabError, OptionError


def search(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="Catalog root (folder, s3:// or https://), or stac-geoparquet file/folder/glob.",
        ),
    ],
    ids: Annotated[str | None, typer.Option("--ids", help="Comma-separated item ids.")] = None,
    collections: Annotated[
        str | None, typer.Option("--collections", help="Comma-separated collection ids.")
    ] = None,
    bbox: Annotated[
        str | None, typer.Option("--bbox", help="west,south,east,north (or 6 numbers).")
    ] = None,
    intersects: Annotated[
        str | None, typer.Option("--intersects", help="A GeoJSON geometry, or a file holding one.")
    ] = None,
    when: Annotated[
        str | None,
        typer.Option("--datetime", help="Instant or interval: 2024-07, 2024-01-01/.., ../2020."),
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", help="CQL2 text or JSON, or @FILE to read it from a file."),
    ] = None,
    filter_lang: Annotated[
        str | None, typer.Option("--filter-lang", help="cql2-text or cql2-json.")
    ] = None,
    filter_crs: Annotated[
        str | None,
        typer.Option("--filter-crs", help="CRS of the filter's geometries: CRS84 only."),
    ] = None,
    sortby: Annotated[
        str | None, typer.Option("--sortby", help="e.g. -eo:cloud_cover,+datetime")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many items.")] = None,
    fields: Annotated[
        str | None,
        typer.Option(
            "--fields",
            help="STAC API Fields: the default set (id, type, stac_version, collection, "
            "geometry, bbox, links, assets, datetime) plus these, minus -these; e.g. "
            "properties.eo:cloud_cover,-assets",
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="ndjson, geojson, parquet, ids or count.")
    ] = "ndjson",
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write here instead of stdout.", callback=expand_home),
    ] = None,
    geometry_column: Annotated[
        str | None,
        typer.Option("--geometry-column", help="Geometry column of plain GeoParquet."),
    ] = None,
    lenient: Annotated[
        bool, typer.Option("--lenient", help="Unknown properties are null, not an error.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Report items, requests, bytes and time.")
    ] = False,
    near: Annotated[
        str | None,
        typer.Option(
            "--near",
            help="Items most similar to this: an item id, a JSON array of numbers, or "
            "@FILE holding one (exact cosine similarity of embeddings, after the filters).",
        ),
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", help="How many neighbours with --near (default 10).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Embedding model for --near: the emb:MODEL property."),
    ] = None,
) -> None:
    """Search items with STAC API Item Search parameters and CQL2, with no server.

    With --near, the k items most similar by embedding, best first, with their dafab:score.
    """
    import os
    import time

    import dafab_static
    from dafab_static.search import files as filecache
    from dafab_static.search import output as formats

    started = time.perf_counter()
    budget = filecache.FOOTERS
    if not os.environ.get("DAFAB_FOOTER_CACHE_MB", "").strip():  # unset or empty
        # One search, then the process ends: footers kept for a next search would only
        # raise its peak memory, by up to the whole budget.
        filecache.FOOTERS = filecache.FooterBudget(limit=0)
    try:
        if output_format not in formats.FORMATS:
            raise OptionError(
                f"--format must be one of {', '.join(formats.FORMATS)}, not {output_format!r}"
            )
        query: str | list[float] | None = near
        # A vector is a JSON array, given or in @FILE; anything else is an item id, even one
        # that happens to name a file.
        from_file = near is not None and near.startswith("@")
        text = formats.read_argument(near, "--near") if from_file else near
        if text is not None and (from_file or text.lstrip().startswith("[")):
            try:
                query = json.loads(text)
            except json.JSONDecodeError as error:
                raise OptionError(f"--near: not a JSON array ({error.msg})") from None
        geometry = formats.read_argument(intersects, "--intersects", json_only=True)
        result = dafab_static.search(
            source, ids=ids, collections=collections, bbox=bbox, intersects=geometry, datetime=when,
            filter=formats.read_argument(filter_, "--filter"), filter_lang=filter_lang,
            filter_crs=filter_crs,
            sortby=sortby, limit=limit, fields=fields, geometry_column=geometry_column,
            lenient=lenient, near=query, k=k, model=model,
        )  # fmt: skip
        written = formats.write(result, output_format, output)
    except DafabError as e:
        fail(e)
    finally:
        filecache.FOOTERS = budget
    if verbose:
        seconds = time.perf_counter() - started
        say(
            f"{written} {'item' if written == 1 else 'items'}, {result.stats.requests} "
            f"requests, {result.stats.bytes:,} bytes read, {seconds:.2f} s",
            to=err,
        )
