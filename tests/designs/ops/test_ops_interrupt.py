"""A Ctrl-C while the ops design's C driver (ops_enter, designs/ops/ops.c) runs a chain of
JIT programs that call back into Python must come out of the enter as KeyboardInterrupt:
not be printed and lost (a signal that arrived in native code fires as the callback's frame
starts, before its barrier's try), not be recorded as a program's failure; nothing hangs
and the ring stays usable."""

from __future__ import annotations

import ctypes
import errno
import signal
import sys

import pytest

from uringbpf.bpf.cc import compile_c
from uringbpf.bpf.helpers import Arg
from uringbpf.bpf.object import BpfObject
from uringbpf.bpf.platform import base_platform
from uringbpf.designs import ops

# Helper 900 is libc's raise() itself (a native twin: the JIT calls it directly, no Python
# frame runs), helper 901 is implemented in Python (the JIT calls it through a barrier).
PROG = r"""
#include <io_uring/bpf_ext.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
static long (*test_raise)(long sig) = (void *)900;
static long (*test_python)(long x) = (void *)901;
__u64 issued;
SEC("struct_ops/p")
int BPF_PROG(p, struct uring_bpf_data *d, const struct io_uring_sqe *sqe) { return 0; }
SEC("struct_ops/i")
int BPF_PROG(i, struct uring_bpf_data *d)
{
	long r = 0;
	issued++;
	if (issued == 2)
		r = test_raise(SIG);
	uring_bpf_set_result(d, test_python(r) + 40);
	return 0;
}
SEC(".struct_ops.link") struct uring_bpf_ops o = { .id = 0, .prep_fn = (void *)p, .issue_fn = (void *)i };
"""


@pytest.fixture
def chain(tmp_path):
    src = tmp_path / "intr.bpf.c"
    src.write_text(PROG.replace("SIG", str(int(signal.SIGINT))))
    out = tmp_path / "intr.bpf.o"
    compile_c(src, out)
    platform = base_platform("ops-interrupt-test")
    platform.install(ops.DESIGN)
    libc = ctypes.CDLL(None)
    calls: list = []

    @platform.helper(900, "test_raise", (Arg.SCALAR,))
    def test_raise(rt, sig, *_):
        return 0                              # never called: the JIT calls libc's raise
    platform.helpers[900].native = ctypes.cast(libc["raise"], ctypes.c_void_p).value

    @platform.helper(901, "test_python", (Arg.SCALAR,))
    def test_python(rt, x, *_):
        calls.append(x)
        return 2

    ring = ops.create_ring(16)
    obj = BpfObject.open(str(out))
    obj.struct_ops["o"].ring_fd = ring.fd
    obj.load(engine="jit", platform=platform)
    obj.attach_struct_ops("o")
    yield ring, obj, calls
    obj.close()
    ring.close()


@pytest.mark.parametrize("path", ["native", "python"])
def test_ctrl_c_in_native_code_before_a_python_helper_surfaces_from_the_enter(chain, path):
    """Both submit paths: ops_enter in C, and the Python one (JitFunction calls)."""
    ring, obj, calls = chain
    assert ring.ops.native_path
    ring.ops.allow_native = path == "native"
    escaped = []
    prev = sys.unraisablehook
    sys.unraisablehook = lambda unr: escaped.append(unr.exc_type)
    try:
        for ud in (1, 2, 3):
            ring.prep_bpf(0, user_data=ud)
        with pytest.raises(KeyboardInterrupt):
            ring.submit()
            ring.wait(3, timeout=5)
    finally:
        sys.unraisablehook = prev
    assert escaped == []
    assert ring.ops.errors == []              # an interrupt is not the program's failure
    # nothing hangs, the ring is usable: what was submitted completes, and new requests run
    got = {c.user_data: c.res for c in ring.wait(3, timeout=5)} if ring.cq_ready() < 3 else {
        c.user_data: c.res for c in ring.reap()}
    assert got == {1: 42, 2: -errno.EFAULT, 3: 42}   # the interrupted call failed cleanly
    ring.prep_bpf(0, user_data=4)
    ring.submit()
    assert [(c.user_data, c.res) for c in ring.wait(1, timeout=5)] == [(4, 42)]
