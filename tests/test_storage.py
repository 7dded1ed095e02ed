from __future__ import annotations

from pathlib import Path

import pytest

from dafab_static.errors import StorageError
from dafab_static.storage import FolderStore, arrow_filesystem, open_store, read_url


@pytest.fixture(params=["folder", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "folder":
        return open_store(str(tmp_path / "dest"))
    if request.param == "memory":
        return open_store("memory://")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/some/prefix")


def test_put_get_list_delete_round_trip(store) -> None:  # type: ignore[no-untyped-def]
    written = store.put_many([("a/1.json", b"one"), ("a/b/2.json", b"two!"), ("c.json", b"c")])
    assert written == 3 + 4 + 1
    assert store.get("a/b/2.json") == b"two!"
    assert store.exists("c.json") and not store.exists("nope.json")
    assert sorted(store.list()) == ["a/1.json", "a/b/2.json", "c.json"]
    assert sorted(store.list("a/")) == ["a/1.json", "a/b/2.json"]
    store.delete(["a/1.json", "missing.json"])
    assert sorted(store.list()) == ["a/b/2.json", "c.json"]


def test_missing_object_is_a_one_line_storage_error(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError) as info:
        store.get("missing/x.json")
    assert "missing/x.json" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", ["../escape.json", "a/../../escape.json"])
def test_paths_never_escape_the_destination(store, bad: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError, match="outside the destination"):
        store.put(bad, b"x")


def test_folder_store_writes_plain_files(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "d")
    store.put("x/y.json", b"{}")
    assert (tmp_path / "d" / "x" / "y.json").read_bytes() == b"{}"


def test_folder_store_writes_exact_bytes(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "d")
    big = bytes(range(256)) * 40_000  # 10 MB, every byte value, "\n" and "\r" among them
    store.put("a/big.bin", big)
    assert (tmp_path / "d" / "a" / "big.bin").read_bytes() == big
    store.put("a/big.bin", b"short\n")  # replaced, not overwritten in place
    assert (tmp_path / "d" / "a" / "big.bin").read_bytes() == b"short\n"


def test_folder_store_write_failure_names_the_file(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "d")
    store.put("a", b"a file where a folder should be")
    with pytest.raises(StorageError, match=r"/d/a/b\.json: cannot write"):
        store.put("a/b.json", b"{}")


def test_unreachable_bucket_is_a_storage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("OBSTORE_MAX_RETRIES", "0")
    store = open_store("s3://nobucket/p")
    with pytest.raises(StorageError) as info:
        store.get("catalog.json")
    assert str(info.value).startswith("s3://nobucket/p/catalog.json: cannot read")


def test_incomplete_s3_credentials_are_a_storage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with pytest.raises(StorageError) as info:
        open_store("s3://bucket/p")
    message = str(info.value)
    assert message.startswith("s3://bucket: cannot set up the S3 client (")
    assert "SecretAccessKey" in message and "AWS_PROFILE" in message


def test_a_missing_bucket_is_named_as_missing(s3_bucket: str) -> None:
    """S3's error code is in the XML body after the first line, which alone was kept
    ('404 Not Found: <')."""
    store = open_store(f"s3://{s3_bucket}-gone/p")
    with pytest.raises(StorageError, match=r"no such bucket \(NoSuchBucket\)"):
        list(store.list())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("", "AWS_PROFILE=nope: The config profile (nope) could not be found"),
        (
            "[profile nope]\nregion = eu-west-1\n",
            "AWS_PROFILE=nope: the profile gives no credentials",
        ),
    ],
)
def test_a_bad_aws_profile_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, message: str
) -> None:
    """An unknown profile, or one without credentials, raised botocore's ProfileNotFound or
    obstore's ValueError, a traceback."""
    (tmp_path / "config").write_text(config)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "nope")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(StorageError) as info:
        open_store("s3://bucket/p")
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("url", ["s3://bkt/victim#other", "s3://bkt/q?x"])
def test_an_s3_destination_with_a_fragment_or_query_is_refused(url: str) -> None:
    """urlsplit cut the prefix there: the catalog went to s3://bkt/victim, over the one
    already there, with exit code 0."""
    with pytest.raises(StorageError, match=r"'#' and '\?' cannot be in an S3 destination"):
        open_store(url)


def test_unsupported_scheme() -> None:
    with pytest.raises(StorageError, match="unsupported destination"):
        open_store("ftp://host/x")


def test_read_url_local_and_s3(tmp_path: Path, s3_bucket: str) -> None:
    (tmp_path / "a.json").write_bytes(b"local")
    assert read_url(str(tmp_path / "a.json")) == b"local"
    assert read_url((tmp_path / "a.json").as_uri()) == b"local"
    open_store(f"s3://{s3_bucket}").put("p/a.json", b"remote")
    assert read_url(f"s3://{s3_bucket}/p/a.json") == b"remote"
    with pytest.raises(StorageError, match="no such file"):
        read_url(str(tmp_path / "none.json"))


def test_arrow_filesystem_reads_what_the_store_wrote(s3_bucket: str) -> None:
    open_store(f"s3://{s3_bucket}/pre").put("x/f.bin", b"12345")
    fs, path = arrow_filesystem(f"s3://{s3_bucket}/pre")
    assert path == f"{s3_bucket}/pre"
    with fs.open_input_file(f"{path}/x/f.bin") as f:
        assert f.read() == b"12345"
