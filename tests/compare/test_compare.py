"""`uringbpf compare` smoke tests: a fast subset, correctness only (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uringbpf import compare
from uringbpf.compare import cksum, common, cp, echo, nop
from uringbpf.compare.common import CannotExpress, Ctx, WrongOutput

needs_c = pytest.mark.skipif(common.have_liburing() is not None,
                             reason=f"C liburing column unavailable: {common.have_liburing()}")


def _ctx(tmp_path: Path, profile: bool = True) -> Ctx:
    return Ctx(tmp_path, quick=True, profile=profile)


@pytest.mark.parametrize("impl", ["python", "python-fast", "links"])
def test_nop_implementations_complete_every_nop_and_count_enters(tmp_path, impl):
    m = nop.IMPLS[impl]({"k": 8, "total": 800}, _ctx(tmp_path))
    assert m.ops == 800
    assert m.enters == 100            # one enter per batch of 8 completions
    assert m.pycalls is not None and m.pycalls > 0


def test_fast_path_makes_fewer_python_calls_than_the_plain_ring(tmp_path):
    plain = nop.IMPLS["python"]({"k": 8, "total": 800}, _ctx(tmp_path))
    fast = nop.IMPLS["python-fast"]({"k": 8, "total": 800}, _ctx(tmp_path))
    assert fast.pycalls * 4 < plain.pycalls


@needs_c
def test_c_column_runs_and_reports_its_counters(tmp_path):
    m = nop.IMPLS["c"]({"k": 32, "total": 3200}, _ctx(tmp_path))
    assert (m.ops, m.enters, m.pycalls) == (3200, 100, 0)


def test_links_on_a_pipe_are_reported_wrong_not_timed(tmp_path):
    p = {"source": "pipe", "size": 300_000, "chunk": 128 * 1024}
    with pytest.raises(WrongOutput, match="short READ breaks the link"):
        cp.IMPLS["links"](p, _ctx(tmp_path))
    # the same copy done right: the plain Ring resumes short reads
    m = cp.IMPLS["python"](p, _ctx(tmp_path))
    assert m.nbytes == 300_000 and "short reads" in m.note


def test_cp_check_catches_a_corrupted_copy(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"x" * 1000)
    dst.write_bytes(b"x" * 999 + b"y")
    with pytest.raises(WrongOutput, match="byte 999"):
        cp._check(src, dst)


def test_cksum_python_verifies_every_block(tmp_path):
    p = {"size": 200_001, "block": 65536}
    m = cksum.IMPLS["python"](p, _ctx(tmp_path))
    assert m.ops == 4 and m.nbytes == 200_001
    src, want = cksum._source(p, _ctx(tmp_path))
    with pytest.raises(WrongOutput, match="crc32c wrong"):
        cksum._check(src, src, want, [want[0] ^ 1] + want[1:])


@needs_c
def test_cksum_c_matches_the_reference_crcs(tmp_path):
    m = cksum.IMPLS["c"]({"size": 100_000, "block": 65536}, _ctx(tmp_path))
    assert m.ops == 2


@needs_c
def test_echo_python_server_echoes_every_byte(tmp_path):
    m = echo.IMPLS["python"]({"conns": 3, "msg": 256, "rounds": 10}, _ctx(tmp_path))
    assert m.ops == 30 and m.nbytes == 3 * 256 * 10


def test_a_design_that_cannot_express_a_workload_says_why(tmp_path):
    with pytest.raises(CannotExpress, match="link chain"):
        cksum.IMPLS["links"]({"size": 1, "block": 1}, _ctx(tmp_path))


def test_runner_table_and_json(tmp_path):
    recs = compare.run(["nop"], ["python", "python-fast", "links"], quick=True)
    assert {r["status"] for r in recs} == {"ok"}
    text = compare.table(recs, quick=True)
    assert "| K=32 | python-fast | ok |" in text
    compare.write_json(recs, tmp_path / "c.json", True)
    data = json.loads((tmp_path / "c.json").read_text())
    assert len(data["records"]) == 9 and data["quick"] is True


def test_cli_quick_subset_writes_table_and_json(tmp_path, capsys):
    from uringbpf.tools import main
    out = tmp_path / "out"
    assert main(["compare", "--quick", "-w", "nop", "-i", "python", "-i", "links",
                 "-o", str(out)]) == 0
    assert "| K=8 | links | ok |" in (out / "compare.md").read_text()
    assert json.loads((out / "compare.json").read_text())["quick"] is True
    assert main(["compare", "--quick", "-i", "bogus", "-o", str(out)]) == 2
