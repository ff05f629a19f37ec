"""The blob store contract, run against every backend (the in-memory fake included).

A new backend joins by adding its name to ``BACKENDS`` and a branch to the ``store`` fixture.
Backend-specific checks (the local folder's layout on disk, the factory) follow the shared suite.
The ``s3`` backend runs against moto's standalone server, started once on loopback.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mediatasks import errors
from mediatasks.blobstore import (
    BlobStore,
    LocalBlobStore,
    MemoryBlobStore,
    base,
    open_blob_store,
)
from mediatasks.blobstore.s3 import S3BlobStore, S3Config
from tests import s3server

BACKENDS = ["local", "memory", "s3"]

INVALID_KEYS = [
    "",
    "/hls/a/0.ts",
    "hls/../secret",
    "..",
    "../x",
    ".",
    "hls/./a",
    "hls//a",
    "hls/a/",
    "hls\\a\\0.ts",
    "hls/a\x00b",
    "hls/a\nb",
    f"hls/{base.TEMP_PREFIX}0123",
    "x" * 256,
    "/".join(["abcdefgh"] * 120),
]


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.MotoServer]:
    with s3server.moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def s3_config(moto: s3server.MotoServer) -> S3Config:
    return S3Config(
        endpoint_url=moto.endpoint_url,
        access_key_id=s3server.ACCESS_KEY,
        secret_access_key=s3server.SECRET_KEY,
        max_attempts=1,
    )


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    blob_store: BlobStore
    if request.param == "local":
        blob_store = LocalBlobStore(tmp_path / "media")
    elif request.param == "s3":
        moto: s3server.MotoServer = request.getfixturevalue("moto")
        # A bucket per test, and a prefix, so that keys are always relative to a folder.
        blob_store = S3BlobStore(moto.new_bucket(), prefix="media/x", config=s3_config(moto))
    else:
        blob_store = MemoryBlobStore()
    try:
        yield blob_store
    finally:
        await blob_store.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder for the local files that tests put and get."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def _file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _staged_ladder(folder: Path) -> Path:
    """A staged HLS output, as a transcode leaves it before publishing."""
    staged = folder / "staged"
    _file(staged, "index.m3u8", b"#EXTM3U\n720p0/index.m3u8\n")
    _file(staged, "720p0/index.m3u8", b"#EXTM3U\n0.ts\n1.ts\n")
    _file(staged, "720p0/0.ts", b"segment-0" * 100)
    _file(staged, "720p0/1.ts", b"segment-1" * 100)
    _file(staged, "360p0/index.m3u8", b"#EXTM3U\n0.ts\n")
    _file(staged, "360p0/0.ts", b"small-0")
    return staged


LADDER_KEYS = [
    "hls/abcd1234/360p0/0.ts",
    "hls/abcd1234/360p0/index.m3u8",
    "hls/abcd1234/720p0/0.ts",
    "hls/abcd1234/720p0/1.ts",
    "hls/abcd1234/720p0/index.m3u8",
    "hls/abcd1234/index.m3u8",
]


# -- put_file, get_file, exists, size_bytes -------------------------------------------------------


async def test_put_then_get_round_trip(store: BlobStore, work: Path) -> None:
    data = bytes(range(256)) * 1000
    await store.put_file("hls/abcd1234/720p0/0.ts", _file(work, "in.ts", data))
    assert await store.exists("hls/abcd1234/720p0/0.ts")
    assert await store.size_bytes("hls/abcd1234/720p0/0.ts") == len(data)
    dest = work / "out" / "deep" / "0.ts"
    await store.get_file("hls/abcd1234/720p0/0.ts", dest)
    assert dest.read_bytes() == data


async def test_put_copies_the_source(store: BlobStore, work: Path) -> None:
    source = _file(work, "in.ts", b"first")
    await store.put_file("a/b.ts", source)
    source.write_bytes(b"changed afterwards")
    dest = work / "out.ts"
    await store.get_file("a/b.ts", dest)
    assert dest.read_bytes() == b"first"


async def test_move_publishes_the_file_and_gives_it_up(store: BlobStore, work: Path) -> None:
    data = bytes(range(256)) * 100
    source = _file(work, "in.mp4", data)
    await store.move_file("asset/p/video", source)
    assert not source.exists()
    dest = work / "out.mp4"
    await store.get_file("asset/p/video", dest)
    assert dest.read_bytes() == data
    await store.move_file("asset/p/video", _file(work, "again.mp4", b"second"))
    assert await store.size_bytes("asset/p/video") == len(b"second")
    assert await store.list_keys("asset") == ["asset/p/video"]


async def test_put_overwrites(store: BlobStore, work: Path) -> None:
    await store.put_file("a/b.ts", _file(work, "one.ts", b"a longer first version"))
    await store.put_file("a/b.ts", _file(work, "two.ts", b"short"))
    assert await store.size_bytes("a/b.ts") == len(b"short")
    assert await store.list_keys("a") == ["a/b.ts"]
    dest = _file(work, "existing.ts", b"old local content that is longer")
    await store.get_file("a/b.ts", dest)
    assert dest.read_bytes() == b"short"


async def test_concurrent_puts_leave_one_whole_version(store: BlobStore, work: Path) -> None:
    versions = [bytes([n]) * 200_000 for n in range(8)]
    sources = [_file(work, f"v{n}.bin", data) for n, data in enumerate(versions)]
    await asyncio.gather(*(store.put_file("race/x.bin", source) for source in sources))
    dest = work / "out.bin"
    await store.get_file("race/x.bin", dest)
    assert dest.read_bytes() in versions
    assert await store.list_keys("race") == ["race/x.bin"]


async def test_empty_file(store: BlobStore, work: Path) -> None:
    await store.put_file("empty.txt", _file(work, "empty.txt", b""))
    assert await store.exists("empty.txt")
    assert await store.size_bytes("empty.txt") == 0


async def test_missing_key(store: BlobStore, work: Path) -> None:
    assert not await store.exists("hls/nope/index.m3u8")
    with pytest.raises(errors.NotFound, match=re.escape("hls/nope/index.m3u8")):
        await store.get_file("hls/nope/index.m3u8", work / "out.m3u8")
    with pytest.raises(errors.NotFound):
        await store.size_bytes("hls/nope/index.m3u8")
    assert not (work / "out.m3u8").exists()


async def test_a_folder_is_not_a_key(store: BlobStore, work: Path) -> None:
    await store.put_file("hls/a/0.ts", _file(work, "0.ts", b"x"))
    assert not await store.exists("hls/a")
    with pytest.raises(errors.NotFound):
        await store.size_bytes("hls/a")
    with pytest.raises(errors.NotFound):
        await store.get_file("hls/a", work / "out")


async def test_missing_local_source(store: BlobStore, work: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await store.put_file("a/b.ts", work / "does-not-exist.ts")
    assert not await store.exists("a/b.ts")


async def test_a_key_cannot_be_a_file_and_a_folder(store: BlobStore, work: Path) -> None:
    source = _file(work, "x.ts", b"x")
    await store.put_file("hls/a", source)
    with pytest.raises(errors.Conflict):
        await store.put_file("hls/a/0.ts", source)
    with pytest.raises(errors.Conflict):
        await store.put_file("hls/a/deeper/0.ts", source)
    await store.put_file("hls/b/0.ts", source)
    with pytest.raises(errors.Conflict):
        await store.put_file("hls/b", source)
    assert await store.list_keys("") == ["hls/a", "hls/b/0.ts"]


async def test_unusual_but_valid_keys(store: BlobStore, work: Path) -> None:
    keys = ["a b/c d.ts", "ünïcode/ファイル.mp4", ".hidden/x", "a..b/c...d", "x" * 255]
    for key in keys:
        await store.put_file(key, _file(work, "k.bin", key.encode()))
    assert await store.list_keys("") == sorted(keys)
    for key in keys:
        dest = work / "out.bin"
        await store.get_file(key, dest)
        assert dest.read_bytes() == key.encode()


# -- key validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_invalid_keys_are_refused_everywhere(store: BlobStore, work: Path, key: str) -> None:
    source = _file(work, "x.ts", b"x")
    with pytest.raises(errors.InvalidInput):
        await store.put_file(key, source)
    with pytest.raises(errors.InvalidInput):
        await store.get_file(key, work / "out")
    with pytest.raises(errors.InvalidInput):
        await store.exists(key)
    with pytest.raises(errors.InvalidInput):
        await store.size_bytes(key)
    with pytest.raises(errors.InvalidInput):
        store.local_path(key)
    if key not in ("", "hls/a/"):  # an empty prefix and a trailing slash are fine in a prefix
        with pytest.raises(errors.InvalidInput):
            await store.list_keys(key)
        with pytest.raises(errors.InvalidInput):
            await store.delete_prefix(key)
        with pytest.raises(errors.InvalidInput):
            await store.put_tree(key, _staged_ladder(work))
    assert await store.list_keys("") == []


def test_check_key_returns_the_key() -> None:
    assert base.check_key("hls/abcd1234/720p0/0.ts") == "hls/abcd1234/720p0/0.ts"
    assert base.check_prefix("hls/abcd1234/") == "hls/abcd1234"
    assert base.check_prefix("") == ""


# -- put_tree, list_keys, delete_prefix -----------------------------------------------------------


async def test_put_tree_list_delete_round_trip(store: BlobStore, work: Path) -> None:
    staged = _staged_ladder(work)
    keys = await store.put_tree("hls/abcd1234", staged)
    assert keys == LADDER_KEYS
    assert await store.list_keys("hls/abcd1234") == LADDER_KEYS
    assert await store.list_keys("hls/abcd1234/") == LADDER_KEYS
    assert await store.list_keys("hls") == LADDER_KEYS
    assert await store.list_keys("hls/abcd1234/720p0") == LADDER_KEYS[2:5]
    for key in keys:
        dest = work / "check"
        await store.get_file(key, dest)
        assert dest.read_bytes() == (staged / key.removeprefix("hls/abcd1234/")).read_bytes()
    assert await store.delete_prefix("hls/abcd1234") == len(LADDER_KEYS)
    assert await store.list_keys("") == []
    assert not await store.exists("hls/abcd1234/index.m3u8")
    assert (staged / "720p0" / "0.ts").read_bytes() == b"segment-0" * 100  # staging untouched


async def test_put_tree_without_prefix(store: BlobStore, work: Path) -> None:
    keys = await store.put_tree("", _staged_ladder(work))
    assert keys == [key.removeprefix("hls/abcd1234/") for key in LADDER_KEYS]


async def test_put_tree_of_an_empty_folder(store: BlobStore, work: Path) -> None:
    (work / "nothing").mkdir()
    assert await store.put_tree("hls/x", work / "nothing") == []
    assert await store.list_keys("") == []


async def test_put_tree_of_a_missing_folder(store: BlobStore, work: Path) -> None:
    with pytest.raises(errors.NotFound):
        await store.put_tree("hls/x", work / "missing")


async def test_put_tree_refuses_symbolic_links(store: BlobStore, work: Path) -> None:
    staged = _staged_ladder(work)
    (staged / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(errors.InvalidInput, match="symbolic link"):
        await store.put_tree("hls/abcd1234", staged)
    assert await store.list_keys("") == []


async def test_put_tree_overwrites_a_previous_publication(store: BlobStore, work: Path) -> None:
    staged = _staged_ladder(work)
    await store.put_tree("hls/abcd1234", staged)
    (staged / "720p0" / "0.ts").unlink()
    _file(staged, "720p0/0.ts", b"re-encoded")
    await store.put_tree("hls/abcd1234", staged)
    dest = work / "out.ts"
    await store.get_file("hls/abcd1234/720p0/0.ts", dest)
    assert dest.read_bytes() == b"re-encoded"
    assert await store.list_keys("hls") == LADDER_KEYS


def test_staged_files_publish_playlists_last(work: Path) -> None:
    # A player that finds a playlist must find its segments: playlists go last, deepest first.
    ordered = [key for key, _ in base.staged_files("hls/abcd1234", _staged_ladder(work))]
    assert sorted(ordered) == LADDER_KEYS
    manifests = [key for key in ordered if key.endswith(".m3u8")]
    assert ordered[-len(manifests) :] == manifests
    assert ordered[-1] == "hls/abcd1234/index.m3u8"


async def test_prefixes_are_folders(store: BlobStore, work: Path) -> None:
    source = _file(work, "x.ts", b"x")
    for key in ["hls/ab/0.ts", "hls/abc/0.ts", "hls/ab.ts", "hlsx/0.ts"]:
        await store.put_file(key, source)
    assert await store.list_keys("hls/ab") == ["hls/ab/0.ts"]
    assert await store.list_keys("hls") == ["hls/ab.ts", "hls/ab/0.ts", "hls/abc/0.ts"]
    assert await store.list_keys("hls/ab.ts") == []  # a file is not a folder
    assert await store.list_keys("nothing/here") == []
    assert await store.delete_prefix("hls/ab") == 1
    assert await store.list_keys("") == ["hls/ab.ts", "hls/abc/0.ts", "hlsx/0.ts"]
    assert await store.delete_prefix("hls/ab.ts") == 0
    assert await store.delete_prefix("nothing/here") == 0
    assert await store.list_keys("") == ["hls/ab.ts", "hls/abc/0.ts", "hlsx/0.ts"]


async def test_delete_prefix_refuses_everything(store: BlobStore, work: Path) -> None:
    await store.put_file("a/b.ts", _file(work, "x.ts", b"x"))
    for prefix in ("", "/"):
        with pytest.raises(errors.InvalidInput, match="name a prefix"):
            await store.delete_prefix(prefix)
    assert await store.list_keys("") == ["a/b.ts"]


async def test_list_keys_is_sorted(store: BlobStore, work: Path) -> None:
    source = _file(work, "x.ts", b"x")
    keys = ["b/2", "a/10", "a/9", "c", "a/1/z", "B"]
    for key in keys:
        await store.put_file(key, source)
    assert await store.list_keys("") == sorted(keys)


# -- local_path and close -------------------------------------------------------------------------


async def test_local_path_is_none_or_the_file(store: BlobStore, work: Path) -> None:
    await store.put_file("hls/a/0.ts", _file(work, "x.ts", b"payload"))
    path = store.local_path("hls/a/0.ts")
    if isinstance(store, LocalBlobStore):
        assert path is not None and path.read_bytes() == b"payload"
    else:
        assert path is None


async def test_close_twice(store: BlobStore) -> None:
    await store.close()
    await store.close()


async def test_ping_answers_before_and_after_writes(store: BlobStore, work: Path) -> None:
    await store.ping()
    await store.put_file("a.ts", _file(work, "a.ts", b"x"))
    await store.ping()


# -- the local folder -----------------------------------------------------------------------------


async def test_local_layout_on_disk(tmp_path: Path, work: Path) -> None:
    store = LocalBlobStore(tmp_path / "media")
    assert not store.root.exists()  # created by the first write, not by opening
    await store.put_tree("hls/abcd1234", _staged_ladder(work))
    await store.put_file("hls/abcd1234/720p0/0.ts", _file(work, "x.ts", b"again"))
    assert store.local_path("hls/abcd1234/720p0/0.ts") == (
        tmp_path / "media" / "hls" / "abcd1234" / "720p0" / "0.ts"
    )
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*"))
    assert [f for f in files if base.TEMP_PREFIX in f] == []


async def test_local_put_tree_links_or_copies(tmp_path: Path, work: Path) -> None:
    store = LocalBlobStore(tmp_path / "media")
    staged = _staged_ladder(work)
    await store.put_tree("hls/x", staged)
    published = store.local_path("hls/x/720p0/0.ts")
    assert published is not None
    # Same file system here, so the publication is a hard link of the staged file.
    assert published.stat().st_ino == (staged / "720p0" / "0.ts").stat().st_ino
    # Removing the staging folder leaves the published files whole.
    for path in sorted(staged.rglob("*"), reverse=True):
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    assert published.read_bytes() == b"segment-0" * 100


async def test_local_put_file_copies(tmp_path: Path, work: Path) -> None:
    store = LocalBlobStore(tmp_path / "media")
    source = _file(work, "x.ts", b"x")
    await store.put_file("a/x.ts", source)
    published = store.local_path("a/x.ts")
    assert published is not None and published.stat().st_ino != source.stat().st_ino


async def test_local_delete_prefix_removes_empty_folders(tmp_path: Path, work: Path) -> None:
    store = LocalBlobStore(tmp_path / "media")
    await store.put_tree("hls/abcd1234", _staged_ladder(work))
    await store.put_file("thumbs/a.jpg", _file(work, "a.jpg", b"jpg"))
    # A write that died half-way leaves a temporary file: never listed, removed with its folder.
    (store.root / "hls" / "abcd1234" / f"{base.TEMP_PREFIX}dead").write_bytes(b"half")
    assert await store.list_keys("hls") == LADDER_KEYS
    assert await store.delete_prefix("hls/abcd1234") == len(LADDER_KEYS)
    assert not (store.root / "hls").exists()
    assert sorted(p.name for p in store.root.iterdir()) == ["thumbs"]
    assert store.root.exists()


async def test_local_root_and_relative_paths(tmp_path: Path) -> None:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        store = LocalBlobStore(Path("media"))
    finally:
        os.chdir(cwd)
    assert store.root == tmp_path / "media"


# -- the factory ----------------------------------------------------------------------------------


def test_open_blob_store_local(tmp_path: Path) -> None:
    for location in (str(tmp_path / "m"), f"file://{tmp_path}/m", f"file://localhost{tmp_path}/m"):
        store = open_blob_store(location)
        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "m"
    spaced = open_blob_store(f"file://{tmp_path}/with%20space")
    assert isinstance(spaced, LocalBlobStore) and spaced.root == tmp_path / "with space"


def test_open_blob_store_memory() -> None:
    first, second = open_blob_store("memory://"), open_blob_store("memory://")
    assert isinstance(first, MemoryBlobStore) and first is not second


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("s3://key:secret@/media", "no valid bucket"),
        ("s3+https://key:secret@host", "no valid bucket"),
        ("s3+https://key:secret@host/bucket/a//b", "prefix is not valid"),
        ("s3://key:@bucket/media", "credentials are incomplete"),
        ("s3://bucket/media?endpoint=ftp://secret@host", "http:// or https://"),
        ("s3://bucket/media?colour=1", "unknown S3 location parameter"),
        ("ftp://host/media", "unsupported blob store URL scheme 'ftp'"),
        ("file://otherhost/srv/media", "on this machine"),
        ("file:relative/media", "absolute path"),
        ("memory://named", "takes no location"),
    ],
)
def test_open_blob_store_refuses(location: str, message: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=message) as caught:
        open_blob_store(location)
    assert "secret" not in str(caught.value)


def test_open_blob_store_s3() -> None:
    store = open_blob_store("s3+https://AK%2F1:S%2BK@s3.example.com:9000/media-bucket/pre/fix")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("media-bucket", "pre/fix")
    assert "S+K" not in repr(store) and "AK" not in repr(store)
    defaults = S3Config(
        endpoint_url="http://127.0.0.1:9000", access_key_id="a", secret_access_key="b"
    )
    plain = open_blob_store("s3://Bucket.Name/", s3_defaults=defaults)
    assert isinstance(plain, S3BlobStore)
    assert (plain.bucket, plain.prefix) == ("Bucket.Name", "")


# -- S3: what only a bucket does ------------------------------------------------------------------


async def test_s3_keys_live_under_the_prefix(
    moto: s3server.MotoServer, tmp_path: Path, work: Path
) -> None:
    bucket = moto.new_bucket()
    moto.write(bucket, "elsewhere/x.ts", b"not ours")
    moto.write(bucket, "media/x/odd//key", b"not addressable")
    store = S3BlobStore(bucket, prefix="media/x", config=s3_config(moto))
    try:
        await store.put_tree("hls/abcd1234", _staged_ladder(work))
        assert moto.keys(bucket) == sorted(
            ["elsewhere/x.ts", "media/x/odd//key", *(f"media/x/{key}" for key in LADDER_KEYS)]
        )
        assert await store.list_keys("") == LADDER_KEYS
        client = moto.client()
        head = client.head_object(Bucket=bucket, Key="media/x/hls/abcd1234/index.m3u8")
        client.close()
        assert head["ContentType"] == "application/vnd.apple.mpegurl"
        assert await store.delete_prefix("hls") == len(LADDER_KEYS)
        assert moto.keys(bucket) == ["elsewhere/x.ts", "media/x/odd//key"]
    finally:
        await store.close()


async def test_s3_large_file_goes_in_parts(moto: s3server.MotoServer, work: Path) -> None:
    data = os.urandom(9 * 1024 * 1024)  # above boto3's 8 MiB multipart threshold
    store = S3BlobStore(moto.new_bucket(), config=s3_config(moto))
    try:
        await store.put_file("big.mp4", _file(work, "big.mp4", data))
        assert await store.size_bytes("big.mp4") == len(data)
        await store.get_file("big.mp4", work / "back.mp4")
        assert (work / "back.mp4").read_bytes() == data
    finally:
        await store.close()


async def test_s3_missing_bucket_is_a_configuration_error(
    moto: s3server.MotoServer, work: Path
) -> None:
    store = S3BlobStore("no-such-bucket-here", config=s3_config(moto))
    try:
        with pytest.raises(errors.ConfigurationError, match="'no-such-bucket-here' does not exist"):
            await store.put_file("a.ts", _file(work, "a.ts", b"x"))
        with pytest.raises(errors.ConfigurationError, match="does not exist"):
            await store.list_keys("")
    finally:
        await store.close()


async def test_s3_ping_names_a_missing_bucket_and_create_bucket_makes_it(
    moto: s3server.MotoServer, work: Path
) -> None:
    import uuid

    name = f"later-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore(name, prefix="media", config=s3_config(moto))
    try:
        with pytest.raises(
            errors.NotFound, match=f"the bucket '{name}' does not exist at 127.0.0.1"
        ):
            await store.ping()
        await store.create_bucket()
        await store.ping()
        await store.create_bucket()  # already ours: nothing happens
        await store.put_file("a.ts", _file(work, "a.ts", b"x"))
        assert moto.keys(name) == ["media/a.ts"]
    finally:
        await store.close()


async def test_s3_ping_of_an_unreachable_endpoint_is_unavailable() -> None:
    from tests import processes

    config = S3Config(
        endpoint_url=f"http://127.0.0.1:{processes.free_port()}",
        access_key_id="a",
        secret_access_key="b",
    )
    store = S3BlobStore("bucket", config=config)
    try:
        with pytest.raises(errors.Unavailable, match="could not be reached"):
            await store.ping()
    finally:
        await store.close()


async def test_local_ping_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    (tmp_path / "media").write_text("not a folder")
    with pytest.raises(errors.ConfigurationError, match="is not a folder"):
        await LocalBlobStore(tmp_path / "media").ping()
    await LocalBlobStore(tmp_path / "not" / "yet").ping()  # made by the first write


async def test_s3_unreachable_endpoint_is_unavailable(work: Path) -> None:
    from tests import processes

    config = S3Config(
        endpoint_url=f"http://127.0.0.1:{processes.free_port()}",
        access_key_id="a",
        secret_access_key="b",
        max_attempts=1,
        connect_timeout_s=1,
    )
    store = S3BlobStore("bucket", config=config)
    try:
        with pytest.raises(errors.Unavailable, match="could not be reached"):
            await store.put_file("a.ts", _file(work, "a.ts", b"x"))
    finally:
        await store.close()


async def test_a_local_move_is_a_rename(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "media")
    source = _file(tmp_path, "big.mp4", b"x" * 1000)
    inode = source.stat().st_ino
    await store.move_file("asset/p/video", source)
    assert (tmp_path / "media/asset/p/video").stat().st_ino == inode, "no copy was made"


async def test_large_files_go_to_s3_as_streamed_multipart_uploads(
    moto: s3server.MotoServer, tmp_path: Path
) -> None:
    bucket = moto.new_bucket()
    store = S3BlobStore(bucket, config=s3_config(moto))
    try:
        big = _file(tmp_path, "big.mp4", bytes(range(256)) * (20 * 4096 + 7))  # 20 MiB and a bit
        await store.move_file("asset/p/video", big)
        await store.put_file("asset/p/small.m3u8", _file(tmp_path, "s.m3u8", b"#EXTM3U\n"))
    finally:
        await store.close()
    head = moto.client().head_object(Bucket=bucket, Key="asset/p/video")
    assert head["ETag"].strip('"').endswith("-3"), "three 8 MiB parts"
    assert head["ContentLength"] == 256 * (20 * 4096 + 7)
    assert moto.read(bucket, "asset/p/video") == bytes(range(256)) * (20 * 4096 + 7)
    small = moto.client().head_object(Bucket=bucket, Key="asset/p/small.m3u8")
    assert "-" not in small["ETag"] and small["ContentType"] == "application/vnd.apple.mpegurl"
