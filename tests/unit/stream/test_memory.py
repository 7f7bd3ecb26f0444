"""Memory stays bounded by a few chunks whatever the stream size.

A generated stream goes source -> zstd -> encrypt -> digest -> decrypt -> zstd -d at two
sizes (20 MiB and 200 MiB). tracemalloc sees every Python object the stages hold
(the bytes they buffer, including those zstandard and cryptography return); a second
test measures the peak RSS of a fresh process, which also covers zstd's own C buffers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

from database_backup.stream import decode, encode, generate_key
from database_backup.stream.parallel import FRAME_SIZE, default_workers

from .helpers import MIB, GeneratedSource, drain

# The stages hold a few 1 MiB chunks, plus the zstd frames in flight: the encoder keeps
# workers + 1 frames compressing, the decoder workers + 2; each frame is held raw and
# compressed (FRAME_SIZE + at most half of it for this data).
WORKERS = default_workers()
CHUNK_BOUND = 8 * MIB + (2 * WORKERS + 3) * (FRAME_SIZE + FRAME_SIZE // 2)
REPO = Path(__file__).resolve().parents[3]


def traced_peak(size: int) -> int:
    """Run ``size`` bytes through encode and decode; return tracemalloc's peak."""
    source = GeneratedSource(size)  # its fixed 4 MiB pool is made before tracing
    key = generate_key()
    tracemalloc.start()
    try:
        stored, digest = encode(source, compression_level=3, key=key)
        raw = decode(stored, key=key, compressed=True, expected_sha256=None, expected_size=None)
        length, sha256 = drain(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert length == size
    assert sha256 == source.hash.hexdigest()
    assert 0 < digest.bytes_read < size  # it was compressed, and all of it went through
    return peak


def test_python_memory_does_not_grow_with_the_stream() -> None:
    small = traced_peak(20 * MIB)
    large = traced_peak(200 * MIB)

    assert small < CHUNK_BOUND
    assert large < CHUNK_BOUND
    # How many frames are in flight at the peak depends on thread scheduling, so the two
    # peaks differ by up to a few frames; the bound, three times smaller than the large
    # stream, is what does not grow with it.
    assert CHUNK_BOUND < 200 * MIB // 3


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) pytest parent.
RSS_SCRIPT = """
import json, sys
from database_backup.stream import decode, encode, generate_key
from tests.unit.stream.helpers import GeneratedSource, drain
size = int(sys.argv[1])
source = GeneratedSource(size)
key = generate_key()
stored, _ = encode(source, compression_level=3, key=key)
raw = decode(stored, key=key, compressed=True, expected_sha256=None, expected_size=None)
length, sha256 = drain(raw)
print(json.dumps({
    "ok": length == size and sha256 == source.hash.hexdigest(),
    "maxrss_kib": next(
        int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")
    ),
}))
"""


def peak_rss(size: int) -> int:
    """Peak RSS (bytes) of a fresh process running ``size`` bytes through the stages."""
    result = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(size)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=REPO,
    )
    report = json.loads(result.stdout)
    assert report["ok"]
    return report["maxrss_kib"] * 1024


def test_process_memory_does_not_grow_with_the_stream() -> None:
    # zstd's multi-threaded buffers reach their steady size within the first tens of MB
    small = peak_rss(50 * MIB)
    large = peak_rss(200 * MIB)

    assert large - small < 16 * MIB, (small, large)
    assert large < 160 * MIB
