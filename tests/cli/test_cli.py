"""The CLI is a thin shell: help, version, and each command on a real catalog."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import dafab_static
from tests.builds.generate import item, write_ndjson
from tests.cli.runner import cli


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("cli") / "cat"
    run = cli("build", "--sample", "--out", str(dest), "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["published"] is True and summary["items"] == 12
    assert summary["collections"] == {"landsat-c2-l2": 4, "sentinel-2-l2a": 7,
                                      "sentinel-2-l2a-ndvi": 1}  # fmt: skip
    return dest


def test_version() -> None:
    run = cli("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"dafab-static {dafab_static.__version__}"


@pytest.mark.parametrize("command", ["build", "validate", "info"])
def test_every_command_has_help(command: str) -> None:
    run = cli(command, "--help")
    assert run.returncode == 0
    assert "Usage:" in run.stdout and command in run.stdout


def test_build_prints_a_human_summary(tmp_path: Path) -> None:
    run = cli("build", "--sample", "--out", str(tmp_path / "c"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"published {tmp_path / 'c'}: 12 items in 3 collections")
    assert "sentinel-2-l2a: 7 items" in run.stdout


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    run = cli("build", "--sample", "--out", str(tmp_path / "c"), "--quiet")
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_validate_and_info(catalog: Path) -> None:
    run = cli("validate", str(catalog))
    assert run.returncode == 0
    assert run.stdout.strip().startswith(f"valid: {catalog / 'catalog.json'}: 29 objects")
    info = cli("info", str(catalog), "--json")
    assert info.returncode == 0
    doc = json.loads(info.stdout)
    assert doc["items"] == 12
    assert [c["id"] for c in doc["collections"]] == [
        "landsat-c2-l2", "sentinel-2-l2a", "sentinel-2-l2a-ndvi"]  # fmt: skip
    text = cli("info", str(catalog)).stdout.splitlines()
    assert text[2] == "  12 items in 3 collections"
    assert text[-1].startswith("  - sentinel-2-l2a-ndvi: 1 item, 1 index partition (0.03 MB), ")


def test_validate_reports_a_broken_item_with_file_path_and_rule(
    catalog: Path, tmp_path: Path
) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(catalog, broken)
    item = next((broken / "sensors").rglob("LC09_*.json"))
    doc = json.loads(item.read_text())
    del doc["properties"]["datetime"]
    item.write_text(json.dumps(doc))
    run = cli("validate", str(broken))
    assert run.returncode == 1
    line = next(ln for ln in run.stdout.splitlines() if "$.properties.datetime" in ln)
    assert line.startswith(str(item))
    assert "required" in line
    assert "Traceback" not in run.stderr


def test_workers_option(tmp_path: Path) -> None:
    run = cli("build", "--sample", "--out", str(tmp_path / "c"), "--workers", "1", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["items"] == 12
    bad = cli("build", "--sample", "--out", str(tmp_path / "d"), "--workers", "-2")
    assert bad.returncode == 1
    assert bad.stderr == "error: --workers -2: must be 0 (one per core) or more\n"
    assert not (tmp_path / "d").exists()
    # With --json, stdout says it too, for scripts that read only stdout.
    bad = cli("build", "--sample", "--out", str(tmp_path / "d"), "--workers", "-2", "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout) == {
        "ok": False, "published": False,
        "error": "--workers -2: must be 0 (one per core) or more",
    }  # fmt: skip


def test_errors_print_brackets_as_written(tmp_path: Path) -> None:
    """Messages are text, not rich markup: a path like ``b[/x]`` (a closing tag to rich)
    or a recipe's ``[[steps]]`` come out as they are, in one line, with no traceback."""
    folder = tmp_path / "b[/x]"  # folder "x]" in folder "b["
    folder.mkdir(parents=True)
    (folder / "bad.json").write_text("{}")
    run = cli("build", str(folder), "--out", str(tmp_path / "c"))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1] == (
        f"error: no STAC items found in {folder}; 1 input skipped: "
        f"{folder / 'bad.json'}: not STAC: no 'type' field"
    )
    recipe = tmp_path / "r[red].toml"
    recipe.write_text("")
    run = cli("pipeline", "run", str(recipe), str(folder), "--out", str(tmp_path / "o"))
    assert run.stderr == f"error: {recipe}: no [[steps]]; a recipe needs at least one step\n"


def test_missing_target_is_one_line(tmp_path: Path) -> None:
    for command in ("validate", "info"):
        run = cli(command, str(tmp_path / "nothing"))
        assert run.returncode == 1
        assert run.stderr.startswith("error: ")
        assert run.stderr.strip().count("\n") == 0
    run = cli("search", str(tmp_path / "nothing"))
    catalog = tmp_path / "nothing" / "catalog.json"
    assert run.stderr == f"error: cannot read the catalog: {catalog}: no such file\n"
    items = tmp_path / "items.ndjson"
    items.write_text("{}\n")
    run = cli("info", str(items))
    assert run.stderr == f"error: {items}: not a catalog; give its folder or its catalog.json\n"


def test_info_on_a_catalog_it_did_not_build(tmp_path: Path) -> None:
    """A static catalog from elsewhere has no manifests: its items are not counted (info
    never crawls items), which is said, not shown as 0; an open interval end shows as '..'."""
    import pystac

    catalog = pystac.Catalog("foreign", "Made by pystac")
    extent = pystac.Extent(
        pystac.SpatialExtent([[0.0, 0.0, 1.0, 1.0]]),
        pystac.TemporalExtent([[dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), None]]),
    )
    catalog.add_child(pystac.Collection("c1", "One", extent))
    catalog.normalize_and_save(str(tmp_path / "f"), pystac.CatalogType.SELF_CONTAINED)
    summary = dafab_static.info(str(tmp_path / "f"))
    assert summary.items is None and summary.collections[0].items is None
    run = cli("info", str(tmp_path / "f"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1:] == [
        "  STAC 1.1.0; no dafab-static release marker",
        "  items not counted in 1 collection",
        "  - c1: no partitions manifest, 2020-01-01T00:00:00Z/.., bbox [0.0, 0.0, 1.0, 1.0]",
    ]


def test_info_does_not_count_items_linked_outside_collections(tmp_path: Path) -> None:
    """A catalog that links its items itself, with no Collection: info said 0 items."""
    import pystac

    catalog = pystac.Catalog("loose", "Items without a collection")
    when = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    catalog.add_item(pystac.Item("i1", {"type": "Point", "coordinates": [0, 0]},
                                 [0, 0, 0, 0], when, {}))  # fmt: skip
    catalog.normalize_and_save(str(tmp_path / "f"), pystac.CatalogType.SELF_CONTAINED)
    summary = dafab_static.info(str(tmp_path / "f"))
    assert summary.items is None and summary.to_dict()["items"] is None
    assert "items not counted" in summary.text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--limit", "abc"], "error: Invalid value for '--limit': "),
        (["build", "--nope"], "error: No such option: --nope"),
        (["search"], "error: Missing argument 'SOURCE'."),
        (["nocommand"], "error: No such command 'nocommand'."),
    ],
)
def test_command_line_mistakes_are_one_line_and_exit_1(args: list[str], message: str) -> None:
    """Exit code 2 means 'published, but inputs were skipped' for build: a mistyped option
    is 1, in one line naming it, like every other user mistake."""
    run = cli(*args)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith(message) and run.stderr.count("\n") == 1
    assert run.stderr.rstrip().endswith("--help)")


def test_no_arguments_prints_the_help() -> None:
    run = cli()
    assert run.returncode == 0 and "Usage: dafab-static" in run.stdout


def test_pipeline_run_json_says_ok_and_errors_on_stdout(tmp_path: Path) -> None:
    """``pipeline run --json`` answers on stdout whether the run worked, as ``build --json``."""
    recipe = tmp_path / "empty.toml"
    recipe.write_text("")
    run = cli("pipeline", "run", str(recipe), str(tmp_path), "--out", str(tmp_path / "o"), "--json")
    assert run.returncode == 1
    assert json.loads(run.stdout) == {
        "ok": False, "error": f"{recipe}: no [[steps]]; a recipe needs at least one step",
    }  # fmt: skip
    assert run.stderr == f"error: {recipe}: no [[steps]]; a recipe needs at least one step\n"
    recipe.write_text('[[steps]]\nname = "indices"\n')
    bad = tmp_path / "not-a-raster.tif"
    bad.write_text("no")
    run = cli("pipeline", "run", str(recipe), str(bad), "--out", str(tmp_path / "o"), "--json")
    # Nothing found: the one line says why, since no summary follows it.
    reason = (
        f"{bad}: cannot read raster: '{bad}' not recognized as being in a supported file format."
    )
    assert run.returncode == 1 and json.loads(run.stdout) == {
        "ok": False, "error": f"no STAC items found in {bad}; 1 input skipped: {reason}",
    }  # fmt: skip
    # Items passed through, one input skipped: the report itself says it is not ok.
    items = write_ndjson(tmp_path / "items.ndjson", [item(1, month=5)])
    old_umask = os.umask(0o022)
    try:
        run = cli("pipeline", "run", str(recipe), str(bad), str(items), "--out",
                  str(tmp_path / "p"), "--json")  # fmt: skip
    finally:
        os.umask(old_umask)
    assert run.returncode == 2, run.stderr
    assert (tmp_path / "p").stat().st_mode & 0o777 == 0o755  # not tempfile's private 0700
    doc = json.loads(run.stdout)
    assert (doc["ok"], doc["skipped"], doc["failed"]) == (False, [reason], []), doc


def test_pipeline_recipes_lists_the_shipped_recipes() -> None:
    run = cli("pipeline", "recipes")
    assert run.returncode == 0, run.stderr
    names = [line.split("\t")[0] for line in run.stdout.splitlines()]
    assert names == ["default", "google-satellite-embedding", "quick", "resnet18-sentinel2"]
    assert all(Path(line.split("\t")[1]).is_file() for line in run.stdout.splitlines())


def test_a_stopped_command_that_publishes_nothing_does_not_say_so() -> None:
    """SIGTERM ends any command with 143; only build and pipeline run add "nothing was
    published". Here info waits on a server that accepted the connection and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/catalog.json"
        command = [sys.executable, "-m", "dafab_static.cli", "info", url]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        server.settimeout(60)
        connection, _ = server.accept()  # the request is in flight: stop it there
        with connection:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stderr) == (143, "terminated\n")


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "http://[::1"],
        ["info", "http://[::1"],
        ["search", "http://[::1"],
        ["queryables", "http://[::1"],
        ["build", "http://[::1", "--out", "never-written"],
        ["build", "--sample", "--out", "s3://[::1"],
    ],
)
def test_a_malformed_url_is_one_line_naming_it(args: list[str]) -> None:
    run = cli(*args)  # a ValueError traceback from urlsplit before
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and "not a valid URL (Invalid IPv6 URL)" in run.stderr
    assert not os.path.exists("never-written")


@pytest.mark.parametrize("endpoint", ["notaurl", "http://127.0.0.1:9000 ", "ftp://host"])
def test_a_malformed_s3_endpoint_is_one_line_naming_the_variable(
    tmp_path: Path, endpoint: str
) -> None:
    """obstore panics on such an endpoint, and a Rust panic is no Exception: it went past
    every handler as a traceback, with nothing on stdout for --json."""
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x"}  # fmt: skip
    env.pop("AWS_ENDPOINT_URL_S3", None)
    run = subprocess.run(
        [sys.executable, "-m", "dafab_static.cli", "build", "--sample", "--out", "s3://b/p",
         "--json"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"AWS_ENDPOINT_URL={endpoint!r}" in run.stderr
    assert json.loads(run.stdout)["published"] is False


@pytest.mark.parametrize("command", ["validate", "info"])
def test_json_on_stdout_when_the_command_fails(tmp_path: Path, command: str) -> None:
    """A script that reads stdout gets JSON saying what failed (it got nothing)."""
    missing = str(tmp_path / "nowhere")
    run = cli(command, missing, "--json")
    assert run.returncode == 1 and run.stderr.startswith("error: ")
    answer = json.loads(run.stdout)
    assert answer["ok"] is False and answer["root"] == missing
    assert answer["error"] == run.stderr.removeprefix("error: ").strip()


@pytest.mark.parametrize(
    "args", [["--workers", "abc"], ["--bogus"], ["--max-children"]], ids=["value", "option", "arg"]
)
def test_json_on_stdout_when_the_command_line_is_wrong(tmp_path: Path, args: list[str]) -> None:
    """A mistake Typer itself finds printed only the stderr line under --json."""
    run = cli("build", str(tmp_path), "--out", str(tmp_path / "o"), "--json", *args)
    assert run.returncode == 1 and run.stderr.startswith("error: ")
    answer = json.loads(run.stdout)
    assert answer["ok"] is False and answer["published"] is False
    assert run.stderr.startswith(f"error: {answer['error']}")


_EXIT_SCRIPT = """
import atexit, sys
from dafab_static.cli import main

mark = sys.argv[1]
atexit.register(lambda: open(mark, "w").write("exit handlers ran"))
sys.argv = ["dafab-static", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize(("args", "code"), [(["validate", "-q"], 0), (["info", "--json"], 0),
                                            (["validate", "--json", "missing"], 1)])  # fmt: skip
def test_the_cli_exits_with_its_code_output_flushed_and_exit_handlers_run(
    catalog: Path, tmp_path: Path, args: list[str], code: int
) -> None:
    """main() ends the process itself, past CPython's native teardown, where Arrow's thread
    pools made libstdc++ abort a finished run now and then (exit 134): its own exit code,
    every line written, and Python's exit handlers still run."""
    script, mark = tmp_path / "run.py", tmp_path / "mark"
    script.write_text(_EXIT_SCRIPT)
    target = [str(catalog)] if args[-1] != "missing" else []
    run = subprocess.run([sys.executable, str(script), str(mark), *args, *target],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert run.returncode == code, run.stderr
    assert mark.read_text() == "exit handlers ran"
    if "--json" in args:  # all of it, flushed
        answer = json.loads(run.stdout)
        assert answer.get("ok", True) is (code == 0)


def test_a_tilde_after_an_equals_sign_is_the_home_folder(tmp_path: Path) -> None:
    """The shell leaves ``--out=~/cat`` alone: a folder named '~' was built in the working
    directory."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    src = write_ndjson(tmp_path / "a.ndjson", [item(i) for i in range(3)])
    run = subprocess.run(
        [sys.executable, "-m", "dafab_static.cli", "build", str(src), "--out=~/cat", "-q"],
        cwd=work, env={**os.environ, "HOME": str(home)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (home / "cat" / "catalog.json").is_file()
    assert list(work.iterdir()) == []
