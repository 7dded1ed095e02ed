"""Atomic publish: folders and a real S3 server; a killed build leaves the old catalog intact."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import dafab_static
from dafab_static.errors import InputError, StorageError
from dafab_static.options import BuildOptions
from dafab_static.storage import open_store

from .crawl import crawl, file_reader
from .generate import item, write_ndjson


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _items(n: int, **kw: Any) -> list[dict[str, Any]]:
    return [item(i, **kw) for i in range(n)]


def test_rebuild_replaces_the_catalog_whole(tmp_path: Path) -> None:
    dest = tmp_path / "cat"
    a = write_ndjson(tmp_path / "a.ndjson", _items(5, collection="first"))
    b = write_ndjson(tmp_path / "b.ndjson", _items(3, collection="second"))
    dafab_static.build([str(a)], str(dest))
    assert (dest / "index" / "first").is_dir()
    dafab_static.build([str(b)], str(dest))
    assert not (dest / "index" / "first").exists()
    assert (dest / "index" / "second").is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cat")] == []


def test_refuses_to_replace_a_folder_it_did_not_publish(tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "thesis.tex").write_text("precious")
    src = write_ndjson(tmp_path / "a.ndjson", _items(2))
    with pytest.raises(StorageError, match="not published by dafab-static"):
        dafab_static.build([str(src)], str(dest))
    assert (dest / "thesis.tex").read_text() == "precious"


def test_a_stray_marker_does_not_make_a_folder_ours(tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    dest.mkdir()
    (dest / "thesis.tex").write_text("precious")
    (dest / ".dafab-release.json").write_text("{}")
    src = write_ndjson(tmp_path / "a.ndjson", _items(2))
    with pytest.raises(StorageError, match="not published by dafab-static"):
        dafab_static.build([str(src)], str(dest))
    assert (dest / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("where", ["NOTES.md", ".git/HEAD", "sensors/notes.txt"])
def test_files_added_to_a_published_catalog_are_not_deleted_by_a_rebuild(
    tmp_path: Path, where: str
) -> None:
    """A rebuild replaced the whole folder: a ``.git`` or notes put into it were lost."""
    dest = tmp_path / "cat"
    src = write_ndjson(tmp_path / "a.ndjson", _items(3))
    dafab_static.build([str(src)], str(dest))
    dafab_static.build([str(src)], str(dest))  # untouched: rebuilt
    added = dest / where
    added.parent.mkdir(parents=True, exist_ok=True)
    added.write_text("mine")
    before = _snapshot(dest)
    with pytest.raises(StorageError, match="files were added, removed or renamed"):
        dafab_static.build([str(src)], str(dest))
    assert _snapshot(dest) == before
    added.unlink()  # moved out: the catalog is rebuilt again
    dafab_static.build([str(src)], str(dest))


def test_failed_strict_build_leaves_previous_catalog_intact(tmp_path: Path) -> None:
    dest = tmp_path / "cat"
    good = write_ndjson(tmp_path / "good.ndjson", _items(4))
    dafab_static.build([str(good)], str(dest))
    before = _snapshot(dest)
    bad_items = _items(3)
    bad_items[1]["id"] = "../escape"
    bad = write_ndjson(tmp_path / "bad.ndjson", bad_items)
    with pytest.raises(InputError, match="escape the destination"):
        dafab_static.build([str(bad)], str(dest), options=BuildOptions(strict=True))
    assert _snapshot(dest) == before
    assert not (tmp_path / "escape.json").exists()
    assert [p.name for p in tmp_path.iterdir() if ".staging-" in p.name] == []


def _kill_mid_build(
    cmd: list[str], env: dict[str, str], started: Any, tmp: Path, sig: int = signal.SIGKILL
) -> subprocess.Popen[bytes]:
    # A killed build cannot remove its spool folder: keep it in the test's own tmp.
    env = {**env, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not started():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "build never started writing"
            time.sleep(0.02)
        os.kill(proc.pid, sig)
        if sig != signal.SIGKILL:
            proc.wait(timeout=120)  # it cleans up, then exits
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), err
    return proc


def _big_source(tmp_path: Path) -> Path:
    return write_ndjson(tmp_path / "big.ndjson", [item(i, day=1 + i % 28) for i in range(6000)])


def test_killed_build_leaves_old_folder_catalog_unharmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "cat"
    dafab_static.build(
        [str(write_ndjson(tmp_path / "old.ndjson", _items(7, collection="old")))], str(dest)
    )
    before = _snapshot(dest)
    big = _big_source(tmp_path)

    def staging_has_items() -> bool:
        return any(len(list(p.rglob("*.json"))) > 50 for p in tmp_path.glob(".cat.staging-*"))

    cmd = [
        sys.executable,
        "-m",
        "dafab_static.cli",
        "build",
        str(big),
        "--out",
        str(dest),
        "--quiet",
    ]
    _kill_mid_build(cmd, dict(os.environ), staging_has_items, tmp_path)
    assert _snapshot(dest) == before
    objects = crawl((dest / "catalog.json").as_uri(), file_reader)
    assert sorted(d["id"] for d in objects.values() if d["type"] == "Feature") == [
        f"gen-{i:07d}" for i in range(7)
    ]
    # The dead build's spool is left in its $TMPDIR (a SIGKILL runs no cleanup) ...
    assert [p.name[:12] for p in tmp_path.glob("dafab-*")] == ["dafab-spool-"]
    # ... a live build's stays, and the next build removes the dead one's and its staging.
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            kept = tmp_path / f"dafab-spool-{live.pid}-abc"
            kept.mkdir()
            monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
            dafab_static.build([str(write_ndjson(tmp_path / "n.ndjson", _items(2)))], str(dest))
            assert list(tmp_path.glob(".cat.staging-*")) == []
            assert list(tmp_path.glob("dafab-*")) == [kept]
        finally:
            live.kill()


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid``, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        here = todo.pop()
        children = [child for child, parent in parents.items() if parent == here]
        found.update(children)
        todo += children
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_killed_build_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL unwinds nothing: the month writers, the forkserver they come from and the
    resource tracker must still end with the build, not wait for work forever."""
    dest = tmp_path / "cat"
    src = write_ndjson(tmp_path / "big.ndjson",
                       [item(i, month=6 + i % 3, day=1 + i % 28) for i in range(6000)])  # fmt: skip
    seen: set[int] = set()

    def writers_at_work() -> bool:
        seen.update(_descendants(proc.pid))
        staged = [p for p in tmp_path.glob(".cat.staging-*")]
        return len(seen) >= 3 and any(len(list(p.rglob("*.json"))) > 50 for p in staged)

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "dafab_static.cli", "build", str(src), "--out", str(dest),
           "--quiet", "--workers", "2"]  # fmt: skip
    # stderr to a file: a pipe would stay open as long as any leftover process holds it.
    errors = tmp_path / "stderr.txt"
    with open(errors, "wb") as stderr:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    try:
        while not writers_at_work():
            assert proc.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "the writers never started"
            time.sleep(0.02)
        seen.update(_descendants(proc.pid))
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while (alive := {pid: _command(pid) for pid in seen if _running(pid)}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    for pid in alive:  # leave nothing running, then fail
        os.kill(pid, signal.SIGKILL)
    assert not alive, alive


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an orphan that no init has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:100].decode()
    except OSError:
        return "?"


def _s3_reader(bucket: str) -> Any:
    store = open_store(f"s3://{bucket}")

    def read(url: str) -> bytes:
        from urllib.parse import unquote

        assert url.startswith(f"s3://{bucket}/")
        return store.get(unquote(url[len(f"s3://{bucket}/") :]))

    return read


def test_s3_round_trip(s3_bucket: str) -> None:
    dest = f"s3://{s3_bucket}/stac"
    report = dafab_static.build([], dest, sample=True)
    assert report.ok, report.summary()
    objects = crawl(f"{dest}/catalog.json", _s3_reader(s3_bucket))
    assert sum(d["type"] == "Feature" for d in objects.values()) == report.items
    keys = list(open_store(dest).list())
    assert "catalog.json" in keys
    assert any(k.endswith("items.parquet") for k in keys)
    assert dafab_static.validate(dest).ok
    assert dafab_static.info(dest).items == report.items


def test_s3_objects_carry_their_media_type_and_the_root_must_be_revalidated(
    s3_bucket: str, s3_server: str
) -> None:
    """A bucket serves the Content-Type given at PUT (S3's default, binary/octet-stream,
    makes browsers download instead of show), and a cached root outliving two rebuilds
    would point readers at a deleted release."""
    import boto3

    assert dafab_static.build([], f"s3://{s3_bucket}/stac", sample=True).ok
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    json_kinds = {"application/json", "application/geo+json", "application/schema+json"}
    expected = {".json": json_kinds, ".parquet": {"application/vnd.apache.parquet"},
                ".png": {"image/png"}, ".geojson": {"application/geo+json"}}  # fmt: skip
    seen: dict[str, int] = {}
    for key in open_store(f"s3://{s3_bucket}/stac").list():
        head = s3.head_object(Bucket=s3_bucket, Key=f"stac/{key}")
        suffix = Path(key).suffix
        if suffix in expected:
            assert head["ContentType"] in expected[suffix], key
            seen[suffix] = seen.get(suffix, 0) + 1
        revalidate = key in ("catalog.json", ".dafab-release.json")
        assert (head.get("CacheControl") == "no-cache") == revalidate, key
    assert seen.keys() >= {".json", ".parquet"}, seen


def test_s3_serves_each_object_with_the_type_its_links_give(s3_bucket: str, s3_server: str) -> None:
    """A link's ``type`` and the Content-Type its target is served with agree: Items
    (application/geo+json) and queryables (application/schema+json) were served as plain
    application/json."""
    import json
    import posixpath

    import boto3

    assert dafab_static.build([], f"s3://{s3_bucket}/typed", sample=True).ok
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    store = open_store(f"s3://{s3_bucket}/typed")
    served = {key: s3.head_object(Bucket=s3_bucket, Key=f"typed/{key}")["ContentType"]
              for key in store.list()}  # fmt: skip
    checked: set[str] = set()
    for key in [k for k in served if k.endswith(".json") and not k.startswith(".")]:
        doc = json.loads(store.get(key))
        for target in [*doc.get("links", []), *doc.get("assets", {}).values()]:
            href, kind = target.get("href", ""), target.get("type")
            if "://" in href or kind is None:
                continue
            found = posixpath.normpath(posixpath.join(posixpath.dirname(key), href))
            if found in served:
                # An asset's type may add parameters (a COG's profile) to what is served.
                assert served[found] == kind.split(";")[0], (key, href)
                checked.add(kind)
    assert {"application/json", "application/geo+json", "application/schema+json"} <= checked


def test_s3_rebuild_keeps_previous_release_and_drops_older(s3_bucket: str, tmp_path: Path) -> None:
    dest = f"s3://{s3_bucket}/stac"
    store = open_store(dest)
    for n in (1, 2, 3):
        dafab_static.build([str(write_ndjson(tmp_path / f"{n}.ndjson", _items(n)))], dest)
    releases = {k.split("/")[1] for k in store.list("releases/")}
    assert len(releases) == 2
    objects = crawl(f"{dest}/catalog.json", _s3_reader(s3_bucket))
    assert sum(d["type"] == "Feature" for d in objects.values()) == 3


def test_killed_build_leaves_old_s3_catalog_unharmed(s3_bucket: str, tmp_path: Path) -> None:
    dest = f"s3://{s3_bucket}/stac"
    dafab_static.build(
        [str(write_ndjson(tmp_path / "old.ndjson", _items(7, collection="old")))], dest
    )
    store = open_store(dest)
    root_before = store.get("catalog.json")
    old_keys = set(store.list())
    big = _big_source(tmp_path)

    def new_release_started() -> bool:
        return sum(1 for k in store.list("releases/") if k not in old_keys) > 50

    cmd = [sys.executable, "-m", "dafab_static.cli", "build", str(big), "--out", dest, "--quiet"]
    _kill_mid_build(cmd, dict(os.environ), new_release_started, tmp_path)
    assert store.get("catalog.json") == root_before
    objects = crawl(f"{dest}/catalog.json", _s3_reader(s3_bucket))
    assert sorted(d["id"] for d in objects.values() if d["type"] == "Feature") == [
        f"gen-{i:07d}" for i in range(7)
    ]


def test_s3_commit_leaves_a_concurrent_build_alone(s3_bucket: str, tmp_path: Path) -> None:
    """A release that no root names yet is another build's, in progress: a commit keeps it
    (it deleted it, and that build then published a root naming a release that was gone).
    A release abandoned more than a day ago, and one already replaced twice, go."""
    import time

    from dafab_static.publish import ABANDONED_AFTER_S

    dest = f"s3://{s3_bucket}/conc"
    store = open_store(dest)
    dafab_static.build([str(write_ndjson(tmp_path / "1.ndjson", _items(1)))], dest)
    first = {k.split("/")[1] for k in store.list("releases/")}
    running = f"{int(time.time()):08x}beef"  # started now, by a build still writing
    abandoned = f"{int(time.time() - ABANDONED_AFTER_S - 60):08x}dead"
    for release in (running, abandoned):
        store.put(f"releases/{release}/sensors/catalog.json", b"{}")
    for n in (2, 3):
        dafab_static.build([str(write_ndjson(tmp_path / f"{n}.ndjson", _items(n)))], dest)
    releases = {k.split("/")[1] for k in store.list("releases/")}
    assert running in releases and abandoned not in releases and not first & releases
    assert len(releases) == 3  # the live one, the one it replaced, the one in progress
    assert dafab_static.validate(dest).ok


def test_a_killed_first_build_does_not_lock_the_prefix(s3_bucket: str, tmp_path: Path) -> None:
    """Objects under releases/<id>/ and no marker: a first build that was killed; the
    prefix is still this tool's to publish to."""
    store = open_store(f"s3://{s3_bucket}/fresh")
    store.put("releases/6700000012ab/sensors/catalog.json", b"{}")
    src = write_ndjson(tmp_path / "a.ndjson", _items(2))
    assert dafab_static.build([str(src)], f"s3://{s3_bucket}/fresh").ok


def test_terminated_s3_build_removes_its_release(s3_bucket: str, tmp_path: Path) -> None:
    """SIGTERM (timeout, CI, Kubernetes) unwinds like Ctrl-C: the release it was writing is
    deleted, the published catalog is untouched, the exit code is 143."""
    dest = f"s3://{s3_bucket}/term"
    dafab_static.build([str(write_ndjson(tmp_path / "old.ndjson", _items(3)))], dest)
    store = open_store(dest)
    before = {k: store.get(k) for k in store.list()}

    def new_release_started() -> bool:
        return sum(1 for k in store.list("releases/") if k not in before) > 50

    cmd = [sys.executable, "-m", "dafab_static.cli", "build", str(_big_source(tmp_path)),
           "--out", dest, "--quiet"]  # fmt: skip
    _kill_mid_build(cmd, dict(os.environ), new_release_started, tmp_path, signal.SIGTERM)
    assert {k: store.get(k) for k in store.list()} == before


def test_a_stop_asked_after_the_commit_point_leaves_the_new_catalog_whole(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C right after a bucket's new root is written: the unwinding deleted the release
    that root named, and the live catalog was gone ("nothing was published", it said).
    Past the commit point the build completes, published."""
    from dafab_static import _stop
    from dafab_static.layout import RELEASE_MARKER
    from dafab_static.storage import ObjectStore

    dest = f"s3://{s3_bucket}/late"
    dafab_static.build([str(write_ndjson(tmp_path / "old.ndjson", _items(2)))], dest)
    monkeypatch.setattr(_stop, "_REQUESTED", [])
    put = ObjectStore.put

    def put_then_stop(self: ObjectStore, path: str, data: bytes, **kw: Any) -> None:
        if path == RELEASE_MARKER:  # the root is written: a signal arrives now
            _stop.interrupt(signal.SIGINT)  # what the CLI's handler calls
        put(self, path, data, **kw)

    monkeypatch.setattr(ObjectStore, "put", put_then_stop)
    report = dafab_static.build([str(write_ndjson(tmp_path / "new.ndjson", _items(4)))], dest)
    assert report.published and _stop.requested() == signal.SIGINT
    monkeypatch.setattr(ObjectStore, "put", put)
    objects = crawl(f"{dest}/catalog.json", _s3_reader(s3_bucket))
    assert sum(d["type"] == "Feature" for d in objects.values()) == 4
    assert dafab_static.validate(dest).ok


def test_refuses_a_bucket_prefix_it_did_not_publish(s3_bucket: str, tmp_path: Path) -> None:
    store = open_store(f"s3://{s3_bucket}/theirs")
    store.put("releases/notes.txt", b"keep me")
    src = write_ndjson(tmp_path / "a.ndjson", _items(2))
    with pytest.raises(StorageError, match="not published by dafab-static"):
        dafab_static.build([str(src)], f"s3://{s3_bucket}/theirs")
    assert list(store.list()) == ["releases/notes.txt"]


def test_stale_staging_is_removed_only_for_its_own_destination(tmp_path: Path) -> None:
    """A killed build's staging folder goes when the next build of the same destination
    starts; a name with glob characters, or a destination whose name extends another's,
    is never taken for it."""
    from dafab_static.publish import Release

    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    for dest in ("a", "c[1]"):
        ours = tmp_path / f".{dest}.staging-{dead}-0123456789ab"
        theirs = [tmp_path / f".{dest}.staging-x.staging-{dead}-0123456789ab",
                  tmp_path / f".c1.staging-{dead}-0123456789ab"]  # fmt: skip
        for folder in (ours, *theirs):
            folder.mkdir(exist_ok=True)
        release = Release(str(tmp_path / dest))
        release.abort()
        assert not ours.exists() and all(folder.exists() for folder in theirs)


def test_no_release_is_published_after_a_stop_was_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The KeyboardInterrupt of a SIGTERM can be lost (raised inside pandas' import, which
    pyarrow then takes for "pandas is missing"); the stop is remembered, and the commit
    refuses: the old catalog stays, and this release is removed."""
    from dafab_static import _stop

    dest = tmp_path / "cat"
    dafab_static.build([str(write_ndjson(tmp_path / "old.ndjson", _items(3)))], str(dest))
    before = _snapshot(dest)
    monkeypatch.setattr(_stop, "_REQUESTED", [signal.SIGTERM])  # as the CLI's handler does
    with pytest.raises(KeyboardInterrupt):
        dafab_static.build([str(write_ndjson(tmp_path / "new.ndjson", _items(5)))], str(dest))
    assert _snapshot(dest) == before
    assert [p.name for p in tmp_path.iterdir() if ".staging-" in p.name] == []


_SETPRIV = "/usr/bin/setpriv"


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(_SETPRIV),
    reason="needs root and setpriv to drop the capability that ignores permissions",
)
def test_a_previous_catalog_that_cannot_be_deleted_is_reported(tmp_path: Path) -> None:
    """The new catalog is published; the old one, which this user may not delete, was
    left as a hidden folder beside it without a word, build after build."""
    dest = tmp_path / "cat"
    source = write_ndjson(tmp_path / "in.ndjson", [item(i) for i in range(3)])
    assert dafab_static.build([str(source)], str(dest)).ok
    for folder, _, _ in os.walk(dest):  # read-only: its files cannot be unlinked
        os.chmod(folder, 0o555)
    caps = "-dac_override,-dac_read_search,-fowner"
    run = subprocess.run(
        [_SETPRIV, f"--bounding-set={caps}", f"--inh-caps={caps}", sys.executable, "-m",
         "dafab_static.cli", "build", str(source), "--out", str(dest)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stderr
        leftover = [p for p in tmp_path.iterdir() if p.name.startswith(".cat.")]
        assert len(leftover) == 1  # the old catalog, which the new one replaced
        assert (
            f"{leftover[0]}: the previous catalog is left there (Permission denied); "
            "delete it by hand" in run.stdout + run.stderr
        )
        assert dafab_static.validate(str(dest)).ok
    finally:
        for folder, _, _ in os.walk(tmp_path):
            os.chmod(folder, 0o755)


def test_a_rebuild_in_place_keeps_the_files_its_items_link(tmp_path: Path) -> None:
    """`build cat --out cat` (as the README offers) read the items back with links to the
    sample's rasters and the pipeline's masks inside cat/, then replaced cat/: every local
    asset link pointed at a deleted file, and validate did not notice."""
    from urllib.parse import unquote, urlsplit

    dest = tmp_path / "cat"
    recipe = str(Path(__file__).resolve().parents[2] / "pipelines" / "default.toml")
    assert dafab_static.build([], str(dest), sample=True,
                              options=BuildOptions(pipeline=recipe, quiet=True)).ok  # fmt: skip
    before = len([p for p in dest.rglob("*") if p.is_file()])
    assert dafab_static.build([str(dest)], str(dest)).ok
    assert len([p for p in dest.rglob("*") if p.is_file()]) == before
    linked = 0
    for path in dest.rglob("*.json"):
        doc = json.loads(path.read_text())
        for asset in doc.get("assets", {}).values() if doc.get("type") == "Feature" else ():
            href = asset["href"]
            if "://" in href and not href.startswith("file://"):
                continue
            target = (Path(unquote(urlsplit(href).path)) if href.startswith("file://")
                      else path.parent / unquote(href))  # fmt: skip
            assert target.exists(), (path.name, href)
            assert dest in target.resolve().parents  # in the catalog, not beside it
            linked += 1
    assert linked > 20


def test_a_long_destination_name_builds_and_a_too_long_one_is_refused(tmp_path: Path) -> None:
    """The staging folder's name added ~27 characters to DEST's: a 230-character name, legal
    itself, failed with a traceback; past 255 the name cannot be, and says so."""
    src = write_ndjson(tmp_path / "a.ndjson", _items(2))
    dest = tmp_path / ("n" * 230)
    dafab_static.build([str(src)], str(dest))
    dafab_static.build([str(src)], str(dest))  # and rebuilt
    assert (dest / "catalog.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if "staging" in p.name] == []
    with pytest.raises(StorageError, match=r"cannot create the catalog there.*too long"):
        dafab_static.build([str(src)], str(tmp_path / ("e" * 300)))


def test_a_rebuild_in_place_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each in-place rebuild added a second Source link to every item and Collection,
    naming the object's own file: the published files changed with no input changed."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dest = tmp_path / "cat"
    src = write_ndjson(tmp_path / "a.ndjson", _items(4))
    dafab_static.build([str(src)], str(dest))
    before = _snapshot(dest)
    dafab_static.build([str(dest)], str(dest))
    after = _snapshot(dest)
    assert after == before
    item_file = next(p for p in dest.rglob("*.json") if '"Feature"' in p.read_text()[:200])
    vias = [ln for ln in json.loads(item_file.read_text())["links"] if ln["rel"] == "via"]
    assert [ln["href"] for ln in vias] == [src.as_uri()]


def test_a_long_destination_is_rebuilt_where_renameat2_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without RENAME_EXCHANGE (macOS, some filesystems) the previous catalog is renamed
    aside first: that name overflowed NAME_MAX too, a raw OSError."""
    from dafab_static import publish

    monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    src = write_ndjson(tmp_path / "a.ndjson", _items(2))
    dest = tmp_path / ("n" * 250)
    dafab_static.build([str(src)], str(dest))
    dafab_static.build([str(src)], str(dest))
    assert (dest / "catalog.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.ndjson", dest.name])


def test_a_failed_build_leaves_no_folder_it_created_above_dest(tmp_path: Path) -> None:
    """--out a/b/cat of a build that failed left a/ and a/b/ behind "nothing published"."""
    src = write_ndjson(tmp_path / "bad.ndjson", [{"type": "Feature"}])
    with pytest.raises(InputError):
        dafab_static.build([str(src)], str(tmp_path / "a" / "b" / "cat"))
    assert not (tmp_path / "a").exists()
    (tmp_path / "keep").mkdir()  # a folder that was there stays
    with pytest.raises(InputError):
        dafab_static.build([str(src)], str(tmp_path / "keep" / "b" / "cat"))
    assert (tmp_path / "keep").is_dir() and not (tmp_path / "keep" / "b").exists()
