"""The 2021 RFC's context rule, io_bpf_is_valid_access (RFC v2, fs/io_uring.c): an access
to ``struct io_uring_bpf_ctx`` must be exactly one field (user_data: 8 bytes at 0,
wait_nr: 4 at 8, wait_idx: 4 at 12), read or write alike; no narrower load, no access
spanning two fields, nothing outside the 16 bytes.  The verifier's message is the
kernel's check_ctx_access one, "invalid bpf_context access off=N size=M"."""

from __future__ import annotations

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.bpf.verifier import verify_object
from uringbpf.designs import requests  # noqa: F401  (registers SEC("iouring/"))

ACCEPTED = [
    "r2 = *(u64 *)(r1 + 0)", "r2 = *(u32 *)(r1 + 8)", "r2 = *(u32 *)(r1 + 12)",
    "*(u64 *)(r1 + 0) = r2", "*(u32 *)(r1 + 8) = w2", "*(u32 *)(r1 + 12) = w2",
    "*(u32 *)(r1 + 8) = 1",
]
REFUSED = [
    ("r2 = *(u8 *)(r1 + 0)", 0, 1),        # narrower load of user_data
    ("r2 = *(u32 *)(r1 + 0)", 0, 4),
    ("r2 = *(u32 *)(r1 + 4)", 4, 4),       # upper half of user_data
    ("r2 = *(u16 *)(r1 + 8)", 8, 2),       # narrower load of wait_nr
    ("r2 = *(u8 *)(r1 + 13)", 13, 1),
    ("r2 = *(u64 *)(r1 + 8)", 8, 8),       # wait_nr and wait_idx in one load
    ("*(u64 *)(r1 + 8) = r2", 8, 8),       # ... or in one store (clang's merged form)
    ("*(u16 *)(r1 + 12) = w2", 12, 2),
    ("*(u8 *)(r1 + 0) = 1", 0, 1),
    ("r2 = *(u32 *)(r1 + 16)", 16, 4),     # past the context
]


def _object(tmp_path, asm):
    src = tmp_path / "ctx.bpf.c"
    src.write_text(r"""
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <io_uring/bpf_requests.h>
char LICENSE[] SEC("license") = "GPL";
SEC("iouring/t")
int t(struct io_uring_bpf_ctx *ctx)
{
	asm volatile("r1 = %%[c]; r2 = 7; %s" :: [c] "r"(ctx) : "r1", "r2");
	return 0;
}
""".replace("%%[c]", "%[c]").replace("%s", asm))
    return BpfObject.open(cc.compile_c(src, tmp_path / "ctx.o"))


@pytest.mark.parametrize("asm", ACCEPTED)
def test_whole_field_accesses_are_accepted(tmp_path, asm):
    (verdict,) = verify_object(_object(tmp_path, asm))
    assert verdict.ok, verdict.log


@pytest.mark.parametrize("asm, off, size", REFUSED)
def test_other_accesses_are_refused(tmp_path, asm, off, size):
    (verdict,) = verify_object(_object(tmp_path, asm))
    assert not verdict.ok
    assert f"invalid bpf_context access off={off} size={size}" in verdict.log


def test_the_header_keeps_field_stores_apart(tmp_path):
    """`ctx->wait_idx = a; ctx->wait_nr = b;` compiles to two 4-byte stores (clang would
    merge them into the 8-byte store the RFC refuses without preserve_access_index)."""
    src = tmp_path / "two.bpf.c"
    src.write_text(r"""
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <io_uring/bpf_requests.h>
char LICENSE[] SEC("license") = "GPL";
SEC("iouring/t")
int t(struct io_uring_bpf_ctx *ctx)
{
	ctx->wait_idx = 1;
	ctx->wait_nr = 1;
	return 0;
}
""")
    (verdict,) = verify_object(BpfObject.open(cc.compile_c(src, tmp_path / "two.o")))
    assert verdict.ok, verdict.log
