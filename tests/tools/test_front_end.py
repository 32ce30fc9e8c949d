"""The ``uringbpf`` front end: usage, --version, --help of every subcommand, exit codes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from uringbpf import __version__
from uringbpf.tools import COMMANDS


def test_bare_command_prints_usage_and_exits_2(cli):
    status, out, err = cli()
    assert status == 2
    assert err.startswith("usage: uringbpf") and "a command is required" in err
    assert out == ""


def test_version_and_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "uringbpf", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"uringbpf {__version__}"


def test_top_level_help_lists_every_command(cli):
    status, out, _ = cli("--help")
    assert status == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\b", out, re.M), name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_has_real_help(cli, name):
    status, out, err = cli(name, "--help")
    assert status == 0, err
    assert out.startswith(f"usage: uringbpf {name}")
    # a description beyond the usage line, and no reStructuredText markup
    assert len(out.splitlines()) > 5
    assert "``" not in out and ":class:" not in out and ":func:" not in out


def test_cc_help_documents_its_options(cli):
    _, out, _ = cli("cc", "--help")
    for option in ("--cpu", "-I DIR", "-D NAME", "--compiler", "-x c"):
        assert option in out, option


def test_unknown_command_and_option_are_usage_errors(cli):
    status, _, err = cli("nosuch")
    assert status == 2 and "invalid choice" in err
    status, _, err = cli("verify", "x.o", "--bogus")
    assert status == 2
    assert err.startswith("usage: uringbpf verify") and "--bogus" in err


def test_errors_name_no_python_classes(cli, tmp_path):
    missing = tmp_path / "missing.o"
    for args in (("verify", missing), ("run", missing), ("disasm", missing), ("asm", missing),
                 ("cc", tmp_path / "missing.c")):
        status, _, err = cli(*args)
        assert status == 1, args
        assert err.count(str(missing.parent)) == 1, err        # the path, once
        assert not re.search(r"\b[A-Z][a-zA-Z]+(Error|Exception)\b", err), err
        assert err.startswith(f"uringbpf {args[0]}: ")
