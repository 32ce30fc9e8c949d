"""``uringbpf vmlinux``: write the vmlinux.h of the kernel (or patch set) a design ran on.

Programs of each io_uring+BPF design were built with ``#include "vmlinux.h"``, dumped by
``bpftool btf dump file /sys/kernel/btf/vmlinux format c`` on the kernel that carried the
design.  None of those kernels is the one running here, so this command writes an
equivalent header: one self-contained file (no includes), guarded by ``__VMLINUX_H__``,
with CO-RE's ``preserve_access_index`` attribute around the records as bpftool emits it,
holding the base kernel types, the BPF UAPI types and the io_uring types of that
kernel/patch set.  The type text lives in ``include/uringbpf/vmlinux/*.h`` fragments; the
current io_uring UAPI part is taken from uringbpf's own ``<liburing/io_uring.h>`` (its
structs and enums, without the ``#define`` s, which BTF does not carry).

Designs (``--design``):

* ``loop`` -- Linux 7.1 ``io_uring_bpf_ops`` loop_step struct_ops (``struct iou_ctx``,
  ``struct iou_loop_params``, the 24-byte ``struct io_uring_bpf_ops``);
* ``filter`` -- Linux 7.0 cBPF filters (the 40-byte ``struct io_uring_bpf_ctx`` with
  ``socket``/``open``/``connect``);
* ``rfc2021`` -- Begunkov's RFC v2 (May 2021) on 5.13: ``sqe->cq_idx`` at byte 48,
  ``struct io_uring_bpf_ctx {user_data, wait_nr, wait_idx}``;
* ``opbpf`` -- Ming Lei's IORING_OP_BPF v3 (2026-03, final layout after 08/12):
  ``struct uring_bpf_data`` with ``pdu`` at 28 (36 bytes), ``bpf_iter_uring_buf`` of
  12 u64.  uringbpf runs this one ABI; v2's programs name the fields they use (``pdu``),
  so they build against it unchanged, and v2's ``uring_bpf_memcpy`` kfunc is kept;
* ``kbuf`` -- Linux 6.15+ registered kernel buffers: the io_uring UAPI and ublk's types.

Every design of a 6.9+ kernel gets ``enum page_size_enum { __PAGE_SIZE = 4096 }``, which
those kernels' BTF carries (arena programs write ``#define PAGE_SIZE __PAGE_SIZE``).

kfunc prototypes (which bpftool >= 7.4 adds) are emitted only when the program defines
``UBPF_VMLINUX_KFUNCS`` before the include: programs of these patch sets declare their
kfuncs themselves, often with slightly different qualifiers, and two declarations of one
function with different types do not compile.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .common import write_output

HELP = "write the vmlinux.h of a design's kernel or patch set"
DESCRIPTION = """\
Write a vmlinux.h with the types of the kernel (or never-merged patch set) a design's
programs were written for, so an upstream `#include "vmlinux.h"` program builds unchanged:

  uringbpf vmlinux --design rfc2021 -o vmlinux.h
  uringbpf cc uring.bpf.c -I . -o uring.bpf.o

Designs: loop (7.1), filter (7.0), rfc2021 (RFC v2, 2021), opbpf (IORING_OP_BPF v3,
final layout), kbuf (6.15+ kernel buffers, ublk)."""

_FRAGMENTS = Path(__file__).resolve().parent.parent / "include" / "uringbpf" / "vmlinux"
_LIBURING_UAPI = Path(__file__).resolve().parent.parent / "include" / "liburing" / "io_uring.h"

#: design -> (description, fragments in order, conditional flags for the fragments)
DESIGNS: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    "loop": ("Linux 7.1: io_uring loop_step struct_ops",
             ("base", "bpf", "@io_uring", "loop"), frozenset()),
    "filter": ("Linux 7.0: io_uring classic-BPF filters",
               ("base", "bpf", "@io_uring", "filter"), frozenset()),
    "rfc2021": ("RFC v2 'io_uring BPF requests' (Begunkov, 2021-05-19, isilence/linux ebpf_v2)",
                ("base", "bpf", "rfc2021"), frozenset({"__UBPF_VMLINUX_2021"})),
    "opbpf": ("IORING_OP_BPF v3 (Ming Lei, 2026-03-25, final layout after 08/12)",
              ("base", "bpf", "@io_uring+bpf", "opbpf"), frozenset({"__UBPF_OPBPF_V3"})),
    "kbuf": ("Linux 6.15+: registered kernel buffers (io_uring rsrc.c, ublk_drv.c)",
             ("base", "bpf", "@io_uring", "kbuf"), frozenset()),
}

_BLOCK_START = re.compile(r"^(struct|union|enum)\b[^;]*\{\s*(/\*.*\*/)?\s*$")


def _io_uring_types(with_op_bpf: bool) -> str:
    """The structs and enums of uringbpf's <liburing/io_uring.h>, without preprocessor lines.

    ``with_op_bpf`` appends ``IORING_OP_BPF`` after ``IORING_OP_URING_CMD128`` (Ming Lei's
    series numbers it there: 65).
    """
    out: list[str] = []
    block: list[str] | None = None
    continued = False
    for line in _LIBURING_UAPI.read_text().splitlines():
        if continued:                       # the rest of a multi-line #define
            continued = line.endswith("\\")
            continue
        if line.lstrip().startswith("#"):
            continued = line.endswith("\\")
            continue
        if block is None:
            if _BLOCK_START.match(line):
                block = [line]
            continue
        # __aligned_u64 is a macro; BTF (and so bpftool) sees the __u64 under it
        line = line.replace("__aligned_u64", "__u64")
        if with_op_bpf and line.strip() == "IORING_OP_LAST,":
            block.append("\tIORING_OP_BPF,")
        block.append(line)
        if line.startswith("};"):
            out.append("\n".join(block))
            block = None
    if block is not None:
        raise ValueError(f"{_LIBURING_UAPI}: unterminated block {block[0]!r}")
    return "\n\n".join(out) + "\n"


def _fragment(name: str, flags: frozenset[str]) -> str:
    """One fragment with its ``#ifdef FLAG`` / ``#ifndef FLAG`` sections resolved."""
    if name.startswith("@io_uring"):
        return "/* io_uring UAPI of the running kernel's generation (7.1) */\n" + \
            _io_uring_types(with_op_bpf=name.endswith("+bpf"))
    kept: list[str] = []
    keep = [True]
    for line in (_FRAGMENTS / f"{name}.h").read_text().splitlines():
        m = re.match(r"^#(ifdef|ifndef)\s+(\w+)\s*$", line)
        if m:
            present = m.group(2) in flags
            keep.append(keep[-1] and (present if m.group(1) == "ifdef" else not present))
            continue
        if re.match(r"^#else\s*$", line):
            keep[-1] = keep[-2] and not keep[-1]
            continue
        if re.match(r"^#endif\b", line):
            keep.pop()
            continue
        if keep[-1]:
            kept.append(line)
    if len(keep) != 1:
        raise ValueError(f"fragment {name}.h: unbalanced #if/#endif")
    return "\n".join(kept) + "\n"


def generate(design: str) -> str:
    """The text of the vmlinux.h for ``design`` (a key of :data:`DESIGNS`)."""
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; choose one of {', '.join(DESIGNS)}")
    title, parts, flags = DESIGNS[design]
    body = "\n".join(_fragment(p, flags) for p in parts)
    return (
        f"/* vmlinux.h for uringbpf design {design!r}: {title}.\n"
        " * Generated by `uringbpf vmlinux`; the types of that kernel as bpftool would dump them. */\n"
        "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n"
        f"#define __UBPF_VMLINUX_DESIGN \"{design}\"\n\n"
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
        "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
        "#endif\n\n"
        f"{body}\n"
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n"
        "#endif /* __VMLINUX_H__ */\n")


def write(design: str, path: str | Path) -> Path:
    """Write the vmlinux.h of ``design`` to ``path`` (a file, or a directory to put it in)."""
    path = Path(path)
    if path.is_dir():
        path = path / "vmlinux.h"
    path.write_text(generate(design))
    return path


def configure(p: argparse.ArgumentParser) -> None:
    """``--design NAME`` and ``-o PATH``."""
    p.add_argument("--design", required=True, choices=sorted(DESIGNS),
                   help="the design whose kernel types to write")
    p.add_argument("-o", "--output", default="-",
                   help="file or directory to write (default: standard output)")


def run(args: argparse.Namespace) -> int:
    """Write the header."""
    if args.output == "-":
        print(generate(args.design), end="")
    else:
        path = Path(args.output)
        write_output(path / "vmlinux.h" if path.is_dir() else path, generate(args.design))
    return 0
