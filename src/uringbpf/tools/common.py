"""What every subcommand shares: the error type, reading inputs, choosing a program.

Messages follow the Unix convention ``uringbpf NAME: FILE: what went wrong``: the front
end adds ``uringbpf NAME:``, the message names the file once, and no Python class name
appears (a user reading the line should not need to know the library's exceptions).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from ..bpf import engines
from ..bpf.object import BpfObject
from ..errors import UringBpfError

__all__ = ["CommandError", "UsageError", "expected_errors", "message_of", "read_input",
           "int_in_range", "choose_programs", "open_object"]


class CommandError(Exception):
    """The command failed; the message is printed after ``uringbpf NAME:``, exit 1."""

    status = 1


class UsageError(CommandError):
    """The command line is inconsistent in a way argparse cannot see; exit 2."""

    status = 2


def expected_errors() -> tuple[type[BaseException], ...]:
    """Library exceptions that mean "bad input", reported as one line with exit 1.

    Anything else escaping a subcommand is a bug in uringbpf and keeps its traceback.
    """

    return (OSError, UringBpfError, engines.JitUnavailableError)


def message_of(exc: BaseException) -> str:
    """The message for ``exc``: ``FILE: reason`` for OS errors, its own text otherwise."""
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename
        return f"{name}: {exc.strerror}" if name is not None else exc.strerror
    # The first line says what failed; later lines (compiler diagnostics) are kept.
    text = str(exc).strip()
    return text if text else (type(exc).__doc__ or "failed").strip()


#: the most bytes an input file may have (an object, a listing): /dev/zero or an endless
#: pipe is refused once this much was read, instead of filling memory
MAX_INPUT = 256 << 20


def read_input(path: str, *, text: bool = False, allow_empty: bool = False,
               limit: int = MAX_INPUT) -> Any:
    """The bytes (or UTF-8 text) of ``path``, ``-`` meaning stdin; clear errors otherwise
    (also for more than ``limit`` bytes)."""
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
        name = "<stdin>"
    else:
        p = Path(path)
        if p.is_dir():
            raise CommandError(f"{path}: is a directory")
        try:
            with open(p, "rb") as f:
                data = f.read(limit + 1)
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}") from None
        name = path
    if len(data) > limit:
        raise CommandError(f"{name}: more than {limit} bytes (not an input this command reads)")
    if not data and not allow_empty:
        raise CommandError(f"{name}: empty file")
    if text:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(f"{name}: not text (byte {exc.start} is not UTF-8)") from None
    return data


def int_in_range(lo: int, hi: int):
    """An argparse ``type=`` for integers in ``[lo, hi]`` (bad values are usage errors)."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range ({lo}..{hi})")
        return value

    parse.__name__ = "integer"
    return parse


def open_object(path: str):
    """Open the ELF object ``path`` with :class:`~uringbpf.bpf.object.BpfObject`.

    Missing files, directories and files that are not ELF get one clear line each.
    """

    p = Path(path)
    if p.is_dir():
        raise CommandError(f"{path}: is a directory")
    try:
        with open(p, "rb") as f:
            head = f.read(4)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except OSError as exc:      # a symlink loop, EIO, EACCES...: what and where, one line
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    if size > MAX_INPUT:
        raise CommandError(f"{path}: more than {MAX_INPUT} bytes (not a BPF object)")
    if head != b"\x7fELF":
        raise CommandError(f"{path}: not an ELF object"
                           + (" (empty file)" if not head else ""))
    return BpfObject.open(p)


def choose_programs(path: str, names: Iterable[str], wanted: list[str] | None,
                    *, one: bool = False) -> list[str]:
    """Check ``wanted`` program names against ``names`` (all of an object's programs).

    ``one=True``: exactly one program is needed (``run``); without ``--prog`` the object
    must have a single program. Unknown names list the programs that exist.
    """
    names = list(names)
    listing = ", ".join(names) or "none"
    if not wanted:
        if one and len(names) != 1:
            raise CommandError(f"{path} has {len(names)} programs ({listing}): choose one with "
                               "--prog")
        return names
    missing = [w for w in wanted if w not in names]
    if missing:
        raise CommandError(f"{path} has no program {', '.join(repr(m) for m in missing)} "
                           f"(programs: {listing})")
    return list(dict.fromkeys(wanted))


def write_output(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to the output file ``path`` (opened and written in place, so a
    device or FIFO stays what it is); a failure names the path (``x.o: No space left``)."""
    try:
        with open(path, "w" if isinstance(data, str) else "wb") as f:
            f.write(data)
    except OSError as exc:
        raise CommandError(f"{os.fsdecode(path)}: {exc.strerror or exc}") from None


def exists_dir_for(path: str) -> None:
    """Refuse an output path whose directory does not exist (we never create it)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CommandError(f"{path}: directory {os.path.dirname(path) or '.'} does not exist")
    if os.path.isdir(path):
        raise CommandError(f"{path}: is a directory")
