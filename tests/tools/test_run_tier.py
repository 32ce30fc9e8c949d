"""``uringbpf run --jit-tier`` / ``--wait-llvm``: the summary says which JIT code ran, and
asking to wait times LLVM's code only (docs/jit.md "Two tiers")."""

from __future__ import annotations

import random
import re

import pytest

from uringbpf.bpf import cc, engines, jit
from uringbpf.bpf.run import run_program
from uringbpf.errors import JitTierError
from uringbpf.tools import main as cli_main
from uringbpf.tools.common import expected_errors

# A constant differs per test session so that no disk- or memory-cached LLVM code of an
# earlier run exists for it: ``tiered`` then starts on the direct code.
SOURCE = r"""
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int mix(unsigned char *data, unsigned long len)
{
	unsigned int h = SALT;
	for (unsigned long i = 0; i < len && i < 64; i++)
		h = (h ^ data[i]) * 16777619u;
	return h;
}
"""


def _expected(data: bytes, salt: int) -> int:
    h = salt
    for b in data[:64]:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


@pytest.fixture()
def obj(tmp_path, monkeypatch):
    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    salt = random.randrange(1 << 31)
    src = tmp_path / "mix.bpf.c"
    src.write_text(SOURCE.replace("SALT", f"{salt}u"))
    out = tmp_path / "mix.bpf.o"
    cc.compile_c(src, out, cpu="v3")
    data = bytes(range(7, 71))
    (tmp_path / "in.bin").write_bytes(data)
    return out, tmp_path / "in.bin", _expected(data, salt)


def _summary(text: str) -> tuple[int, str]:
    m = re.search(r"Return value: (\d+) .* engine: jit, code: ([\w+]+)", text)
    assert m, text
    return int(m.group(1)), m.group(2)


@pytest.mark.parametrize("tier", ["direct", "llvm"])
def test_jit_tier_flag_chooses_and_reports_the_code(obj, capsys, tier):
    path, data_in, want = obj
    rc = cli_main(["run", str(path), "--data-in", str(data_in), "--repeat", "5", "--jit",
                   "--jit-tier", tier])
    assert rc == 0
    assert _summary(capsys.readouterr().out) == (want, tier)


def test_wait_llvm_times_llvm_code_only(obj, capsys):
    path, data_in, want = obj
    jit.tiering_wait()
    rc = cli_main(["run", str(path), "--data-in", str(data_in), "--repeat", "3",
                   "--jit-tier", "tiered", "--wait-llvm"])
    assert rc == 0
    assert _summary(capsys.readouterr().out) == (want, "llvm")


def test_the_default_tier_runs_direct_code_and_compiles_nothing_in_the_background(
        obj, capsys, monkeypatch):
    """The default (``auto``): the direct tier's code, and no LLVM compile queued for it."""
    path, data_in, want = obj
    monkeypatch.delenv("URINGBPF_JIT_TIER", raising=False)
    jit.tiering_wait()
    queued = jit._tier_queue.unfinished_tasks
    assert cli_main(["run", str(path), "--data-in", str(data_in), "--repeat", "3"]) == 0
    assert _summary(capsys.readouterr().out) == (want, "direct")
    assert jit._tier_queue.unfinished_tasks == queued == 0


def test_tiered_says_direct_while_llvm_is_not_ready(obj):
    path, data_in, want = obj
    jit.tiering_wait()
    data = data_in.read_bytes()
    with jit._llvm_lock:        # the background compile cannot finish during these runs
        result = run_program(path, None, data, repeat=20, engine="jit", jit_tier="tiered")
    jit.tiering_wait()
    assert (result.retval, result.code) == (want, "direct")


def test_env_tier_is_the_default_and_the_flag_overrides_it(obj, capsys, monkeypatch):
    path, data_in, want = obj
    monkeypatch.setenv("URINGBPF_JIT_TIER", "direct")
    assert cli_main(["run", str(path), "--data-in", str(data_in)]) == 0
    assert _summary(capsys.readouterr().out) == (want, "direct")
    assert cli_main(["run", str(path), "--data-in", str(data_in), "--jit-tier", "llvm"]) == 0
    assert _summary(capsys.readouterr().out) == (want, "llvm")


@pytest.mark.parametrize("args", [["--jit-tier", "direct", "--wait-llvm"],
                                  ["--jit-tier", "llvm", "--wait-llvm"],
                                  ["--interp", "--jit-tier", "direct"],
                                  ["--interp", "--wait-llvm"]])
def test_tier_options_that_cannot_apply_are_refused(obj, capsys, args):
    path, data_in, _ = obj
    assert cli_main(["run", str(path), "--data-in", str(data_in)] + args) != 0
    err = capsys.readouterr().err
    assert "--wait-llvm" in err or "--jit-tier" in err, err


def test_unknown_tier_is_refused(obj, capsys):
    path, data_in, _ = obj
    assert cli_main(["run", str(path), "--data-in", str(data_in), "--jit-tier", "fast"]) == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="JIT tier"):
        run_program(path, None, b"", engine="jit", jit_tier="fast")


def test_interpreter_reports_no_jit_code(obj):
    path, data_in, want = obj
    result = run_program(path, None, data_in.read_bytes(), engine="interp")
    assert (result.retval, result.code) == (want, "")


def test_a_bad_tier_in_the_environment_is_one_line_not_a_traceback(obj, capsys, monkeypatch):
    path, data_in, _ = obj
    monkeypatch.setenv("URINGBPF_JIT_TIER", "bogus")
    assert cli_main(["run", str(path), "--data-in", str(data_in)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "URINGBPF_JIT_TIER" in err and "'bogus'" in err, err
    assert "Traceback" not in err
    # the interpreter needs no JIT tier: the same environment does not stop it
    assert cli_main(["run", str(path), "--data-in", str(data_in), "--interp"]) == 0
    # one error class wherever the tier is read, which every command reports in one line
    with pytest.raises(JitTierError):
        engines.jit_tier()
    assert issubclass(JitTierError, expected_errors()) and issubclass(JitTierError, ValueError)
