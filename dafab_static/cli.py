"""The ``dafab-static`` command: a thin Typer shell over the Python API.

Each command converts strings, calls one library function and prints. A
:class:`~dafab_static.errors.DafabError` becomes one line on stderr and exit code 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from dafab_static import __version__
from dafab_static.errors import DafabError

app = typer.Typer(
    name="dafab-static",
    help="Publish Earth-observation metadata as a static STAC tree plus stac-geoparquet indexes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def _fail(error: DafabError) -> NoReturn:
    # The message is text, never markup: paths and messages hold brackets ("no [[steps]]",
    # a folder "b[/x]") that rich would eat or fail on.
    err.print(
        Text.assemble(("error:", "bold red"), " ", str(error)), highlight=False, soft_wrap=True
    )
    raise typer.Exit(1)


def _say(text: str, *, to: Console = console) -> None:
    """Print a summary or a message as plain text (no markup, no highlighting)."""
    to.print(text, markup=False, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"dafab-static {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - Typer needs Optional on Python 3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """dafab-static: a unified Earth-observation metadata catalog that needs no server."""


_DEVICE = typer.Option(
    "--device", help="Torch device for pipelines: auto (cuda, then mps, then cpu), cpu, cuda..."
)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int | None], None]]:
    if not enabled:
        yield lambda stage, done, total: None
        return
    bars = Progress(
        SpinnerColumn(), TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=True,
    )  # fmt: skip
    tasks: dict[str, Any] = {}
    labels = {"read": "reading", "write": "writing"}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(labels.get(stage, stage), total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


@app.command()
def build(
    sources: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(help="Raster files, STAC JSON/ndjson/parquet, folders, globs or URLs."),
    ] = None,
    out: Annotated[
        str, typer.Option("--out", "-o", help="Destination folder or s3://bucket/prefix.")
    ] = "",
    sample: Annotated[
        bool, typer.Option("--sample", help="Also build from the bundled sample.")
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="Public URL of the destination; makes self links absolute."
        ),
    ] = None,
    when: Annotated[
        str | None,
        typer.Option("--datetime", help="Datetime for rasters that carry none (ISO 8601)."),
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Put every item in this collection.")
    ] = None,
    collections: Annotated[
        list[str] | None,
        typer.Option("--collection-json", help="Collection JSON file to use (repeatable)."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad input.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars, no summary.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary.")
    ] = False,
    max_children: Annotated[
        int, typer.Option("--max-children", help="Most links one catalog may hold.")
    ] = 2000,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip JSON Schema validation.")
    ] = False,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline", help="Recipe (TOML) to run over the scenes, e.g. pipelines/default.toml."
        ),
    ] = None,
    device: Annotated[str | None, _DEVICE] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Processes writing months and reading large ndjson/stac-geoparquet files, "
            "threads reading rasters (0: one per core; 1: all in this process).",
        ),
    ] = 0,
) -> None:
    """Build a static STAC tree and stac-geoparquet indexes, and publish them atomically."""
    import dafab_static
    from dafab_static.options import BuildOptions, parse_datetime

    try:
        if not out:
            raise _option_error("--out is required (a folder or s3://bucket/prefix)")
        if not sources and not sample:
            raise _option_error("give at least one SOURCE, or --sample")
        options = BuildOptions(
            base_url=base_url, datetime=parse_datetime(when) if when else None,
            collection=collection, strict=strict, quiet=quiet, max_children=max_children,
            collections=tuple(collections or ()), validate=not no_validate,
            pipeline=pipeline, device=device, workers=workers,
        )  # fmt: skip
        with _progress(not quiet and not as_json and err.is_terminal) as progress:
            report = dafab_static.build(
                sources or [], out, options=options, sample=sample, progress=progress
            )
    except DafabError as e:
        if as_json:  # a script reading stdout learns the outcome too, not only stderr
            console.print_json(json.dumps({"ok": False, "published": False, "error": str(e)}))
        _fail(e)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    elif not quiet:
        _say(report.summary())
    if not report.ok:
        raise typer.Exit(2)


@app.command()
def validate(
    target: Annotated[
        str, typer.Argument(help="Catalog, collection or item: path, folder or URL.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print problems as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Validate any STAC catalog offline, and check a dafab-static catalog's indexes.

    Checks each object against its STAC version's and extensions' JSON Schemas, offline.

    In a dafab-static catalog, the tree and the indexes must also agree.
    """
    import dafab_static

    try:
        report = dafab_static.validate(target)
    except DafabError as e:
        _fail(e)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        for problem in report.problems:
            if problem.severity == "error" or not quiet:
                _say(str(problem))
        if not quiet:
            _say(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def info(
    target: Annotated[
        str, typer.Argument(help="A dafab-static catalog: folder, s3:// or https:// URL.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Describe a catalog: collections, item counts, extents, index partitions."""
    import dafab_static

    try:
        summary = dafab_static.info(target)
    except DafabError as e:
        _fail(e)
    if as_json:
        console.print_json(json.dumps(summary.to_dict()))
    else:
        _say(summary.text())


@app.command()
def queryables(
    source: Annotated[
        str,
        typer.Argument(
            help="Catalog root (folder, catalog.json, s3:// or https:// URL), a Collection "
            "JSON, or a stac-geoparquet file or folder."
        ),
    ],
    collection: Annotated[
        str | None,
        typer.Option("--collection", help="This collection's queryables, not the catalog's."),
    ] = None,
) -> None:
    """Print the queryables: a JSON Schema of the item fields a CQL2 filter can use."""
    import dafab_static

    try:
        doc = dafab_static.queryables(source, collection=collection)
    except DafabError as e:
        _fail(e)
    # Plain stdout, not rich: its wrapping at the terminal width would break the JSON.
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


@app.command()
def search(
    source: Annotated[
        str,
        typer.Argument(
            help="Catalog root (folder, s3:// or https://), or stac-geoparquet file/folder/glob."
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
            help="STAC API Fields: the default set (id, type, geometry, bbox, links, assets, "
            "datetime) plus these, minus -these; e.g. properties.eo:cloud_cover,-assets",
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="ndjson, geojson, parquet, ids or count.")
    ] = "ndjson",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
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
            raise _option_error(
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
                raise _option_error(f"--near: not a JSON array ({error.msg})") from None
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
        _fail(e)
    finally:
        filecache.FOOTERS = budget
    if verbose:
        seconds = time.perf_counter() - started
        _say(
            f"{written} {'item' if written == 1 else 'items'}, {result.stats.requests} "
            f"requests, {result.stats.bytes:,} bytes read, {seconds:.2f} s",
            to=err,
        )


pipeline_app = typer.Typer(
    help="Run metadata pipelines (torch recipes) without building a catalog.",
    no_args_is_help=True,
)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
def pipeline_run(
    recipe: Annotated[str, typer.Argument(help="Recipe file (TOML), e.g. pipelines/default.toml.")],
    sources: Annotated[
        list[str], typer.Argument(help="Rasters, STAC files, folders, globs or URLs.")
    ],
    out: Annotated[str, typer.Option("--out", "-o", help="New or empty output folder.")] = "",
    device: Annotated[str | None, _DEVICE] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Readers working ahead (0: read inline).")
    ] = None,
    when: Annotated[
        str | None,
        typer.Option("--datetime", help="Datetime for rasters that carry none (ISO 8601)."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first failure.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run a recipe over the scenes of SOURCES; write out/items.ndjson and out/assets/."""
    from dafab_static.options import parse_datetime
    from dafab_static.pipeline import run

    try:
        if not out:
            raise _option_error("--out is required (a new or empty folder)")
        with _progress(not quiet and not as_json and err.is_terminal) as progress:
            report = run(recipe, sources, out, device=device, workers=workers, strict=strict,
                         datetime=parse_datetime(when) if when else None,
                         progress=progress)  # fmt: skip
    except DafabError as e:
        _fail(e)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    elif not quiet:
        _say(report.summary())
    if report.failed or report.skipped:
        raise typer.Exit(2)


@pipeline_app.command("steps")
def pipeline_steps() -> None:
    """List the steps recipes can use: built-in and installed plugins."""
    from dafab_static.pipeline import available_steps

    for name in available_steps():
        typer.echo(name)


def _option_error(message: str) -> DafabError:
    from dafab_static.errors import OptionError

    return OptionError(message)


#: Set when SIGTERM arrived: the KeyboardInterrupt that unwinds the program is its.
_TERMINATED: list[bool] = []


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (what ``timeout``, CI runners and Kubernetes send) unwinds the program as
    Ctrl-C does, so a build removes what it wrote, and stops its workers."""
    del signum, frame
    _TERMINATED.append(True)
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``dafab-static`` script.

    Command-line mistakes (an unknown option, a missing argument, ``--limit abc``) are one
    line and exit code 1, as every other user mistake here; Typer's own boxed message would
    use exit code 2, which ``build`` keeps for "published, but inputs were skipped".
    """
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(standalone_mode=False, prog_name="dafab-static")
    except KeyboardInterrupt:
        _interrupted()
    except typer.TyperException as e:  # Typer's click: UsageError, BadParameter, ...
        message = e.format_message()
        if not message:  # no arguments at all: the help was printed, which was the answer
            sys.exit(0)
        context = getattr(e, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        _say(f"error: {message}{hint}", to=err)
        sys.exit(1)
    if code == 130:  # Typer turns KeyboardInterrupt into exit code 130, silently
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted() -> NoReturn:
    """Say that the run stopped, after it unwound (a build removes what it wrote)."""
    if _TERMINATED:
        err.print("terminated; nothing was published")
        sys.exit(128 + signal.SIGTERM)
    err.print("interrupted; nothing was published")
    sys.exit(130)


if __name__ == "__main__":
    main()
