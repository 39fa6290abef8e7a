"""The challenge's token shard format (CATALOGUE §13), read and written with numpy only.

A shard is 256 little-endian int32 header words (magic 20240520, version 1, token count, zeros) followed by
that many little-endian uint16 values. Token shards and CaseOps byte sidecars share the layout.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from pgaudit.errors import InputError

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_WORDS = 256
HEADER_BYTES = HEADER_WORDS * 4
SIDECAR_MARKER = "_bytes_"  # fineweb_val_bytes_*.bin also matches the fineweb_val_*.bin glob


class ShardFormatError(InputError):
    """A file that does not follow the shard format; the message names the field that is wrong."""


def read_header(path: Path) -> int:
    """Validate the header and the file size; return the token count."""
    try:
        size = path.stat().st_size
        header = np.fromfile(path, dtype="<i4", count=HEADER_WORDS)
    except OSError as exc:
        raise InputError(str(path), f"cannot read shard: {exc.strerror or exc}") from None
    if header.size != HEADER_WORDS:
        raise ShardFormatError(
            str(path), f"shard is {size} bytes, shorter than the {HEADER_BYTES}-byte header"
        )
    if int(header[0]) != SHARD_MAGIC:
        raise ShardFormatError(str(path), f"bad shard magic {int(header[0])} (expected {SHARD_MAGIC})")
    if int(header[1]) != SHARD_VERSION:
        raise ShardFormatError(
            str(path), f"unsupported shard version {int(header[1])} (expected {SHARD_VERSION})"
        )
    count = int(header[2])
    expected = HEADER_BYTES + 2 * count
    if count < 0 or size != expected:
        raise ShardFormatError(
            str(path),
            f"shard size mismatch: header says {count} tokens ({expected} bytes), file has {size} bytes",
        )
    return count


def read_shard(path: str | Path) -> np.ndarray:
    """The shard's values as a uint16 array, after checking magic, version and size."""
    path = Path(path)
    count = read_header(path)
    values = np.fromfile(path, dtype="<u2", count=count, offset=HEADER_BYTES)
    if values.size != count:  # the file changed between stat and read
        raise ShardFormatError(str(path), f"short read: {values.size} of {count} tokens")
    return values.astype(np.uint16, copy=False)


def write_shard(path: str | Path, values: np.ndarray) -> None:
    """Write values (all in 0..65535) in the official format."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError("a shard holds a 1-D array")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFF):
        raise ValueError("shard values must fit in uint16")
    header = np.zeros(HEADER_WORDS, dtype="<i4")
    header[:3] = (SHARD_MAGIC, SHARD_VERSION, arr.size)
    with open(path, "wb") as fh:
        fh.write(header.tobytes())
        fh.write(arr.astype("<u2").tobytes())


def expand(pattern: str, *, exclude_sidecars: bool = False) -> list[Path]:
    """Files matching a glob, in the sorted order the baseline concatenates them."""
    paths = [Path(p) for p in sorted(glob.glob(pattern))]
    if exclude_sidecars:
        paths = [p for p in paths if SIDECAR_MARKER not in p.name]
    return paths


def read_many(paths: list[Path]) -> np.ndarray:
    """Concatenate shards in the given order."""
    if not paths:
        return np.zeros(0, dtype=np.uint16)
    return np.concatenate([read_shard(p) for p in paths])
