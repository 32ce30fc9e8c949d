"""CLI fuzz: every subcommand x bad input. No traceback, the documented exit status.

Exit status contract (uringbpf.tools): 0 success, 1 failure (bad input file, rejected
program...), 2 usage (bad command line). Runs in-process: an exception escaping
``main`` (a traceback for the user) fails the test.
"""

from __future__ import annotations

import re

import pytest

from uringbpf.tools import COMMANDS

FILE_COMMANDS = {           # subcommand -> extra arguments it needs with one input file
    "cc": ["-o", "{tmp}/out.o"],
    "disasm": [],
    "asm": ["-o", "{tmp}/out.bin"],
    "verify": [],
    "run": [],
}


def _inputs(tmp_path, socket_obj) -> dict:
    elf = socket_obj.read_bytes()
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "trunc_head").write_bytes(elf[:20])
    (tmp_path / "trunc_half").write_bytes(elf[:len(elf) // 2])
    (tmp_path / "dir").mkdir()
    return {
        "missing": tmp_path / "missing",
        "empty": tmp_path / "empty",
        "directory": tmp_path / "dir",
        "binary": tmp_path / "binary",
        "truncated-header": tmp_path / "trunc_head",
        "truncated-half": tmp_path / "trunc_half",
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "directory", "binary", "truncated-header",
                                  "truncated-half"])
@pytest.mark.parametrize("name", list(FILE_COMMANDS))
def test_bad_input_file(cli, tmp_path, socket_obj, name, kind):
    path = _inputs(tmp_path, socket_obj)[kind]
    extra = [a.format(tmp=tmp_path) for a in FILE_COMMANDS[name]]
    status, out, err = cli(name, path, *extra)
    assert status == 1, (status, out, err)
    line = err.strip()
    assert line.startswith(f"uringbpf {name}: "), err
    assert "Traceback" not in err
    assert not re.search(r"\b[A-Z]\w*(Error|Exception)\b", err), err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help(cli, name):
    status, out, _ = cli(name, "--help")
    assert status == 0 and out.startswith(f"usage: uringbpf {name}")


NO_ARGS_STATUS = {"include-dir": 0, "bench": 0}   # demo without arguments runs the demo


# compare without arguments runs the full, timed comparison (minutes): see tests/compare
@pytest.mark.parametrize("name", [n for n in COMMANDS if n not in ("demo", "conformance-plugin",
                                                                    "compare")])
def test_no_arguments(cli, name):
    status, _, err = cli(name)
    assert status == NO_ARGS_STATUS.get(name, 2), err
    if status == 2:
        assert err.startswith(f"usage: uringbpf {name}")


def test_conformance_plugin_without_program(cli, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    status, out, _ = cli("conformance-plugin")
    assert status == 1 and "empty program" in out


@pytest.mark.parametrize("args", [
    ["run", "{obj}", "--prog", "sum8", "--data-size", "99999999999"],
    ["run", "{obj}", "--prog", "sum8", "--repeat", "1" + "0" * 30],
    ["run", "{obj}", "--prog", "sum8", "--data-size", "-5"],
    ["verify", "{obj}", "--log-level", "99999999999"],
    ["cc", "{obj}", "--cpu", "v99"],
    ["demo", "--depth", "99999999999"],
    ["demo", "--block", "99999999999"],
    ["demo", "--size-mb", "1e300"],
    ["demo", "--only", "nosuch"],
    ["disasm", "{obj}", "--style", "nosuch"],
    ["compare", "--rounds", "1" + "0" * 20],      # was accepted: ran for hours
    ["compare", "--rounds", "0"],
    ["compare", "--rounds", "-3"],
    ["demo", "--engine", "llvm"],
])
def test_huge_and_bad_numbers_are_usage_errors(cli, socket_obj, args):
    status, _, err = cli(*[a.format(obj=socket_obj) for a in args])
    assert status == 2, err
    assert err.startswith("usage: uringbpf") or err.startswith("uringbpf demo:")


def test_bench_names(cli):
    status, out, _ = cli("bench")
    assert status == 0 and "uringbpf bench all" in out
    status, _, err = cli("bench", "nosuch")
    assert status == 1 and "no benchmark 'nosuch'" in err


def test_disasm_bad_hex_and_ragged_bytecode(cli, tmp_path):
    bad_hex = tmp_path / "p.hex"
    bad_hex.write_text("b7 0 00 00 2a 00 00 00 abc\n")
    status, _, err = cli("disasm", bad_hex)
    assert status == 1 and "hex" in err
    ragged = tmp_path / "r.bin"
    ragged.write_bytes(b"\x95\x00\x00")
    status, _, err = cli("disasm", ragged)
    assert status == 1 and err.count(str(ragged)) == 1
