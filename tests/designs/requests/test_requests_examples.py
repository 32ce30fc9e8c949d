"""The four RFC examples (examples/requests/) compiled by `uringbpf cc`, verified, and run
on the interpreter and the JIT against the real kernel io_uring."""

from __future__ import annotations

import errno
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "requests"


def _example(name: str):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def obj_path(tmp_path_factory):
    return _example("common").build(tmp_path_factory.mktemp("requests"))


@pytest.fixture(params=["interp", "jit"])
def engine(request):
    return request.param


@pytest.fixture(params=["native-engine", "python-engine"])
def native(request):
    return request.param == "native-engine"


def test_programs_are_verified_iouring_programs(obj_path, engine):
    common = _example("common")
    ring, obj = common.setup(engine, obj_path=obj_path)
    try:
        for name in common.PROGRAMS:
            p = obj.programs[name]
            assert p.engine == engine and p.sleepable
            assert p.verifier_result is not None
        assert ring.register_bpf([None]) == -errno.EBUSY
    finally:
        ring.close()


def test_features(obj_path, engine, native):
    out = _example("features").run(engine, obj_path=obj_path, native=native)
    assert out["submitted"] == 1
    assert out["cqes"] == [(3, 13, 0), (2, 0, 0), (out["secret_addr"], 0, 0)]
    s = out["slots"]
    assert s[:6] == [11, 4, 5, 21, out["secret_addr"], 29]
    assert s[6] == (-errno.ENOENT) & (2**64 - 1) and s[7] == 0   # empty reap zeroes the CQE
    assert s[10] == 1 and out["runs"] == 2
    assert out["secret"] == 31
    assert out["cq1_left"] == 0


def test_counting(obj_path, engine):
    out = _example("counting").run(engine, obj_path=obj_path)
    assert out["submitted"] == 1
    assert out["completions"] == [(out["ts_addr"], 0, 0)]      # the application sees one CQE
    assert out["slots"] == [11, 5, 0]                            # 11 ticks, last user_data 5
    assert out["runs"] == 12
    assert out["cq1_left"] == 1                                  # the 11th tick is not reaped


def test_pingpong(obj_path, engine, native):
    out = _example("pingpong").run(engine, obj_path=obj_path, native=native)
    assert out["submitted"] == 3
    assert out["done"] == out["ctx_addrs"]
    assert out["slots"][5] == 20 and out["slots"][6] == 21
    assert out["slots"][0] == 1 and out["slots"][1] == 1


def test_write_file(obj_path, engine, native, tmp_path):
    out = _example("write_file").run(engine, path=str(tmp_path / "out"), obj_path=obj_path,
                                     native=native)
    assert out["submitted"] == 1
    assert out["completions"] == [(out["buf_addr"], 0, 0)]
    assert out["size"] == 256 * 1024 and out["ok"]               # every byte checked
    inflight, nxt, errors, peak = out["slots"]
    assert (inflight, nxt, errors, peak) == (0, 16, 0, 4)


@pytest.fixture(scope="module")
def dietrich_obj(tmp_path_factory):
    return _example("postprocess").build(tmp_path_factory.mktemp("dietrich"))


@pytest.mark.parametrize("mode", ["postprocess", "fork_join"])
def test_dietrich_schirmeier_model(dietrich_obj, engine, mode, tmp_path):
    ex = _example("postprocess")
    out = ex.run(mode, engine, path=str(tmp_path / "lines"), nr_jobs=6, obj_path=dietrich_obj)
    counts = out["counts"]
    assert out["submitted"] == 12
    if mode == "postprocess":       # one CQE per job, none for the READs or the BPF SQEs
        assert out["cqes"] == [(100 + i, n, 0) for i, n in enumerate(counts)]
    else:                           # only the join CQE, from the last job to finish
        assert out["cqes"] == [(ex.JOIN_USER_DATA, sum(counts), 0)]
        assert out["total_lines"] == sum(counts) and out["jobs_done"] == 6
    assert out["private_left"] == 0 and out["runs"] == 6
    assert out["functions"] == {"postprocess": 0, "fork_join": 1}


@pytest.mark.parametrize("example", ["pingpong", "write_file"])
def test_native_path_runs_no_python_per_cqe(obj_path, example, tmp_path):
    """JIT programs on the native engine: while the programs bounce CQEs (pingpong: 24
    runs, ~45 CQEs; write_file: 16 writes), no Python function of the engine, of the
    helpers or of any trampoline runs — only the per-enter calls."""
    common = _example("common")
    ring, obj = common.setup("jit", obj_path=obj_path)
    calls: dict[str, int] = {}

    def profile(frame, event, arg):
        if event == "call":
            name = frame.f_code.co_name
            calls[name] = calls.get(name, 0) + 1

    try:
        assert ring.requests.native
        import ctypes
        import os
        if example == "pingpong":
            mod = _example("pingpong")
            ctxs = [mod.PingCtx(0), mod.PingCtx(1)]
            for c in ctxs:
                ring.prep_bpf(2, user_data=ctypes.addressof(c))
            sqe = ring.get_sqe()
            sqe.opcode, sqe.fd, sqe.user_data = 0, -1, 0
            sqe.cq_idx = 1
            want, runs = 2, 24
        else:
            mod = _example("write_file")
            fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
            data = mod.pattern()
            buf = ctypes.create_string_buffer(data, len(data))
            ring.register_files([fd])
            ring.prep_bpf(3, user_data=ctypes.addressof(buf))
            want, runs = 1, 5
        import sys
        sys.setprofile(profile)
        try:
            ring.submit()
            ring.wait_cqe_nr(want)
        finally:
            sys.setprofile(None)
        assert ring.requests.stats["runs"] == runs
        for name in ("_run", "_drain_kernel", "iouring_emit_cqe", "iouring_reap_cqe",
                     "iouring_queue_sqe", "bpf_copy_to_user", "bpf_copy_from_user",
                     "trampoline", "fallback", "call"):
            assert calls.get(name, 0) == 0, (name, calls.get(name))
        # the application's own SQEs go through the Python SQE filter, program SQEs do not
        assert calls.get("_on_sqe", 0) == (3 if example == "pingpong" else 1)
        assert calls.get("pump", 0) <= 4, calls
        assert sum(calls.values()) < 80, calls
        if example == "write_file":
            with open(tmp_path / "out", "rb") as f:
                assert f.read() == data
            os.close(fd)
    finally:
        ring.close()


_BAD_PROGRAMS = {
    # helper 164 is for sleepable programs only
    "queue_in_non_sleepable": """
SEC("iouring/q") int q(struct io_uring_bpf_ctx *ctx)
{
	struct io_uring_sqe sqe = {};
	iouring_queue_sqe(ctx, &sqe, sizeof(sqe));
	return 0;
}""",
    # a write past the 16-byte context (user_data itself is writable: the RFC's
    # io_bpf_is_valid_access checks offset and size only, see test_requests_rfc.py)
    "write_past_ctx": """
SEC("iouring/w") int w(struct io_uring_bpf_ctx *ctx)
{
	*(__u32 *)((char *)ctx + 16) = 1;
	return 0;
}""",
    # the return value must be 0
    "return_one": """
SEC("iouring/r") int r(struct io_uring_bpf_ctx *ctx)
{
	return 1;
}""",
    # nothing past the 16-byte context
    "read_past_ctx": """
SEC("iouring/p") int p(struct io_uring_bpf_ctx *ctx)
{
	ctx->wait_nr = *(volatile __u32 *)((char *)ctx + 16);
	return 0;
}""",
}


@pytest.mark.parametrize("case", sorted(_BAD_PROGRAMS))
def test_verifier_refuses_what_the_rfc_refuses(case, tmp_path):
    from uringbpf.bpf import cc
    from uringbpf.bpf.object import BpfObject
    src = tmp_path / f"{case}.bpf.c"
    src.write_text('#include <linux/types.h>\n#include <bpf/bpf_helpers.h>\n'
                   '#include <io_uring/bpf_requests.h>\nchar LICENSE[] SEC("license") = "GPL";\n'
                   + _BAD_PROGRAMS[case])
    cc.compile_c(src, tmp_path / f"{case}.o")
    obj = BpfObject.open(tmp_path / f"{case}.o")
    with pytest.raises(Exception) as exc:
        obj.load(engine="interp")
    assert "Verifier" in type(exc.value).__name__
    want = {"queue_in_non_sleepable": "sleepable", "write_past_ctx": "off=16",
            "return_one": "R0", "read_past_ctx": "off=16"}[case]
    assert want in str(exc.value)


def test_unloaded_program_is_refused(obj_path):
    from uringbpf.bpf.object import BpfObject
    from uringbpf.designs.requests import Ring
    obj = BpfObject.open(obj_path)
    r = Ring(4)
    try:
        assert r.register_bpf([obj.programs["features"]]) == -errno.EBADF
    finally:
        r.close()


def test_program_sqes_meet_the_rings_other_filters(obj_path, engine, native):
    """A 7.0 cBPF filter denying NOP on the ring also denies the NOP a program queues."""
    import ctypes
    from uringbpf.designs import filter as cfilter
    from uringbpf.designs.filter import cbpf
    from uringbpf.uring import uapi as u
    common = _example("common")
    ring, obj = common.setup(engine, obj_path=obj_path, native=native)
    try:
        deny = [cbpf.stmt(cbpf.RET | cbpf.K, 0)]
        assert cfilter.register_bpf_filter(ring, u.IORING_OP_NOP, deny) == 0
        secret = ctypes.c_uint64(29)
        ring.prep_bpf(0, user_data=ctypes.addressof(secret))
        ring.submit()
        ring.wait_cqe_nr(3, timeout=20)
        assert [tuple(c) for c in ring.reap()] == [
            (3, 13, 0), (2, -errno.EACCES, 0), (ctypes.addressof(secret), 0, 0)]
        assert secret.value == 31
    finally:
        ring.close()


def test_nop_loop(obj_path, engine, native):
    common = _example("common")
    ring, obj = common.setup(engine, obj_path=obj_path, native=native)
    try:
        ring.prep_bpf(4, user_data=300)
        ring.submit()
        ring.wait_cqe(timeout=30)
        assert [tuple(c) for c in ring.reap()] == [(300, 0, 0)]
        assert common.slots(obj, 23)[20:23] == [0, 300, 300]   # inflight, issued, done
        assert ring.cq(1).ready() == 0
    finally:
        ring.close()


def _run_bench(*args: str):
    return subprocess.run([sys.executable, str(EXAMPLES / "bench_engines.py"), *args],
                          cwd=EXAMPLES, capture_output=True, text=True, timeout=120)


def test_bench_engines_has_a_real_help():
    """``--help`` describes the script and its two arguments (it once read ``--help`` as
    the round count and died on int())."""
    done = _run_bench("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: bench_engines.py")
    assert "rounds" in done.stdout and "nops" in done.stdout and "default: 30" in done.stdout
    bad = _run_bench("0")
    assert bad.returncode == 2 and "must be at least 1" in bad.stderr


def test_bench_engines_runs_with_its_positional_arguments():
    """The documented form ``bench_engines.py ROUNDS NOPS`` still works (docs/benchmarks.md)."""
    done = _run_bench("1", "16")
    assert done.returncode == 0, done.stderr
    assert "nop_loop: 16 NOPs" in done.stdout
    assert "native engine + jit" in done.stdout
