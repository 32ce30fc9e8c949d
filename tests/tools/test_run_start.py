"""The front end's start-up (issue #19): a known command builds only its own parser and
imports only its own module; everything else (help, no command, an unknown command)
still gets the complete parser that lists every command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from uringbpf import tools


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON value, returned here."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def _tool_modules_after(argv: list[str]) -> dict:
    code = f"""
import json, sys
from uringbpf.tools import main
status = main({argv!r})
mods = sorted(m for m in sys.modules if m.startswith("uringbpf.tools."))
print(json.dumps({{"status": status, "mods": mods}}))
"""
    return _fresh(code)


def test_a_command_imports_only_its_own_module(socket_obj):
    got = _tool_modules_after(["run", str(socket_obj), "--prog", "sum8", "--data-size", "8",
                               "--interp"])
    assert got["status"] == 0
    # common is what every command shares; no other command's module is imported
    assert got["mods"] == ["uringbpf.tools.common", "uringbpf.tools.run"]


@pytest.mark.parametrize("argv, command", [
    (["verify", "--help"], "verify"),
    (["-v", "disasm", "--help"], "disasm"),
    (["--verbose", "--verbose", "cc", "--help"], "cc"),
])
def test_the_command_word_follows_the_front_ends_options(argv, command):
    got = _tool_modules_after(argv)
    assert got["status"] == 0
    assert got["mods"] == sorted(["uringbpf.tools.common", f"uringbpf.tools.{tools.COMMANDS[command]}"])


def test_help_still_lists_every_command(cli):
    status, out, _ = cli("--help")
    assert status == 0
    for name in tools.COMMANDS:
        assert f"\n    {name}" in out
    # each with its one-line summary (its module's HELP, first words)
    assert tools._module("demo").HELP.split()[0] in out


@pytest.mark.parametrize("argv", [[], ["--version"], ["-v"], ["nosuch"], ["nosuch", "run"]])
def test_without_a_known_command_the_parser_is_complete(argv):
    assert tools._command_named(argv) is None
    text = tools.build_parser(tools._command_named(argv)).format_help()
    for name in tools.COMMANDS:
        assert f"\n    {name}" in text


def test_an_unknown_command_lists_the_choices(cli):
    status, _, err = cli("nosuch")
    assert status == 2 and "invalid choice: 'nosuch'" in err
    for name in tools.COMMANDS:
        assert repr(name) in err


def test_the_command_is_the_first_word_without_a_dash():
    assert tools._command_named(["-v", "run", "x.o", "verify"]) == "run"
    assert tools._command_named(["--version", "asm"]) == "asm"
    # a command's argument that is a command's name does not choose the command
    assert tools._command_named(["nosuch", "run"]) is None


def test_a_single_command_parser_parses_as_the_complete_one(socket_obj):
    argv = ["-v", "run", str(socket_obj), "--prog", "sum8", "--data-size", "8", "--repeat", "3"]
    full = vars(tools.build_parser().parse_args(argv))
    one = vars(tools.build_parser("run").parse_args(argv))
    for ns in (full, one):
        ns.pop("_parser")
    assert one == full


def _after_main(call: str) -> dict:
    """Run ``call`` (a call of tools.main) in a fresh interpreter with garbage in a cycle
    whose finalizer records that it ran; report the freeze count and the finalizer."""
    code = f"""
import gc, json, sys, weakref
from uringbpf.tools import main
ran = []
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a
weakref.finalize(a, ran.append, "collected")
del a, b
gc.disable()                      # the cycle stays until main collects it
sys.argv = ["uringbpf", "include-dir"]
status = {call}
print(json.dumps({{"status": status, "frozen": gc.get_freeze_count(), "ran": ran}}))
"""
    return _fresh(code)


def test_the_process_command_collects_its_garbage_then_freezes_the_rest():
    got = _after_main("main()")
    assert got["status"] == 0
    assert got["ran"] == ["collected"]        # finalized before the interpreter's exit
    assert got["frozen"] > 1000               # the modules' objects: not traversed again


def test_a_call_with_arguments_leaves_the_collector_alone():
    got = _after_main('main(["include-dir"])')
    assert got == {"status": 0, "frozen": 0, "ran": []}
