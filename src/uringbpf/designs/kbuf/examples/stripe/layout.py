"""RAID-0 mapping: which file and file offset every byte of the device lives at.

Follows the kernel selftest server's stripe target: a *unit* is ``nr_files`` chunks; byte
``b`` of the device is in chunk ``(b mod unit) // chunk`` of its unit, i.e. in that file, at
``unit_index * chunk + b mod chunk``. Consecutive units of one file are contiguous in the
file, so all pieces of one request that land in one file form a single contiguous file range
(one vectored op per file, at most ``nr_files`` ops per request).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FILES = 4
MIN_CHUNK, MAX_CHUNK, DEFAULT_CHUNK = 4096, 512 * 1024, 64 * 1024


@dataclass(frozen=True)
class FileOp:
    """One per-file op of a request: a contiguous file range, scattered over the buffer."""

    file: int
    file_offset: int
    pieces: tuple[tuple[int, int], ...]     # (offset in request buffer, length)

    @property
    def length(self) -> int:
        """Bytes this operation moves."""
        return sum(n for _, n in self.pieces)


class StripeLayout:
    """RAID-0 striping of a device over ``nr_files`` files in ``chunk_size`` chunks."""
    def __init__(self, nr_files: int, chunk_size: int, file_size: int):
        if not 1 <= nr_files <= MAX_FILES:
            raise ValueError(f"stripe needs 1..{MAX_FILES} backing files, got {nr_files}")
        if chunk_size & (chunk_size - 1) or not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
            raise ValueError("chunk size must be a power of two in 4 KiB..512 KiB")
        self.nr_files, self.chunk = nr_files, chunk_size
        self.file_size = file_size - file_size % chunk_size
        if self.file_size <= 0:
            raise ValueError("backing files are smaller than one chunk")
        self.size = self.file_size * nr_files

    def split(self, offset: int, length: int) -> list[FileOp]:
        """The per-file ops of ``[offset, offset + length)``, in file order."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"I/O [{offset}, {offset + length}) outside device of {self.size}")
        unit = self.chunk * self.nr_files
        per_file: dict[int, list] = {}
        pos, buf = offset, 0
        while buf < length:
            in_unit = pos % unit
            f = in_unit // self.chunk
            in_chunk = pos % self.chunk
            n = min(self.chunk - in_chunk, length - buf)
            file_off = (pos // unit) * self.chunk + in_chunk
            entry = per_file.setdefault(f, [file_off, []])
            entry[1].append((buf, n))
            pos += n
            buf += n
        return [FileOp(f, off, tuple(pieces)) for f, (off, pieces) in sorted(per_file.items())]

    def read_files(self, files: list, offset: int, length: int) -> bytes:
        """Reassemble device bytes straight from the backing files (paths or fds; for
        checking). Bytes past a file's end read as zeros."""
        out = bytearray(length)
        for op in self.split(offset, length):
            pos = op.file_offset
            for boff, n in op.pieces:
                data = _pread(files[op.file], n, pos)
                out[boff:boff + len(data)] = data
                pos += n
        return bytes(out)


def _pread(path_or_fd, n: int, pos: int) -> bytes:
    import os
    if isinstance(path_or_fd, int):
        return os.pread(path_or_fd, n, pos)
    with open(path_or_fd, "rb") as f:
        f.seek(pos)
        return f.read(n).ljust(n, b"\0")
