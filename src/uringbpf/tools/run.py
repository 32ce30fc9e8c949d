"""``uringbpf run``: run one program on a data buffer, like ``bpftool prog run``."""

from __future__ import annotations

import argparse
import sys

from ..bpf.engines import JIT_TIERS, jit_tier
from ..bpf.run import MAX_DATA_SIZE, MAX_REPEAT, run_program
from ..errors import BpfVerifierError
from .common import CommandError, choose_programs, exists_dir_for, int_in_range, open_object, \
    read_input, write_output

HELP = "run one program on a data buffer and time it (like bpftool prog run)"
DESCRIPTION = """\
Load one program of an object (verified, JIT-compiled) and run it on a data buffer:
r1 points to the buffer, r2 holds its length. Prints the return value of the last run
and the average duration of one run, timed from native code.

Only programs whose context is a data buffer can run this way: socket filters
(SEC("socket")), SEC("syscall") programs and raw bytecode. Other types (struct_ops
members such as loop_step, io_uring programs...) are refused, as bpftool refuses types
without a test run: their context holds pointers a data buffer would let you forge."""


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf run``."""

    p.add_argument("obj", help="eBPF ELF object (from 'uringbpf cc', clang or zig cc)")
    p.add_argument("--prog", metavar="NAME",
                   help="program (function) name; optional if the object has one program")
    p.add_argument("--data-in", metavar="FILE",
                   help="file whose bytes are the data buffer ('-' for stdin)")
    p.add_argument("--data-size", type=int_in_range(0, MAX_DATA_SIZE), default=64,
                   metavar="N", help="size of a zero-filled buffer when --data-in is not "
                                     f"given (default 64, at most {MAX_DATA_SIZE})")
    p.add_argument("--data-out", metavar="FILE", help="write the buffer after the runs here")
    p.add_argument("--repeat", type=int_in_range(1, MAX_REPEAT), default=1, metavar="N",
                   help="number of runs (default 1); Ctrl-C stops early")
    eng = p.add_mutually_exclusive_group()
    eng.add_argument("--jit", dest="engine", action="store_const", const="jit",
                     help="JIT-compile the program (the default when llvmlite, the "
                          "uringbpf[jit] extra, is installed; an error if it cannot)")
    eng.add_argument("--interp", dest="engine", action="store_const", const="interp",
                     help="use the reference interpreter (the default without llvmlite)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the verifier (implies --checked for the JIT)")
    p.add_argument("--checked", action="store_true",
                   help="JIT with a bounds check on every memory access")
    p.add_argument("--jit-tier", choices=JIT_TIERS, metavar="TIER",
                   help="JIT code: auto (direct x86-64 code, LLVM's for a program the "
                        "direct tier does not translate), direct, llvm, or tiered (direct "
                        "code at once, LLVM's when its background compile is done) "
                        "(default: $URINGBPF_JIT_TIER or auto); the summary says which "
                        "code ran")
    p.add_argument("--wait-llvm", action="store_true",
                   help="with the tiered tier: wait for LLVM's code before the runs, so "
                        "every timed run is LLVM's")


def _code_note(code: str) -> str:
    """The summary's word on which JIT code ran (tiers: docs/jit.md)."""
    if not code:
        return ""
    if "+" in code:
        return (f", code: {code} (LLVM's code replaced the direct code during the runs: "
                "the average mixes both; --wait-llvm or --jit-tier to time one)")
    return f", code: {code}"


def _check_tier_args(args: argparse.Namespace) -> None:
    if args.engine == "interp" and (args.jit_tier is not None or args.wait_llvm):
        raise CommandError("--jit-tier and --wait-llvm choose the JIT's code: not with --interp")
    if args.engine == "interp":
        return
    tier = jit_tier(args.jit_tier)      # the flag, else $URINGBPF_JIT_TIER: before loading
    if args.wait_llvm and tier != "tiered":
        raise CommandError(f"--wait-llvm: the {tier} tier never switches code (it applies to "
                           "the tiered tier)")


def run(args: argparse.Namespace) -> int:
    """Run the program and print its result."""

    if args.data_in is not None:
        data = read_input(args.data_in, allow_empty=True, limit=MAX_DATA_SIZE)
        if len(data) > MAX_DATA_SIZE:
            raise CommandError(f"{args.data_in}: larger than {MAX_DATA_SIZE} bytes")
    else:
        data = bytes(args.data_size)
    if args.data_out is not None:
        exists_dir_for(args.data_out)
    obj = open_object(args.obj)     # parsed once: run_program takes it and closes it
    try:
        prog = choose_programs(args.obj, obj.programs, [args.prog] if args.prog else None,
                               one=True)[0]
        _check_tier_args(args)
    except CommandError:
        obj.close()
        raise
    engine = args.engine        # None: the JIT when installed (uringbpf.bpf.engines)
    checked = args.checked or args.no_verify
    try:
        result = run_program(args.obj, prog, data, args.repeat, engine=engine,
                             strict_engine=True, verify=not args.no_verify, checked=checked,
                             jit_tier=args.jit_tier, wait_llvm=args.wait_llvm, opened=obj)
    except BpfVerifierError as exc:   # one line; the log is one command away
        raise CommandError(f"{exc.message} (the log: uringbpf verify {args.obj} --prog {prog} "
                           "--log-level 1)") from None
    if args.data_out is not None:
        write_output(args.data_out, result.data_out)
    r = result.retval
    sys.stdout.write(f"Return value: {r} ({r:#x}), duration (average): {result.avg_ns:.0f} ns, "
                     f"runs: {result.runs}, engine: {result.engine}"
                     f"{' (checked)' if checked and result.engine == 'jit' else ''}"
                     f"{_code_note(result.code)}\n")
    return 0
