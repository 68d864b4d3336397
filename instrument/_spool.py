"""The spool: a durable, size-capped, append-only local log of records for Kafka topics.

It is the transport when no Kafka is configured (a collector reads it with a
:class:`SpoolReader`) and the buffer while Kafka is unreachable (the export
thread replays it, oldest first, when Kafka answers again). One process writes a
spool directory at a time (an ``flock`` on ``LOCK``); one consumer reads it.

On disk: segment files ``<20-digit number>.seg``, each a run of frames
``[u32 length][u32 crc32][u8 topic length][u16 key length][topic][key][value]``
(big-endian; length and crc cover what follows them), and a ``cursor.<name>``
file per consumer holding ``<segment> <offset>``. A frame is written with one
``write`` call, so a crashed process leaves at worst a torn last frame, which the
next writer cuts off (and logs). Fully consumed segments are deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

__all__ = ["Spool", "SpoolEntry", "SpoolReader", "open_spool"]

log = logging.getLogger("callscope.instrument.spool")

_FRAME = struct.Struct(">II")
_HEAD = struct.Struct(">BH")
_SUFFIX = ".seg"
DEFAULT_SEGMENT_BYTES = 8 << 20
_CHUNK = 1 << 20


class SpoolEntry(NamedTuple):
    topic: str
    key: bytes
    value: bytes


Position = tuple[int, int]  # segment number, byte offset


def _frame(topic: str, key: bytes, value: bytes) -> bytes:
    raw_topic = topic.encode()
    payload = _HEAD.pack(len(raw_topic), len(key)) + raw_topic + key + value
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _segments(directory: Path) -> list[int]:
    numbers = []
    for path in directory.glob("*" + _SUFFIX):
        with contextlib.suppress(ValueError):
            numbers.append(int(path.name[: -len(_SUFFIX)]))
    return sorted(numbers)


def _segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:020d}{_SUFFIX}"


def _scan(data: bytes, offset: int = 0) -> Iterator[tuple[int, SpoolEntry]]:
    """Valid frames from ``offset`` on: (offset after the frame, entry); stops at a bad one."""
    end = len(data)
    while offset + _FRAME.size <= end:
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if start + length > end or length < _HEAD.size:
            return
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            return
        topic_len, key_len = _HEAD.unpack_from(payload)
        body = _HEAD.size + topic_len + key_len
        if body > length:
            return
        topic = payload[_HEAD.size : _HEAD.size + topic_len].decode(errors="replace")
        key = payload[_HEAD.size + topic_len : body]
        offset = start + length
        yield offset, SpoolEntry(topic, key, payload[body:])


class Spool:
    """The writing side; :meth:`read` and :meth:`commit` replay it (cursor ``replay``)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 256 << 20,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise BlockingIOError(f"spool {self.directory} is in use by another process") from None
        segments = _segments(self.directory)
        self._active = segments[-1] if segments else 1
        self._repair(self._active)
        self._fd = os.open(
            _segment_path(self.directory, self._active), os.O_WRONLY | os.O_CREAT | os.O_APPEND
        )
        self._active_size = os.fstat(self._fd).st_size
        self._size = self._disk_size()
        self.replay = SpoolReader(self.directory, "replay")

    def _repair(self, number: int) -> None:
        """Cut a torn last frame left by a crash, so new frames follow valid ones."""
        path = _segment_path(self.directory, number)
        if not path.exists():
            return
        data = path.read_bytes()
        valid = 0
        for valid, _ in _scan(data):  # noqa: B007 (the last offset is what we want)
            pass
        if valid < len(data):
            log.warning(
                "callscope spool %s: cut %d bytes of a torn frame left by a crash",
                path, len(data) - valid,
            )  # fmt: skip
            os.truncate(path, valid)

    def _disk_size(self) -> int:
        total = 0
        for number in _segments(self.directory):
            with contextlib.suppress(FileNotFoundError):
                total += _segment_path(self.directory, number).stat().st_size
        return total

    @property
    def size_bytes(self) -> int:
        return self._size

    def append(self, entries: Iterable[tuple[str, bytes, bytes]]) -> int:
        """Write entries in order; returns how many fit under the size cap (the rest are not
        written, and the caller counts them as dropped)."""
        frames = [_frame(t, k, v) for t, k, v in entries]
        if not frames:
            return 0
        need = sum(map(len, frames))
        if self._size + need > self.max_bytes:
            self._size = self._disk_size()  # a consumer may have deleted segments
        room = self.max_bytes - self._size
        if need > room:
            kept = 0
            for frame in frames:
                if len(frame) > room:
                    break
                room -= len(frame)
                kept += 1
            frames = frames[:kept]
            need = sum(map(len, frames))
            if not frames:
                return 0
        data = b"".join(frames)
        os.write(self._fd, data)
        if self.fsync:
            os.fsync(self._fd)
        self._size += need
        self._active_size += need
        if self._active_size >= self.segment_bytes:
            self._roll()
        return len(frames)

    def _roll(self) -> None:
        os.close(self._fd)
        self._active += 1
        self._fd = os.open(
            _segment_path(self.directory, self._active), os.O_WRONLY | os.O_CREAT | os.O_APPEND
        )
        self._active_size = 0
        self._size = self._disk_size()

    def pending(self) -> bool:
        """Whether the replay cursor has entries left to read."""
        return self.replay.pending()

    def read(self, limit: int = 1000) -> list[SpoolEntry]:
        return self.replay.read(limit)

    def commit(self) -> None:
        """Persist the replay position; once the replay has caught up, start a new segment
        so the old one (and its bytes under the cap) can go."""
        if self._active_size and self.replay._position == (self._active, self._active_size):
            self._roll()
            self.replay._position = (self._active, 0)
        freed = self.replay.commit()
        self._size = max(0, self._size - freed)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self.replay.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


class SpoolReader:
    """Reads a spool in order from the cursor ``name``; :meth:`commit` after delivering.

    At-least-once: entries read but not committed are read again after a restart.
    """

    def __init__(self, directory: str | os.PathLike[str], name: str = "collector") -> None:
        self.directory = Path(directory)
        self._cursor_path = self.directory / f"cursor.{name}"
        self._committed: Position = self._load_cursor()
        self._position: Position = self._committed

    def _load_cursor(self) -> Position:
        try:
            segment, offset = self._cursor_path.read_text().split()
            return int(segment), int(offset)
        except (FileNotFoundError, ValueError):
            segments = _segments(self.directory)
            return (segments[0] if segments else 1, 0)

    def _chunk(self, number: int, offset: int, size: int) -> bytes:
        try:
            with open(_segment_path(self.directory, number), "rb") as f:
                f.seek(offset)
                return f.read(size)
        except FileNotFoundError:
            return b""

    def pending(self) -> bool:
        segment, offset = self._position
        segments = [n for n in _segments(self.directory) if n >= segment]
        for number in segments:
            path = _segment_path(self.directory, number)
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size > (offset if number == segment else 0):
                    return True
        return False

    def read(self, limit: int = 1000) -> list[SpoolEntry]:
        """Up to ``limit`` entries after the last read; may cross into later segments."""
        out: list[SpoolEntry] = []
        segment, offset = self._position
        segments = [n for n in _segments(self.directory) if n >= segment]
        for number in segments:
            if number != segment:
                segment, offset = number, 0
            size = _CHUNK
            while len(out) < limit:
                chunk = self._chunk(number, offset, size)
                consumed = 0
                for consumed, entry in _scan(chunk):  # noqa: B007
                    out.append(entry)
                    if len(out) >= limit:
                        break
                if consumed:
                    offset += consumed
                    size = _CHUNK
                    continue
                if len(chunk) >= _FRAME.size and _FRAME.unpack_from(chunk)[0] + 8 > len(chunk):
                    if len(chunk) == size:  # one frame larger than the chunk: read more
                        size *= 2
                        continue
                elif chunk and number != segments[-1]:
                    log.error(
                        "callscope spool %s: corrupt frame at %d of segment %d; skipped the rest",
                        self.directory, offset, number,
                    )  # fmt: skip
                break
            if len(out) >= limit:
                break
        self._position = (segment, offset)
        return out

    def rewind(self) -> None:
        """Forget reads since the last commit (delivery failed: read them again)."""
        self._position = self._committed

    def commit(self) -> int:
        """Persist the position; delete segments wholly behind it. Returns bytes freed."""
        self._committed = self._position
        tmp = self._cursor_path.with_suffix(".tmp")
        tmp.write_text(f"{self._committed[0]} {self._committed[1]}")
        os.replace(tmp, self._cursor_path)
        freed = 0
        for number in _segments(self.directory):
            if number >= self._committed[0]:
                break
            path = _segment_path(self.directory, number)
            with contextlib.suppress(FileNotFoundError):
                freed += path.stat().st_size
                path.unlink()
        return freed

    def close(self) -> None:
        """Nothing stays open between reads; kept for symmetry with :class:`Spool`."""


def open_spool(
    root: str | os.PathLike[str],
    name: str,
    *,
    max_bytes: int = 256 << 20,
    fsync: bool = False,
) -> Spool:
    """This process's spool under ``root``: ``root/name``, or ``name.1``, ``name.2``... when
    another live process holds it. A spool left by a crashed process is adopted, so its
    records are replayed by the next process of the same service."""
    for i in range(64):
        directory = Path(root) / (name if i == 0 else f"{name}.{i}")
        try:
            return Spool(directory, max_bytes=max_bytes, fsync=fsync)
        except BlockingIOError:
            continue
    raise BlockingIOError(f"no free spool directory for {name!r} under {root}")
