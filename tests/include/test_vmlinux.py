"""`uringbpf vmlinux --design ...`: each design's kernel types, usable the way bpftool's
vmlinux.h is (issue #14, Build)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.tools import vmlinux

DESIGNS = ["loop", "filter", "rfc2021", "opbpf", "kbuf"]

# What each design's programs rely on, checked by the compiler against the generated header.
LAYOUTS = {
    "rfc2021": """
        _Static_assert(__builtin_offsetof(struct io_uring_sqe, cq_idx) == 48, "cq_idx @48");
        _Static_assert(sizeof(((struct io_uring_sqe *)0)->cq_idx) == 2, "cq_idx is __u16");
        _Static_assert(__builtin_offsetof(struct io_uring_sqe, __pad2) == 40, "__pad2");
        _Static_assert(sizeof(struct io_uring_sqe) == 64, "sqe");
        _Static_assert(sizeof(struct io_uring_bpf_ctx) == 16, "ctx");
        _Static_assert(__builtin_offsetof(struct io_uring_bpf_ctx, wait_nr) == 8, "wait_nr");
        _Static_assert(__builtin_offsetof(struct io_uring_bpf_ctx, wait_idx) == 12, "wait_idx");
        _Static_assert(__builtin_offsetof(struct io_uring_params, cq_sizes) == 32, "cq_sizes");
        _Static_assert(IORING_OP_TIMEOUT == 11 && IORING_OP_WRITE == 23, "5.13 opcodes");
        _Static_assert(BPF_PROG_TYPE_IOURING == 31, "prog type");
    """,
    "opbpf": """
        _Static_assert(__builtin_offsetof(struct uring_bpf_data, pdu) == 28, "v3 pdu @28");
        _Static_assert(64 - __builtin_offsetof(struct uring_bpf_data, pdu) == 36, "36 bytes");
        _Static_assert(sizeof(struct bpf_iter_uring_buf) == 96, "12 x u64");
        _Static_assert(sizeof(struct io_bpf_buf_desc) == 16, "desc");
        _Static_assert(IORING_OP_BPF == 65, "after URING_CMD128");
        _Static_assert(__builtin_offsetof(struct uring_bpf_ops, prep_fn) == 8, "ops");
    """,
    "loop": """
        _Static_assert(sizeof(struct io_uring_bpf_ops) == 24, "24 bytes");
        _Static_assert(__builtin_offsetof(struct io_uring_bpf_ops, ring_fd) == 8, "ring_fd");
        _Static_assert(__builtin_offsetof(struct io_uring_bpf_ops, priv) == 16, "priv");
        _Static_assert(sizeof(struct iou_loop_params) == 4, "params");
        _Static_assert(IOU_LOOP_STOP == 1 && IOU_REGION_SQ == 2, "enums");
        _Static_assert(sizeof(struct io_uring_sqe) == 64 && sizeof(struct io_uring_cqe) == 16, "");
        _Static_assert(IORING_OP_URING_CMD128 == 64, "7.1 opcodes");
        struct iou_ctx *ctx_type_exists;
    """,
    "filter": """
        _Static_assert(sizeof(struct io_uring_bpf_ctx) == 40, "40 bytes");
        _Static_assert(__builtin_offsetof(struct io_uring_bpf_ctx, connect) == 16, "union @16");
        _Static_assert(sizeof(((struct io_uring_bpf_ctx *)0)->connect) == 24, "connect pdu 24");
        _Static_assert(sizeof(((struct io_uring_bpf_ctx *)0)->socket) == 12, "socket pdu 12");
        _Static_assert(sizeof(struct io_uring_bpf_filter) == 64, "filter");
    """,
    "kbuf": """
        _Static_assert(sizeof(struct ublksrv_io_desc) == 24, "desc");
        _Static_assert(sizeof(struct ublksrv_io_cmd) == 16, "cmd");
        _Static_assert(sizeof(struct ublk_auto_buf_reg) == 8, "auto buf reg");
    """,
}

# A program written the bpftool way: vmlinux.h first, then libbpf's headers and two UAPI
# headers that only add macros (Ming Lei's selftests include exactly these).
PROG = r"""
#include "vmlinux.h"
#include <linux/const.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
char LICENSE[] SEC("license") = "GPL";
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} out SEC(".maps");
SEC("syscall")
int prog(void *ctx)
{
	u32 k = 0;
	u64 *v = bpf_map_lookup_elem(&out, &k);
	int i, s = 0;
#ifndef NO_ITER
	bpf_for(i, 0, 4)
		s += i;
#endif
	if (v)
		*v = s + _BITUL(4) + EINVAL + bpf_ntohs(0x0100);
	return 0;
}
"""


@pytest.mark.parametrize("design", DESIGNS)
def test_vmlinux_layouts(design, tmp_path):
    vmlinux.write(design, tmp_path)
    text = (tmp_path / "vmlinux.h").read_text()
    assert text.startswith("/* vmlinux.h") and "#ifndef __VMLINUX_H__" in text
    assert "#include" not in text            # one self-contained file, as bpftool writes
    src = tmp_path / "layout.bpf.c"
    src.write_text('#include "vmlinux.h"\n' + LAYOUTS[design] + "\nint unused;\n")
    cc.compile_c(src, tmp_path / "layout.o", include_dirs=[tmp_path])


@pytest.mark.parametrize("design", DESIGNS)
def test_vmlinux_with_libbpf_headers_builds_and_runs(design, tmp_path):
    vmlinux.write(design, tmp_path)
    src = tmp_path / "p.bpf.c"
    src.write_text(PROG)
    # 5.13 had no numeric iterator (struct bpf_iter_num came with 6.4)
    defines = ["NO_ITER"] if design == "rfc2021" else []
    obj = BpfObject.open(cc.compile_c(src, tmp_path / "p.o", include_dirs=[tmp_path],
                                      defines=defines))
    try:
        obj.load(engine="interp")
        assert obj.programs["prog"]() == 0
        want = (0 if design == "rfc2021" else 6) + 16 + 22 + 1
        assert int.from_bytes(obj.maps["out"][0], "little") == want
    finally:
        obj.close()


def test_rfc2021_has_no_modern_types(tmp_path):
    text = vmlinux.generate("rfc2021")
    assert "bpf_iter_num" not in text and "BPF_MAP_TYPE_ARENA" not in text
    assert "IORING_OP_URING_CMD" not in text


@pytest.mark.parametrize("design", sorted(vmlinux.DESIGNS))
def test_page_size_enum_from_6_9(design, tmp_path):
    """Linux 6.9+ BTF has `enum page_size_enum { __PAGE_SIZE = PAGE_SIZE }` (what arena
    programs use for PAGE_SIZE); the 2021 RFC's 5.13 kernel does not."""
    text = vmlinux.generate(design)
    assert ("__PAGE_SIZE = 4096" in text) == (design != "rfc2021")
    if design == "rfc2021":
        return
    (tmp_path / "vmlinux.h").write_text(text)
    src = tmp_path / "p.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
                   'char LICENSE[] SEC("license") = "GPL";\n'
                   '#ifndef PAGE_SIZE\n#define PAGE_SIZE __PAGE_SIZE\n#endif\n'
                   'int out[PAGE_SIZE / 1024];\nSEC("syscall") int p(void *c) { return sizeof(out); }\n')
    cc.compile_c(src, tmp_path / "p.o", include_dirs=[tmp_path])


def test_cli_writes_the_header(tmp_path):
    out = tmp_path / "v.h"
    proc = subprocess.run([sys.executable, "-m", "uringbpf", "vmlinux", "--design", "opbpf",
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == vmlinux.generate("opbpf")
    bad = subprocess.run([sys.executable, "-m", "uringbpf", "vmlinux", "--design", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_unknown_design_raises():
    with pytest.raises(ValueError, match="unknown design"):
        vmlinux.generate("rfc2020")
