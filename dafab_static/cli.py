"""The ``dafab-static`` command: a thin Typer shell over the Python API.

Each command converts strings, calls one library function and prints. A
:class:`~dafab_static.errors.DafabError` becomes one line on stderr and exit code 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import sys
from typing import Annotated, NoReturn, Optional

import typer

from dafab_static import __version__, _stop
from dafab_static._cli_console import (
    DEVICE,
    PUBLISHING,
    console,
    err,
    expand_home,
    fail,
    progress_bars,
    say,
)
from dafab_static._cli_pipeline import pipeline_app
from dafab_static._cli_search import search
from dafab_static.errors import DafabError, OptionError

app = typer.Typer(
    name="dafab-static",
    help="Publish Earth-observation metadata as a static STAC tree plus stac-geoparquet indexes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


@app.command()
def build(
    sources: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(
            metavar="SOURCE",
            help="Raster files, STAC JSON/ndjson/parquet, folders, globs or URLs.",
        ),
    ] = None,
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", help="Destination folder or s3://bucket/prefix.", callback=expand_home
        ),
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
        typer.Option(
            "--collection-json",
            help="Collection JSON file to use (repeatable).",
            callback=expand_home,
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad input.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars, no summary.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary.")
    ] = False,
    max_children: Annotated[
        int,
        typer.Option(
            "--max-children",
            help="Most items a month's catalog may list; more split it by day, hour, then "
            "into buckets (years, collections and platforms are not split).",
        ),
    ] = 2000,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip JSON Schema validation.")
    ] = False,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            help="Recipe to run over the scenes: a TOML file, or a shipped recipe's name "
            "(default, quick...: see pipeline recipes).",
            callback=expand_home,
        ),
    ] = None,
    device: Annotated[str | None, DEVICE] = None,
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

    PUBLISHING.append(True)
    try:
        if not out:
            raise OptionError("--out is required (a folder or s3://bucket/prefix)")
        if not sources and not sample:
            raise OptionError("give at least one SOURCE, or --sample")
        options = BuildOptions(
            base_url=base_url, datetime=parse_datetime(when) if when else None,
            collection=collection, strict=strict, quiet=quiet, max_children=max_children,
            collections=tuple(collections or ()), validate=not no_validate,
            pipeline=pipeline, device=device, workers=workers,
        )  # fmt: skip
        with progress_bars(not quiet and not as_json and err.is_terminal) as progress:
            report = dafab_static.build(
                sources or [], out, options=options, sample=sample, progress=progress
            )
    except DafabError as e:
        fail(e, as_json={"published": False} if as_json else None)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    elif not quiet:
        say(report.summary())
    if not report.ok:
        raise typer.Exit(2)


@app.command()
def validate(
    target: Annotated[
        str,
        typer.Argument(
            metavar="PATH_OR_URL", help="Catalog, collection or item: path, folder or URL."
        ),
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
        fail(e, as_json={"root": str(target), "problems": []} if as_json else None)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        for problem in report.problems:
            if problem.severity == "error" or not quiet:
                say(str(problem))
        if not quiet:
            say(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def info(
    target: Annotated[
        str,
        typer.Argument(
            metavar="PATH_OR_URL",
            help="Any STAC catalog (partitions and counts for a dafab-static one): folder, "
            "s3:// or https:// URL.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Describe a catalog: collections, item counts, extents, index partitions."""
    import dafab_static

    try:
        summary = dafab_static.info(target)
    except DafabError as e:
        fail(e, as_json={"root": str(target)} if as_json else None)
    if as_json:
        console.print_json(json.dumps(summary.to_dict()))
    else:
        say(summary.text())


@app.command()
def queryables(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="Catalog root (folder, catalog.json, s3:// or https:// URL), a Collection "
            "JSON, or a stac-geoparquet file or folder.",
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
        fail(e)
    # Plain stdout, not rich: its wrapping at the terminal width would break the JSON.
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


# In the order --help lists them, after the catalog commands above.
app.command()(search)
app.add_typer(pipeline_app, name="pipeline")


def _stop_here(signum: int, frame: object) -> None:
    """SIGTERM (what ``timeout``, CI runners and Kubernetes send) and Ctrl-C unwind the
    program, so a build removes what it wrote and stops its workers; the request is also
    kept (:mod:`dafab_static._stop`), so nothing is published if the exception is lost."""
    del frame
    _stop.interrupt(signum)


def main() -> None:
    """Entry point of the ``dafab-static`` script.

    Command-line mistakes (an unknown option, a missing argument, ``--limit abc``) are one
    line and exit code 1, as every other user mistake here; Typer's own boxed message would
    use exit code 2, which ``build`` keeps for "published, but inputs were skipped".
    """
    try:
        _run()
    except SystemExit as e:
        _leave(e.code)
    _leave(0)


def _leave(code: object) -> NoReturn:
    """End the process with ``code`` once the work is done and said, skipping the
    interpreter's native teardown.

    Arrow's thread pools can still be winding down when CPython finalizes, and then
    libstdc++ aborts ("terminate called without an active exception", exit 134): seen on
    3 to 7 in 20 runs of ``validate -q`` on a loaded machine, after a complete, correct
    run (apache/arrow#34314). Python's own exit handlers still run, and the output is
    flushed; only the C++ static destructors are skipped, which hold nothing of ours.
    """
    if isinstance(code, str):  # sys.exit("message"): Python prints it and exits with 1
        print(code, file=sys.stderr)
        code = 1
    status = code if isinstance(code, int) else 0
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`)
            stream.flush()
    os._exit(status)


def _run() -> None:
    signal.signal(signal.SIGTERM, _stop_here)
    signal.signal(signal.SIGINT, _stop_here)
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
        if "--json" in sys.argv[2:]:  # scripts that read stdout get their answer too
            published = {"published": False} if sys.argv[1:2] == ["build"] else {}
            console.print_json(json.dumps({**published, "ok": False, "error": message}))
        say(f"error: {message}{hint}", to=err)
        sys.exit(1)
    except Exception:
        # The interrupt can surface as another error: one raised inside an import leaves
        # the module half-made, and the next use of it fails. The stop was asked for.
        if _stop.requested():
            _interrupted()
        raise
    if code == 130:  # Typer turns KeyboardInterrupt into exit code 130, silently
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted() -> NoReturn:
    """Say that the run stopped, after it unwound (a build removes what it wrote)."""
    outcome = "; nothing was published" if PUBLISHING else ""
    if _stop.requested() == signal.SIGTERM:
        err.print(f"terminated{outcome}")
        sys.exit(128 + signal.SIGTERM)
    err.print(f"interrupted{outcome}")
    sys.exit(130)


if __name__ == "__main__":
    main()
