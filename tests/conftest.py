"""Shared fixtures: the real data beside the repo, a real S3 server and web servers on 127.0.0.1."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real public STAC items, rasters and schemas; skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (real-data tests need ../shared/data)")
    return SHARED_DATA


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto in server mode) on 127.0.0.1; yields its endpoint."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the local S3 server, with the AWS environment pointing at it."""
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(autouse=True)
def _no_aws_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep a developer's ~/.aws out of the tests."""
    empty = tmp_path_factory.getbasetemp() / "aws-empty"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    os.environ.pop("AWS_PROFILE", None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """pyarrow's S3 client must be finalised before interpreter exit (it warns otherwise)."""
    import sys

    if "pyarrow.fs" in sys.modules:
        sys.modules["pyarrow.fs"].finalize_s3()


def _serve_folder(directory: Path, handler: type) -> tuple[Any, list[tuple[str, str, str | None]]]:
    """Serve ``directory`` on 127.0.0.1 from a thread; returns the server and its request log
    of (method, path, Range header)."""
    import functools
    import threading
    from http.server import ThreadingHTTPServer

    log: list[tuple[str, str, str | None]] = []

    class Quiet(handler):  # type: ignore[misc]
        def log_message(self, format: str, *args: Any) -> None:
            log.append((self.command, self.path, self.headers.get("Range")))

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client that hangs up mid-body (obstore, on a 200 to a range request) is normal.
            import sys

            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, log


@pytest.fixture(scope="session")
def _range_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[Any]]]:
    handlers = pytest.importorskip("RangeHTTPServer", reason="rangehttpserver is not installed")
    directory = tmp_path_factory.mktemp("http")
    server, log = _serve_folder(directory, handlers.RangeRequestHandler)
    try:
        yield f"http://127.0.0.1:{server.server_port}", directory, log
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def range_http_server(_range_http: tuple[str, Path, list[Any]]) -> tuple[str, Path]:
    """A real web server that honours HTTP Range (``rangehttpserver``, answers 206) on
    127.0.0.1, shared by the session: yields (base URL, the folder it serves). Write files
    under a name of your own (for example a ``tmp_path.name`` subfolder)."""
    return _range_http[0], _range_http[1]


@pytest.fixture
def range_http_requests(_range_http: tuple[str, Path, list[Any]]) -> list[Any]:
    """The requests ``range_http_server`` has answered since this test began, as
    (method, path, Range header): an independent count of what a reader asked for."""
    log = _range_http[2]
    log.clear()
    return log


@pytest.fixture
def plain_http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Python's own ``http.server`` on 127.0.0.1, which ignores Range (answers 200 with the
    whole file); yields (base URL, the folder it serves)."""
    from http.server import SimpleHTTPRequestHandler

    directory = tmp_path / "plain-http"
    directory.mkdir()
    server, _ = _serve_folder(directory, SimpleHTTPRequestHandler)
    try:
        yield f"http://127.0.0.1:{server.server_port}", directory
    finally:
        server.shutdown()
        server.server_close()
