"""The JIT's on-disk code cache (#19): a second process loads the machine code instead of
compiling it, a damaged file is ignored, a directory others may write is not used, and
the key follows how calls resolve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
from uringbpf.bpf import isa, jit
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.helpers import Runtime
text = '''
    mov %r6, %r1
    call 7
    mov %r0, %r6
    mul %r0, 3
    add %r0, 1
    exit
'''
prog = isa.Program("disk", assemble(text))
fn = jit.compile(prog, Runtime(), tier="llvm")
out = {"r0": fn(14), "info": jit.cache_info(), "timings": sorted(fn.timings),
       "ir_has_call": "call i64 @" in fn.ir}
print(json.dumps(out))
"""


def run(cache_home: Path, **env) -> dict:
    e = dict(os.environ, XDG_CACHE_HOME=str(cache_home), **env)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=e, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_code_from_disk_and_damage_is_ignored(tmp_path):
    first = run(tmp_path)
    assert first["r0"] == 43 and first["info"]["disk_writes"] == 1
    assert first["info"]["disk_hits"] == 0 and "codegen" in first["timings"]
    (f,) = (tmp_path / "uringbpf" / "jit").glob("*.jit")
    second = run(tmp_path)
    assert second["r0"] == 43 and second["info"]["disk_hits"] == 1
    assert second["timings"] == ["disk"]              # no IR, no LLVM passes, no codegen
    assert second["ir_has_call"]                      # the IR is regenerated on demand
    # one flipped bit of machine code: not loaded, compiled again and rewritten whole
    blob = bytearray(f.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    f.write_bytes(bytes(blob))
    again = run(tmp_path)
    assert again["r0"] == 43 and again["info"]["disk_hits"] == 0
    assert again["info"]["disk_writes"] == 1
    f.write_bytes(f.read_bytes()[:100])               # truncated
    assert run(tmp_path)["info"]["disk_hits"] == 0


def test_a_directory_others_can_write_is_not_used(tmp_path):
    d = tmp_path / "uringbpf" / "jit"
    d.mkdir(parents=True)
    os.chmod(d, 0o777)
    out = run(tmp_path)
    assert out["r0"] == 43 and out["info"]["disk"] == "" and out["info"]["disk_writes"] == 0
    assert not list(d.glob("*.jit"))


def test_turned_off_by_the_environment(tmp_path):
    out = run(tmp_path, URINGBPF_JIT_CACHE="0")
    assert out["info"]["disk"] == "" and not (tmp_path / "uringbpf" / "jit").exists()


def test_key_follows_call_resolution():
    from uringbpf.bpf import isa, jit
    from uringbpf.bpf.asm import assemble
    from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime

    prog = isa.Program("k", assemble("call 1000\nexit"))
    sig_py = jit._Binder(prog, Runtime(), jit._RunState(1), helpers={
        1000: Helper(Proto("h", (Arg.ANYTHING,) * 5), lambda *a: 1, 1000, None)}).call_signature()
    sig_nat = jit._Binder(prog, Runtime(), jit._RunState(1), helpers={
        1000: Helper(Proto("h", (Arg.ANYTHING,) * 5), lambda *a: 1, 1000,
                     ("base", "ubpf_helper_ktime_get_ns"))}).call_signature()
    jit.initialize()
    keys = {jit._disk_key(prog, False, 1, sig_py), jit._disk_key(prog, False, 1, sig_nat),
            jit._disk_key(prog, True, 1, sig_nat), jit._disk_key(prog, False, 2, sig_nat)}
    assert len(keys) == 4
    assert "0x" not in repr(sig_nat)                  # no process address in the key
