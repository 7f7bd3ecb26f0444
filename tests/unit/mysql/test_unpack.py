"""XbstreamUnpacker on synthetic xbstreams, checked against what the real `mbstream -x` does.

The unpacker replaces `mbstream -x` for MariaDB restores (direct I/O, fsync of every file and
directory); these tests hold it to the same output, the same refusals, and its durability.
"""

from __future__ import annotations

import errno
import hashlib
import io
import mmap
import os
import random
import shutil
import struct
import subprocess
import tempfile
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from database_backup.catalog import BackupMetadata
from database_backup.mysql.errors import RestoreError
from database_backup.mysql.flavour import MARIADB, MYSQL, for_name
from database_backup.mysql.physical import unpack as unpack_module
from database_backup.mysql.physical.extract import _unpack as extract_unpack
from database_backup.mysql.physical.extract import unpacks_itself
from database_backup.mysql.physical.unpack import (
    BUFFER_SIZE,
    MAGIC,
    READ_SIZE,
    UnpackError,
    XbstreamUnpacker,
    unpack,
)
from database_backup.mysql.toolrun import ToolLog
from database_backup.stream import IntegrityError
from tests.threads import lingering_threads

from .xbstream_data import Dribble, eof_chunk, full_backup_record, payload_chunk

MiB = 1 << 20


# -- building streams ------------------------------------------------------------------------


_payload = payload_chunk
_eof = eof_chunk


def _file(path: str, data: bytes, sizes: list[int] | None = None) -> bytes:
    """The chunks of one file: payloads of `sizes` (cycled), then its end-of-file chunk."""
    return b"".join(_payloads(path, data, sizes)) + _eof(path)


def _payloads(path: str, data: bytes, sizes: list[int] | None = None) -> list[bytes]:
    steps = sizes or [len(data) or 1]
    out: list[bytes] = []
    at = 0
    i = 0
    while at < len(data):
        size = steps[i % len(steps)]
        out.append(_payload(path, data[at : at + size], at))
        at += size
        i += 1
    return out


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - reproducible test data


ODD_SIZES = [1, 4095, 4097, 65_537, 3, 12_289, 511, 131_071]


def _sample() -> tuple[bytes, dict[str, bytes]]:
    """A stream holding every shape of file the brief lists, and the files it holds."""
    files = {
        "ibdata1": _data(4096 * 75, 1),  # exactly 4096*k, one chunk
        "odd.bin": _data(5 * MiB + 4097, 2),  # > READ_SIZE, not a multiple of 4096, odd chunks
        "tiny": b"0123456789",  # shorter than one block: the padded tail only
        "empty": b"",  # end-of-file chunk only
        "shop/orders.ibd": _data(3 * 4096 + 17, 3),  # in a directory
        "x/one": _data(200_000, 4),  # interleaved with x/two
        "x/two": _data(90_001, 5),
        "xtrabackup_checkpoints": b"backup_type = full-backuped\nto_lsn = 44404\n",
    }
    one = _payloads("x/one", files["x/one"], [4099, 8192, 1])
    two = _payloads("x/two", files["x/two"], [7, 30_000])
    interleaved: list[bytes] = []
    for i in range(max(len(one), len(two))):
        interleaved.extend(one[i : i + 1] + two[i : i + 1])
    stream = b"".join(
        [
            _file("ibdata1", files["ibdata1"]),
            _file("odd.bin", files["odd.bin"], ODD_SIZES * 8 + [1 << 20]),
            _file("tiny", files["tiny"]),
            _eof("empty"),
            _file("shop/orders.ibd", files["shop/orders.ibd"], [4096, 4095, 4098]),
            *interleaved,
            _eof("x/two"),
            _eof("x/one"),
            _file("xtrabackup_checkpoints", files["xtrabackup_checkpoints"]),
        ]
    )
    return stream, files


class _Full:
    """Returns exactly what is asked (4 MiB reads: what the decoder hands over)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads: list[int] = []

    def read(self, n: int = -1) -> bytes:
        self.reads.append(n)
        return self._data.read(n)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under `root`: a file's bytes, None for a directory (symlinks refused)."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        assert not path.is_symlink(), name
        out[name] = None if path.is_dir() else path.read_bytes()
    return out


def _mbstream(stream: bytes, target: Path) -> None:
    tool = shutil.which("mbstream")
    assert tool, "mbstream comes with mariadb-backup (scripts/install-system-deps.sh)"
    target.mkdir()
    subprocess.run([tool, "-x", "-C", str(target)], input=stream, check=True)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _accepts_direct_io(directory: Path) -> bool:
    probe = directory / ".direct-probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    os.close(fd)
    probe.unlink()
    return True


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, dict[str, bytes]]:
    return _sample()


@pytest.fixture(scope="module")
def reference(
    sample: tuple[bytes, dict[str, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes | None]:
    """What the real `mbstream -x` extracts from the sample stream."""
    target = tmp_path_factory.mktemp("mbstream") / "out"
    _mbstream(sample[0], target)
    return _tree(target)


def _patch_open(monkeypatch: pytest.MonkeyPatch, *, refuse_direct: bool) -> list[tuple[str, int]]:
    """Record the (path, flags) of every file created; refuse O_DIRECT as tmpfs did."""
    real_open = os.open
    seen: list[tuple[str, int]] = []

    def patched(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_CREAT:
            seen.append((str(path), flags))
        if refuse_direct and flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", patched)
    return seen


def _record_fsync(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every descriptor fsynced (read before the unpacker closes it)."""
    real_fsync = os.fsync
    synced: list[str] = []

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return synced


# -- the same files as mbstream ---------------------------------------------------------------


def test_reference_is_what_the_sample_holds(
    sample: tuple[bytes, dict[str, bytes]], reference: dict[str, bytes | None]
):
    """The synthetic stream is valid for the real tool, which extracts exactly its files."""
    assert {k: v for k, v in reference.items() if v is not None} == sample[1]
    assert sorted(k for k, v in reference.items() if v is None) == ["shop", "x"]


@pytest.mark.parametrize("source", ["4MiB", *(f"dribble{seed}" for seed in range(4))])
def test_files_are_identical_to_mbstream(
    source: str,
    sample: tuple[bytes, dict[str, bytes]],
    reference: dict[str, bytes | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    stream = sample[0]
    direct = _accepts_direct_io(tmp_path)
    opened_flags = _patch_open(monkeypatch, refuse_direct=False)
    reader = _Full(stream) if source == "4MiB" else Dribble(stream, int(source[-1]))
    target = tmp_path / "out"
    target.mkdir()
    fds = _open_fds()

    unpacker = XbstreamUnpacker(target)
    consumed = unpacker.unpack(reader)

    assert _tree(target) == reference  # names, directories and every byte
    assert consumed == len(stream)
    assert unpacker.files_written == len(sample[1])
    assert unpacker.bytes_written == sum(len(data) for data in sample[1].values())
    assert _open_fds() == fds
    if isinstance(reader, _Full):
        assert max(reader.reads) == READ_SIZE
    # the direct path really ran where the filesystem allows it
    assert len(opened_flags) == len(sample[1])
    assert all(bool(flags & os.O_DIRECT) == direct for _, flags in opened_flags)


def test_files_are_identical_without_direct_io(
    sample: tuple[bytes, dict[str, bytes]],
    reference: dict[str, bytes | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """A filesystem refusing O_DIRECT (tmpfs before Linux 6.6): ordinary writes, same files."""
    opened = _patch_open(monkeypatch, refuse_direct=True)
    target = tmp_path / "out"
    target.mkdir()

    unpacker = XbstreamUnpacker(target)
    unpacker.unpack(Dribble(sample[0], 11))

    assert _tree(target) == reference
    direct = [path for path, flags in opened if flags & os.O_DIRECT]
    assert direct == ["ibdata1"]  # asked once, then remembered
    assert len(opened) == len(sample[1]) + 1
    assert unpacker.files_written == len(sample[1])


@pytest.mark.parametrize("refuse_direct", [False, True], ids=["direct", "buffered"])
def test_bytes_written_counts_every_payload_byte(
    refuse_direct: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Buffered writes count too (before a6c7c59 `_write` returned first: 0, 8 expected)."""
    _patch_open(monkeypatch, refuse_direct=refuse_direct)
    target = tmp_path / "out"
    target.mkdir()
    unpacker = XbstreamUnpacker(target)

    unpacker.unpack(io.BytesIO(_file("f", b"12345678", [3]) + _eof("g")))

    assert unpacker.bytes_written == 8
    assert unpacker.files_written == 2


def test_files_are_identical_on_dev_shm(
    sample: tuple[bytes, dict[str, bytes]], reference: dict[str, bytes | None]
):
    """On tmpfs for real: O_DIRECT refused before Linux 6.6, accepted since; same files."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    assert any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts)
    base = Path(tempfile.mkdtemp(prefix="test-unpack-", dir="/dev/shm"))
    try:
        target = base / "out"
        target.mkdir()
        unpack(io.BytesIO(sample[0]), target)
        assert _tree(target) == reference
    finally:
        shutil.rmtree(base)


def test_nested_directories_are_made(tmp_path: Path):
    """Every missing directory of a path is made.

    Checked against bytes, not mbstream: mbstream 10.11 makes only the last directory, and
    for `a/b/c.ibd` in an empty target prints an error, writes nothing and still exits 0.
    """
    data = _data(3 * 4096 + 17, 6)
    stream = _file("a/b/c.ibd", data, [4096, 4095, 4098]) + _file("a/d", b"beside")
    target = tmp_path / "out"
    target.mkdir()

    unpack(Dribble(stream, 3), target)

    assert _tree(target) == {"a": None, "a/b": None, "a/b/c.ibd": data, "a/d": b"beside"}


# -- durability ------------------------------------------------------------------------------


def test_every_file_and_directory_is_fsynced_before_unpack_returns(
    sample: tuple[bytes, dict[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The durability finding: the staged copy is on disk before the datadir swap.

    The old path (`mbstream -x`) never fsynced a file or a directory: a power cut after the
    swap could lose the restored data. Each file is synced at its end-of-file chunk (in the
    stream's order of those chunks), then every directory deepest first, the target last.
    """
    synced = _record_fsync(monkeypatch)
    target = tmp_path / "out"
    target.mkdir()

    unpack(io.BytesIO(sample[0] + _file("a/b/c.ibd", b"nested")), target)

    eof_order = [
        "ibdata1",
        "odd.bin",
        "tiny",
        "empty",
        "shop/orders.ibd",
        "x/two",
        "x/one",
        "xtrabackup_checkpoints",
        "a/b/c.ibd",
    ]
    dirs = ["a/b", "a", "shop", "x"]
    assert synced[: len(eof_order)] == [str(target / name) for name in eof_order]
    assert sorted(synced[len(eof_order) : -1]) == sorted(str(target / d) for d in dirs)
    assert synced[len(eof_order)] == str(target / "a/b")  # deepest first
    assert synced[-1] == str(target)
    assert len(synced) == len(eof_order) + len(dirs) + 1


def test_files_are_fsynced_without_direct_io_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _patch_open(monkeypatch, refuse_direct=True)
    synced = _record_fsync(monkeypatch)
    target = tmp_path / "out"
    target.mkdir()

    unpack(io.BytesIO(_file("d/f", b"abc") + _eof("g")), target)

    assert synced == [str(target / "d/f"), str(target / "g"), str(target / "d"), str(target)]


# -- refusals --------------------------------------------------------------------------------

GOOD = _file("good", b"first file") + _eof("empty")


def _cases() -> Iterator[tuple[str, bytes, bytes, str]]:
    """(id, bytes before the bad chunk, the rest, what the message says besides the offset)."""
    chunk = _payload("bad", b"some payload bytes")
    name_end = len(MAGIC) + 6 + len(b"bad")
    flipped = bytearray(chunk)
    flipped[-3] ^= 0x01
    yield "bad magic", GOOD, b"XBSTCK02" + chunk[8:] + _eof("bad"), "no chunk magic"
    yield "crc mismatch", GOOD, bytes(flipped) + _eof("bad"), "checksum mismatch"
    yield (
        "out of order",
        GOOD + _payload("bad", b"12345"),
        _payload("bad", b"67890", offset=6) + _eof("bad"),
        "for offset 6, 5 expected",
    )
    yield "first chunk not at 0", GOOD, _payload("bad", b"x", offset=1) + _eof("bad"), "offset 1"
    yield "truncated header", GOOD, chunk[:10], "chunk header"
    yield "truncated path", GOOD, chunk[: name_end - 1], "the path"
    yield "truncated payload fields", GOOD, chunk[: name_end + 7], "cut"
    yield "truncated payload", GOOD, chunk[:-1], "the payload"
    yield (
        "file again after its end",
        GOOD,
        _payload("good", b"first file") + _eof("good"),
        "good appears twice",
    )
    yield "empty file twice", GOOD, _eof("empty"), "empty appears twice"
    yield (
        "unknown chunk type",
        GOOD,
        _payload("bad", b"sparse?", kind=b"S") + _eof("bad"),
        "chunk type 0x53",
    )
    yield "path too long", GOOD, _eof("d/" * 255 + "ab"), "path length 512"


CASES = list(_cases())


@pytest.mark.parametrize(
    ("before", "bad", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_damaged_stream_is_refused_with_its_offset(
    before: bytes, bad: bytes, says: str, tmp_path: Path
):
    target = tmp_path / "out"
    target.mkdir()
    fds = _open_fds()

    with pytest.raises(UnpackError) as caught:
        unpack(io.BytesIO(before + bad), target)

    assert f"at byte {len(before)}" in str(caught.value)
    assert says in str(caught.value)
    assert _open_fds() == fds  # every descriptor closed on the way out
    assert (target / "good").read_bytes() == b"first file"  # written before: left as it is


# Found by this test (failed before the fix): the message named no offset, unlike every other.
def test_missing_end_of_file_chunk_is_refused(tmp_path: Path):
    stream = GOOD + _payload("cut.ibd", b"no end chunk follows")
    target = tmp_path / "out"
    target.mkdir()

    with pytest.raises(UnpackError) as caught:
        unpack(io.BytesIO(stream), target)

    assert "truncated" in str(caught.value)
    assert "cut.ibd" in str(caught.value)
    assert f"at byte {len(stream)}" in str(caught.value)


def test_empty_stream_gives_an_empty_directory(tmp_path: Path):
    target = tmp_path / "out"
    target.mkdir()

    assert unpack(io.BytesIO(b""), target) == 0
    assert list(target.iterdir()) == []


def test_unknown_chunk_flagged_ignorable_is_skipped(tmp_path: Path):
    """Skipped, payload and all (mbstream 10.11 writes such a payload as a file of its own)."""
    stream = (
        _payload("f", b"head ")
        + _payload("extra", b"not ours to write", kind=b"X", flags=0x01)
        + _payload("f", b"tail", offset=5, flags=0x01)  # the flag on a known type changes nothing
        + _eof("f")
    )
    target = tmp_path / "out"
    target.mkdir()

    assert unpack(io.BytesIO(stream), target) == len(stream)
    assert _tree(target) == {"f": b"head tail"}


def test_longest_path_is_accepted(tmp_path: Path):
    path = "d" * 200 + "/" + "e" * 200 + "/" + "f" * 109  # 511 bytes, as mbstream allows
    target = tmp_path / "out"
    target.mkdir()

    unpack(io.BytesIO(_file(path, b"x")), target)

    assert (target / path).read_bytes() == b"x"


# -- paths -----------------------------------------------------------------------------------


def _listing(root: Path, target: Path) -> list[tuple[str, int, int]]:
    """Everything under `root` but `target`'s contents: names, sizes, modification times."""
    return sorted(
        (p.relative_to(root).as_posix(), p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
        if p != target and target not in p.parents
    )


@pytest.mark.parametrize(
    "path",
    [
        b"../x",
        b"ABSOLUTE",
        b"a/../../x",
        b"a//b",
        b"./a",
        b"",
        b"a\x00b",
        b"a/",
        b"a/.",
        b"..\xff",
    ],
    ids=[
        "dotdot",
        "absolute",
        "inner-dotdot",
        "double-slash",
        "dot",
        "empty",
        "nul",
        "trailing-slash",
        "trailing-dot",
        "not-utf8",
    ],
)
def test_path_leaving_the_target_is_refused(path: bytes, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "deep" / "out"
    target.mkdir(parents=True)
    # an absolute path into tmp_path rather than /etc: the same check, nothing at stake
    name = str(outside / "x").encode() if path == b"ABSOLUTE" else path
    before = _listing(tmp_path, target)

    with pytest.raises(UnpackError) as caught:
        unpack(io.BytesIO(GOOD + _payload(name, b"evil") + _eof(name)), target)

    assert f"at byte {len(GOOD)}" in str(caught.value)
    assert _listing(tmp_path, target) == before
    assert sorted(p.name for p in target.iterdir()) == ["empty", "good"]


@pytest.mark.parametrize(
    "stream",
    [_file("link", b"evil"), _eof("link")],
    ids=["file with data", "empty file"],
)
def test_symlinked_file_in_the_target_is_not_followed(tmp_path: Path, stream: bytes):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "out"
    target.mkdir()
    (target / "link").symlink_to(victim)

    with pytest.raises(UnpackError) as caught:
        unpack(io.BytesIO(stream), target)

    assert "link" in str(caught.value)
    assert victim.read_bytes() == b"precious"
    assert (target / "link").is_symlink()


# Found by this test (failed before the fix): a symlinked directory component was followed.
def test_symlinked_directory_in_the_target_is_not_followed(tmp_path: Path):
    """A symlink as a directory component: O_NOFOLLOW guards only the last component.

    Today `d/x` is created through target/d -> outside: mkdir of `d` meets the link, takes it
    for an existing directory, and openat follows it.
    """
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    (target / "d").symlink_to(outside)

    with pytest.raises(UnpackError):
        unpack(io.BytesIO(_file("d/x", b"evil")), target)

    assert list(outside.iterdir()) == []


# -- the disk failing ------------------------------------------------------------------------


@pytest.mark.parametrize("refuse_direct", [False, True], ids=["direct", "buffered"])
def test_disk_full_mid_file_is_an_unpack_error_naming_the_file(
    refuse_direct: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """ENOSPC after the first 8 KiB of a file: UnpackError, every descriptor closed."""
    real_pwrite = os.pwrite
    written: list[int] = []

    def filling(fd: int, data: bytes, offset: int) -> int:
        if sum(written) >= 8192:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done = real_pwrite(fd, data, offset)
        written.append(done)
        return done

    _patch_open(monkeypatch, refuse_direct=refuse_direct)
    monkeypatch.setattr(os, "pwrite", filling)
    target = tmp_path / "out"
    target.mkdir()
    fds = _open_fds()

    with pytest.raises(UnpackError) as caught:
        unpack(io.BytesIO(_file("data/big.ibd", _data(64 * 1024, 9), [4096])), target)

    assert str(caught.value) == "writing data/big.ibd failed: No space left on device"
    assert _open_fds() == fds


# Found by this test (failed [directory] before the fix): a directory's fsync error escaped as a
# bare OSError (restore.py wrapped "[Errno 5] Input/output error", naming no path).
@pytest.mark.parametrize("what", ["file", "directory"])
def test_failed_fsync_is_an_unpack_error(
    what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """EIO from fsync (a file's, or a directory's at the end): UnpackError, not a raw OSError.

    extract.py turns UnpackError into "cannot be unpacked ...; the current data was not
    touched"; any other exception escapes that message.
    """
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{fd}") == (what == "directory"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    target = tmp_path / "out"
    target.mkdir()
    fds = _open_fds()

    with pytest.raises(UnpackError) as caught:
        unpack(io.BytesIO(_file("db/t.ibd", b"rows")), target)

    assert "Input/output error" in str(caught.value)
    assert _open_fds() == fds


class _Failing:
    """The stream up to `at`, then the decoder's verdict (an integrity error) on the rest."""

    def __init__(self, data: bytes, at: int) -> None:
        self._data = io.BytesIO(data[:at])

    def read(self, n: int = -1) -> bytes:
        piece = self._data.read(min(n, 5000))
        if not piece:
            raise IntegrityError("compressed data is corrupt in frame 3")
        return piece


def test_a_failing_source_propagates_and_leaves_no_writer_thread(tmp_path: Path):
    """The source's own error reaches the caller as it is, nothing left behind.

    extract.py reports the IntegrityError as a failed verification; every descriptor is
    closed and the writer thread has ended.
    """
    stream, _ = _sample()
    target = tmp_path / "out"
    target.mkdir()
    fds = _open_fds()

    with pytest.raises(IntegrityError, match="frame 3"):
        unpack(_Failing(stream, 5 * MiB), target)

    assert _open_fds() == fds
    assert lingering_threads("direct-write") == []


def test_a_finished_unpack_leaves_no_writer_thread(tmp_path: Path):
    target = tmp_path / "out"
    target.mkdir()

    unpack(io.BytesIO(_file("f", _data(3 * MiB + 5, 8))), target)

    assert lingering_threads("direct-write") == []


# -- memory ----------------------------------------------------------------------------------


class _BigChunk:
    """One chunk of `size` payload bytes, generated as it is read (the test holds no copy).

    Each read returns one piece: the header, up to `n` bytes of payload, or the end chunk
    (a decoder hands over whole 4 MiB frames the same way).
    """

    BLOCK = bytes(range(256)) * 16384  # 4 MiB

    def __init__(self, name: str, size: int) -> None:
        assert size % len(self.BLOCK) == 0
        crc = 0
        for _ in range(size // len(self.BLOCK)):
            crc = zlib.crc32(self.BLOCK, crc)
        raw = name.encode()
        fields = struct.pack("<QQI", size, 0, crc)
        self._pieces = [MAGIC + struct.pack("<BBI", 0, ord("P"), len(raw)) + raw + fields]
        self._payload_left = size
        self._tail = _eof(name)
        self.total = len(self._pieces[0]) + size + len(self._tail)
        self.largest_read = 0

    def read(self, n: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, n)
        if self._pieces:
            return self._pieces.pop()
        if self._payload_left:
            done = len(self.BLOCK) - self._payload_left % len(self.BLOCK)
            piece = self.BLOCK[done % len(self.BLOCK) :][:n]
            self._payload_left -= len(piece)
            return piece
        tail, self._tail = self._tail, b""
        return tail


def test_a_64_mib_chunk_unpacks_through_the_constant_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Memory stays bounded by the reads and the aligned buffers, whatever a chunk's size.

    Python allocations are traced while unpacking (mmap buffers are not Python objects):
    two 4 MiB reads at most (the one being unpacked, the next being read), not 64 MiB. The
    anonymous mappings made are the writer's two BUFFER_SIZE buffers (and a block for a
    file's unaligned tail), however large the chunk.
    """
    size = 64 * MiB
    source = _BigChunk("big.ibd", size)
    taken: list[int] = []
    real_take: Callable[..., memoryview] = unpack_module._Input.take

    def recording_take(self: object, limit: int) -> memoryview:
        piece = real_take(self, limit)
        taken.append(len(piece))
        return piece

    real_mmap = mmap.mmap
    mapped: list[int] = []

    def recording_mmap(fileno: int, length: int, *args: Any, **kwargs: Any) -> mmap.mmap:
        mapped.append(length)
        return real_mmap(fileno, length, *args, **kwargs)

    monkeypatch.setattr(unpack_module._Input, "take", recording_take)
    monkeypatch.setattr(mmap, "mmap", recording_mmap)
    target = tmp_path / "out"
    target.mkdir()
    unpacker = XbstreamUnpacker(target)
    tracemalloc.start()

    unpacker.unpack(source)

    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert mapped == [BUFFER_SIZE, BUFFER_SIZE] == [8 * MiB] * 2
    assert max(taken) <= 4 * MiB == READ_SIZE
    assert source.largest_read == READ_SIZE
    assert peak < 3 * READ_SIZE, f"{peak / MiB:.1f} MiB"
    assert sum(taken) == source.total
    digest = hashlib.sha256()
    with (target / "big.ibd").open("rb") as handle:
        while block := handle.read(4 * MiB):
            digest.update(block)
    expected = hashlib.sha256()
    for _ in range(size // len(_BigChunk.BLOCK)):
        expected.update(_BigChunk.BLOCK)
    assert digest.hexdigest() == expected.hexdigest()


# -- who uses it -----------------------------------------------------------------------------


def _meta() -> BackupMetadata:
    return full_backup_record("20261129T070000Z")


def test_extract_reports_a_damaged_stream_as_untouched_data(tmp_path: Path):
    staging = tmp_path / "staging"
    staging.mkdir()
    log = ToolLog(tmp_path / "restore.log")
    stream = GOOD + _payload("bad", b"x", offset=1)

    with pytest.raises(RestoreError) as caught:
        extract_unpack(io.BytesIO(stream), _meta(), staging, log)

    assert str(caught.value) == (
        "backup 20261129T070000Z cannot be unpacked (xbstream is damaged: chunk of bad at "
        f"byte {len(GOOD)} is for offset 1, 0 expected); the current data was not touched"
    )
    assert caught.value.data_changed is False
    assert "unpacking backup 20261129T070000Z failed: xbstream is damaged" in log.path.read_text()


def test_extract_reports_a_failed_verification(tmp_path: Path):
    staging = tmp_path / "staging"
    staging.mkdir()
    stream, _ = _sample()
    reader = cast(BinaryIO, _Failing(stream, MiB))  # it only needs read()
    said = r"failed verification \(.*frame 3\); the current data was not touched"

    with pytest.raises(RestoreError, match=said):
        extract_unpack(reader, _meta(), staging, ToolLog(tmp_path / "r.log"))


def test_extract_returns_the_raw_size_and_notes_it(tmp_path: Path):
    staging = tmp_path / "staging"
    staging.mkdir()
    log = ToolLog(tmp_path / "restore.log")

    assert extract_unpack(io.BytesIO(GOOD), _meta(), staging, log) == len(GOOD)
    assert f"unpacked {len(GOOD)} bytes into staging" in log.path.read_text()


def test_mariadb_restores_unpack_in_process_mysql_keeps_xbstream():
    assert unpacks_itself(for_name(MARIADB))
    assert not unpacks_itself(for_name(MYSQL))
