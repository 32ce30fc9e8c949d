"""The four RFC examples (examples/requests/) compiled by `uringbpf cc`, verified, and run
on the interpreter and the JIT against the real kernel io_uring."""

from __future__ import annotations

import errno
import importlib
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "requests"


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


def test_features(obj_path, engine):
    out = _example("features").run(engine, obj_path=obj_path)
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


def test_pingpong(obj_path, engine):
    out = _example("pingpong").run(engine, obj_path=obj_path)
    assert out["submitted"] == 3
    assert out["done"] == out["ctx_addrs"]
    assert out["slots"][5] == 20 and out["slots"][6] == 21
    assert out["slots"][0] == 1 and out["slots"][1] == 1


def test_write_file(obj_path, engine, tmp_path):
    out = _example("write_file").run(engine, path=str(tmp_path / "out"), obj_path=obj_path)
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
