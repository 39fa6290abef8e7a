"""The shard format of CATALOGUE §13: round trip, and clear errors for each broken field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pgaudit import shards


def _raw_shard(path: Path, header: list[int], body: bytes) -> Path:
    words = np.zeros(256, dtype="<i4")
    words[: len(header)] = header
    path.write_bytes(words.tobytes() + body)
    return path


def test_round_trip_keeps_values_and_layout(tmp_path: Path) -> None:
    values = np.array([0, 1, 2, 1023, 65535, 7], dtype=np.uint16)
    path = tmp_path / "fineweb_val_000000.bin"
    shards.write_shard(path, values)
    assert path.stat().st_size == 1024 + 2 * values.size
    header = np.fromfile(path, dtype="<i4", count=3)
    assert header.tolist() == [20240520, 1, values.size]
    np.testing.assert_array_equal(shards.read_shard(path), values)


def test_empty_shard_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    shards.write_shard(path, np.zeros(0, dtype=np.uint16))
    assert shards.read_shard(path).size == 0


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        ([20240521, 1, 2], b"\0" * 4, "bad shard magic 20240521"),
        ([20240520, 2, 2], b"\0" * 4, "unsupported shard version 2"),
        ([20240520, 1, 3], b"\0" * 4, "shard size mismatch: header says 3 tokens"),
        ([20240520, 1, 1], b"\0" * 4, "shard size mismatch: header says 1 tokens"),
    ],
)
def test_bad_header_or_size_is_rejected(tmp_path: Path, header: list[int], body: bytes, message: str) -> None:
    path = _raw_shard(tmp_path / "bad.bin", header, body)
    with pytest.raises(shards.ShardFormatError, match=message) as info:
        shards.read_shard(path)
    assert str(path) in str(info.value)


def test_truncated_header_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(shards.ShardFormatError, match="shorter than the 1024-byte header"):
        shards.read_shard(path)


def test_values_outside_uint16_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint16"):
        shards.write_shard(tmp_path / "x.bin", np.array([70000]))


def test_expand_sorts_and_can_leave_out_byte_sidecars(tmp_path: Path) -> None:
    for name in ("fineweb_val_000001.bin", "fineweb_val_000000.bin", "fineweb_val_bytes_000000.bin"):
        shards.write_shard(tmp_path / name, np.array([1], dtype=np.uint16))
    pattern = str(tmp_path / "fineweb_val_*.bin")
    assert [p.name for p in shards.expand(pattern)] == [
        "fineweb_val_000000.bin",
        "fineweb_val_000001.bin",
        "fineweb_val_bytes_000000.bin",
    ]
    assert [p.name for p in shards.expand(pattern, exclude_sidecars=True)] == [
        "fineweb_val_000000.bin",
        "fineweb_val_000001.bin",
    ]


def test_read_many_concatenates_in_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    shards.write_shard(a, np.array([1, 2], dtype=np.uint16))
    shards.write_shard(b, np.array([3], dtype=np.uint16))
    assert shards.read_many([a, b]).tolist() == [1, 2, 3]
