"""open_input: Parquet over HTTP range requests, against real S3 and web servers on 127.0.0.1."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from dafab_static.errors import StorageError
from dafab_static.storage import IOStats, open_input, open_store

ROWS = 20_000
ROW_GROUP = 5_000
FOOTER_READ = 64 * 1024  # what open_input fetches at the first read near the end


def _items(rows: int) -> pa.Table:
    """A stac-geoparquet-like table: ids, times, WKB footprints, bbox structs, properties."""
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-180, 170, rows), rng.uniform(-80, 70, rows)
    boxes = shapely.box(x, y, x + rng.uniform(0.1, 2, rows), y + rng.uniform(0.1, 2, rows))
    bounds = shapely.bounds(boxes)
    ids = [f"S2_T{i:06d}" for i in range(rows)]
    return pa.table(
        {
            "id": ids,
            "collection": ["sentinel-2-l2a"] * rows,
            "datetime": pa.array(
                np.datetime64("2024-01-01", "us") + np.arange(rows) * np.timedelta64(3600, "s"),
                pa.timestamp("us", tz="UTC"),
            ),
            "eo:cloud_cover": rng.uniform(0, 100, rows),
            "platform": rng.choice(["sentinel-2a", "sentinel-2b"], rows),
            "geometry": pa.array(shapely.to_wkb(boxes), pa.binary()),
            "bbox": pa.StructArray.from_arrays(
                [pa.array(bounds[:, i]) for i in range(4)], ["xmin", "ymin", "xmax", "ymax"]
            ),
            "assets": [
                f'{{"B04": {{"href": "s3://eo/{i}/{rng.bytes(8).hex()}/B04.tif"}}}}' for i in ids
            ],
        }
    )


@pytest.fixture(scope="module")
def index_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-row-group stac-geoparquet-like file of a few MB."""
    path = tmp_path_factory.mktemp("index") / "items.parquet"
    pq.write_table(_items(ROWS), path, row_group_size=ROW_GROUP, compression="zstd")
    return path


def _publish(backend: str, local: Path, request: pytest.FixtureRequest) -> str:
    """Put ``local`` where ``backend`` serves it; return its URL."""
    if backend == "local":
        return str(local)
    if backend == "http":
        base, folder = request.getfixturevalue("range_http_server")
        sub = uuid.uuid4().hex[:8]
        (folder / sub).mkdir()
        (folder / sub / local.name).write_bytes(local.read_bytes())
        return f"{base}/{sub}/{local.name}"
    bucket = request.getfixturevalue("s3_bucket")
    open_store(f"s3://{bucket}/index").put(local.name, local.read_bytes())
    return f"s3://{bucket}/index/{local.name}"


@pytest.fixture(params=["local", "http", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["http", "s3"])
def remote(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_index_is_a_few_megabytes_with_a_small_footer(index_file: Path) -> None:
    # The cost assertions below rely on this shape.
    size = index_file.stat().st_size
    assert 1_000_000 < size < 5_000_000
    meta = pq.read_metadata(index_file)
    assert (meta.num_rows, meta.num_row_groups, meta.num_columns) == (ROWS, 4, 11)
    assert meta.serialized_size + 8 < FOOTER_READ


@pytest.mark.parametrize("size_known", [False, True])
def test_metadata_costs_one_footer_read_plus_a_head_when_size_is_unknown(
    backend: str, size_known: bool, index_file: Path, request: pytest.FixtureRequest
) -> None:
    url = _publish(backend, index_file, request)
    size = index_file.stat().st_size
    stats = IOStats()
    with open_input(url, stats=stats, size=size if size_known else None) as f:
        meta = pq.read_metadata(f)
    assert meta.equals(pq.read_metadata(index_file))
    head = 0 if size_known or backend == "local" else 1
    assert (stats.requests, stats.bytes) == (head + 1, FOOTER_READ)


def test_the_web_server_sees_exactly_a_head_and_one_footer_range(
    index_file: Path, request: pytest.FixtureRequest, range_http_requests: list[tuple[str, ...]]
) -> None:
    url = _publish("http", index_file, request)
    size = index_file.stat().st_size
    with open_input(url) as f:
        pq.read_metadata(f)
    path = url.split("/", 3)[3]
    assert range_http_requests == [
        ("HEAD", f"/{path}", None),
        ("GET", f"/{path}", f"bytes={size - FOOTER_READ}-{size - 1}"),
    ]


def test_one_column_of_one_row_group_moves_only_its_chunk(
    backend: str, index_file: Path, request: pytest.FixtureRequest
) -> None:
    url = _publish(backend, index_file, request)
    size = index_file.stat().st_size
    stats = IOStats()
    with open_input(url, stats=stats, size=size, whole_below=0) as f:
        table = pq.ParquetFile(f, pre_buffer=True).read_row_group(2, columns=["eo:cloud_cover"])
    expected = pq.read_table(index_file).slice(2 * ROW_GROUP, ROW_GROUP).select(["eo:cloud_cover"])
    assert table.equals(expected)
    chunk = pq.read_metadata(index_file).row_group(2).column(3)
    assert chunk.path_in_schema == "eo:cloud_cover"
    # One request for the footer, one for the column chunk, and not a byte more.
    assert (stats.requests, stats.bytes) == (2, FOOTER_READ + chunk.total_compressed_size)
    assert stats.bytes < 0.25 * size


def test_every_backend_reads_the_same_rows(
    backend: str, index_file: Path, request: pytest.FixtureRequest
) -> None:
    url = _publish(backend, index_file, request)
    size = index_file.stat().st_size
    reference = pq.read_table(index_file)
    with open_input(url) as f:
        some = pq.ParquetFile(f, pre_buffer=True).read_row_group(
            1, columns=["id", "datetime", "geometry", "bbox"]
        )
    assert some.equals(reference.slice(ROW_GROUP, ROW_GROUP).select(some.column_names))
    stats = IOStats()
    with open_input(url, stats=stats) as f:
        everything = pq.ParquetFile(f, pre_buffer=True).read()
    assert everything.equals(reference)
    # Remotely no byte is fetched twice: reads that reach the footer are served from its one
    # read. A local file is plain: pyarrow reads the end of the last column chunk twice.
    assert stats.bytes <= (size + FOOTER_READ if backend == "local" else size)


def test_small_reads_inside_the_fetched_footer_are_free(
    remote: str, index_file: Path, request: pytest.FixtureRequest
) -> None:
    url = _publish(remote, index_file, request)
    data = index_file.read_bytes()
    size = len(data)
    stats = IOStats()
    with open_input(url, stats=stats, whole_below=0) as f:
        assert (f.seekable(), f.readable(), f.size(), f.tell()) == (True, True, size, 0)
        assert (stats.requests, stats.bytes) == (1, 0)  # the HEAD
        assert f.seek(-8, 2) == size - 8
        trailer = f.read(8)
        assert trailer == data[-8:] and trailer.endswith(b"PAR1")
        assert (stats.requests, stats.bytes) == (2, FOOTER_READ)
        footer_len = int.from_bytes(trailer[:4], "little")
        f.seek(-8 - footer_len, 2)
        assert f.read(footer_len) == data[-8 - footer_len : -8]
        f.seek(size - 3)
        assert f.read(100) == data[-3:]  # clipped at the end
        assert f.read(5) == b""
        assert f.seek(10, 2) == size + 10 and f.read() == b""
        assert (stats.requests, stats.bytes) == (2, FOOTER_READ)
        # Outside the footer every read is one request of exactly what was asked.
        assert f.seek(0) == 0 and f.read(4) == b"PAR1" and f.tell() == 4
        buffer = bytearray(10)
        f.seek(100_000)
        assert f.readinto(buffer) == 10 and bytes(buffer) == data[100_000:100_010]
        assert f.seek(5, 1) == 100_015
        assert (stats.requests, stats.bytes) == (4, FOOTER_READ + 14)
        # A read that runs into the fetched footer only fetches the part before it.
        start = size - FOOTER_READ - 100
        f.seek(start)
        assert f.read(300) == data[start : start + 300]
        assert (stats.requests, stats.bytes) == (5, FOOTER_READ + 14 + 100)
        with pytest.raises(ValueError, match="negative"):
            f.seek(-1)
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        f.read(1)


def test_a_small_object_is_fetched_whole_once_until_forgotten(
    remote: str, index_file: Path, request: pytest.FixtureRequest
) -> None:
    url = _publish(remote, index_file, request)
    size = index_file.stat().st_size
    reference = pq.read_table(index_file)
    stats = IOStats()
    with open_input(url, stats=stats, size=size, whole_below=size) as f:
        parquet = pq.ParquetFile(f, pre_buffer=True)
        assert (stats.requests, stats.bytes) == (1, FOOTER_READ)
        # Two passes of a search: the filter's column, then whole row groups. The first
        # read outside the footer fetches the rest of the object, the second costs nothing.
        cloud = parquet.read_row_group(1, columns=["eo:cloud_cover"])
        assert (stats.requests, stats.bytes) == (2, size)
        rows = parquet.read_row_groups([1, 3])
        assert (stats.requests, stats.bytes) == (2, size)
        f.forget()  # what a search does when it is done with the file: memory is freed
        again = pq.ParquetFile(f, pre_buffer=True).read_row_group(0, columns=["id"])
        assert (stats.requests, stats.bytes) == (3, 2 * size - FOOTER_READ)
    assert cloud.equals(reference.slice(ROW_GROUP, ROW_GROUP).select(["eo:cloud_cover"]))
    expected = [reference.slice(ROW_GROUP, ROW_GROUP), reference.slice(3 * ROW_GROUP, ROW_GROUP)]
    assert rows.equals(pa.concat_tables(expected))
    assert again.equals(reference.slice(0, ROW_GROUP).select(["id"]))
    # One byte over the limit: ranges again, one request per read.
    stats = IOStats()
    with open_input(url, stats=stats, size=size, whole_below=size - 1) as f:
        pq.ParquetFile(f, pre_buffer=True).read_row_group(1, columns=["eo:cloud_cover"])
    chunk = pq.read_metadata(index_file).row_group(1).column(3)
    assert (stats.requests, stats.bytes) == (2, FOOTER_READ + chunk.total_compressed_size)


def test_a_file_smaller_than_the_footer_read_is_fetched_once(
    remote: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    local = tmp_path / "small.parquet"
    pq.write_table(_items(50), local)
    assert local.stat().st_size < FOOTER_READ
    url = _publish(remote, local, request)
    stats = IOStats()
    with open_input(url, stats=stats) as f:
        table = pq.read_table(f)
    assert table.equals(pq.read_table(local))
    assert (stats.requests, stats.bytes) == (2, local.stat().st_size)


def test_a_footer_larger_than_the_first_read_costs_one_more_request(
    remote: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    local = tmp_path / "wide.parquet"
    wide = pa.table({f"c{i:03d}": np.arange(400, dtype="int32") * i for i in range(150)})
    pq.write_table(wide, local, row_group_size=20)
    meta = pq.read_metadata(local)
    assert meta.serialized_size > 2 * FOOTER_READ
    url = _publish(remote, local, request)
    stats = IOStats()
    with open_input(url, stats=stats) as f:
        parquet = pq.ParquetFile(f, pre_buffer=True)
        assert parquet.metadata.equals(meta)
        assert stats.requests == 3  # HEAD, the last 64 KiB, the rest of the footer
        column = parquet.read_row_group(7, columns=["c042"]).column(0).to_pylist()
    assert column == [v * 42 for v in range(140, 160)]


@pytest.mark.parametrize("name", ["items 2024.parquet", "é.parquet"])
def test_names_that_need_escaping(
    name: str, index_file: Path, tmp_path: Path, range_http_server: tuple[str, Path]
) -> None:
    local = tmp_path / name
    local.write_bytes(index_file.read_bytes())
    base, folder = range_http_server
    sub = uuid.uuid4().hex[:8]
    (folder / sub).mkdir()
    (folder / sub / name).write_bytes(index_file.read_bytes())
    from urllib.parse import quote

    for url in (local.as_uri(), f"{base}/{sub}/{quote(name)}"):
        with open_input(url) as f:
            assert pq.read_metadata(f).num_rows == ROWS


def test_a_server_that_ignores_range_is_named(
    index_file: Path, plain_http_server: tuple[str, Path]
) -> None:
    base, folder = plain_http_server
    (folder / "items.parquet").write_bytes(index_file.read_bytes())
    url = f"{base}/items.parquet"
    with (
        open_input(url) as f,
        pytest.raises(StorageError, match="does not honour HTTP Range requests") as info,
    ):
        pq.read_metadata(f)  # the error comes back through pyarrow unchanged
    assert str(info.value).startswith(f"{url}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("size", [None, 1000])
def test_a_missing_object_is_a_one_line_error_naming_the_url(
    remote: str, size: int | None, index_file: Path, request: pytest.FixtureRequest
) -> None:
    url = _publish(remote, index_file, request).replace("items.parquet", "missing.parquet")
    # Raised at open (by the HEAD) when the size is unknown, else at the first read.
    with pytest.raises(StorageError) as info, open_input(url, size=size) as f:
        f.read(10)
    assert str(info.value) == f"{url}: no such object"


def test_a_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no such file"):
        open_input(str(tmp_path / "none.parquet"))


def test_an_unreachable_host_is_a_storage_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/items.parquet"
    with pytest.raises(StorageError) as info:
        open_input(url)
    assert str(info.value).startswith(f"{url}: cannot read (")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/items.parquet", "unsupported location"),
        ("s3://bucket-only", "expected s3://bucket/key"),
        ("https://host/a.parquet?X-Amz-Signature=1", "without a query"),
    ],
)
def test_locations_we_cannot_range_read(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        open_input(url)


def test_io_stats_count_exactly_across_threads() -> None:
    stats = IOStats()

    def work() -> None:
        for _ in range(5_000):
            stats.add(3)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (stats.requests, stats.bytes) == (40_000, 120_000)
