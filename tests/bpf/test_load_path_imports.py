"""Start-up of the load path (issue #19, first run): what ``import uringbpf`` and the
``uringbpf run``/``verify`` commands import, each checked in a fresh interpreter."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

from uringbpf.uring import syscalls

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules_after(code: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_uringbpf_imports_neither_the_ring_nor_the_loader_nor_llvm():
    mods = _modules_after("import uringbpf")
    assert not {m for m in mods if m.startswith(("uringbpf.uring", "llvmlite"))}
    assert "uringbpf.bpf.object" not in mods


def test_the_loader_commands_do_not_import_the_ring():
    mods = _modules_after("import uringbpf.tools.run, uringbpf.tools.verify, uringbpf.bpf.run")
    assert "uringbpf.bpf.object" in mods
    assert not {m for m in mods if m.startswith("uringbpf.uring")}


def test_the_public_names_still_resolve():
    mods = _modules_after(
        "import uringbpf\n"
        "from uringbpf import Ring, Buffer, BpfObject\n"
        "from uringbpf.uring.ring import Ring as R\n"
        "from uringbpf.bpf.object import BpfObject as B\n"
        "assert Ring is R and BpfObject is B and uringbpf.Ring is R\n"
        "assert {'Ring', 'Buffer', 'BpfObject'} <= set(dir(uringbpf))\n"
        "ns = {}\n"
        "exec('from uringbpf import *', ns)\n"
        "assert ns['Ring'] is R and ns['Buffer'] is Buffer\n"
        "try:\n"
        "    uringbpf.NoSuchName\n"
        "except AttributeError as exc:\n"
        "    assert 'NoSuchName' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n")
    assert "uringbpf.uring.ring" in mods


def test_a_direct_tier_jit_run_never_loads_llvm(tmp_path):
    """The default JIT tier runs the direct tier's code: compiling and running a program
    leaves LLVM (llvmlite, ~50 ms to load) unloaded; asking for the llvm tier loads it."""
    code = ("from uringbpf.bpf import asm, isa, jit\n"
            "p = isa.Program('p', asm.assemble('r0 = 6\\nr0 *= 7\\nexit'))\n"
            "assert jit.compile(p, cache=False)() == 42\n")
    assert not {m for m in _modules_after(code) if m.startswith("llvmlite")}
    code += "assert jit.compile(p, cache=False, tier='llvm')() == 42\n"
    assert "llvmlite.binding" in _modules_after(code)


def test_importing_the_ring_layer_and_the_designs_starts_no_process():
    """``ctypes.util.find_library`` runs ``ldconfig -p`` in a child process (~5 ms of wall
    time); the ring layer, which every design imports at its first load, takes the C
    library already in the process instead."""
    code = ("import sys, json\n"
            "spawned = []\n"
            "def hook(event, args):\n"
            "    if event in ('subprocess.Popen', 'os.posix_spawn', 'os.exec', 'os.fork',\n"
            "                 'os.spawn', 'os.system', 'os.forkpty'):\n"
            "        spawned.append(event)\n"
            "sys.addaudithook(hook)\n"
            "import uringbpf.uring, uringbpf.designs.loop, uringbpf.designs.ops\n"
            "import uringbpf.designs.requests, uringbpf.designs.kbuf, uringbpf.designs.filter\n"
            "print(json.dumps(spawned))\n")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == []


def test_the_ring_layers_c_library_sets_errno():
    """``CDLL(None, use_errno=True)``: a failing call through it reports its errno."""
    ctypes.set_errno(0)
    assert syscalls._munmap(1, 4096) == -1        # not page-aligned: EINVAL
    assert ctypes.get_errno() == errno.EINVAL
