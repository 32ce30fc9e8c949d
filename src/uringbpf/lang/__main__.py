"""``python -m uringbpf.lang FILE.py``: compile the modules a Python file defines.

    python -m uringbpf.lang examples/python/nops.py --emit-obj nops.bpf.o
    python -m uringbpf.lang examples/python/nops.py --verify      # load: verify + JIT
    python -m uringbpf.lang examples/python/nops.py --ir          # the LLVM IR

Every :class:`~uringbpf.lang.Module` found at the top level of the file is compiled;
errors are printed as ``file:line: message`` and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from .errors import LangError
from .module import Module


def _modules(path: Path) -> list[Module]:
    name = f"_uringbpf_lang_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(mod)
    return [v for v in vars(mod).values() if isinstance(v, Module)]


def main(argv: list[str] | None = None) -> int:
    """Command line: compile a Python BPF module; print IR, write the object or load it."""
    ap = argparse.ArgumentParser(prog="python -m uringbpf.lang", description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--emit-obj", metavar="PATH",
                    help="write the .bpf.o (several modules: PATH gets the module name inserted)")
    ap.add_argument("--ir", action="store_true", help="print the LLVM IR")
    ap.add_argument("--verify", action="store_true", help="load the object: verify and JIT")
    args = ap.parse_args(argv)
    modules = _modules(args.file)
    if not modules:
        print(f"{args.file}: defines no uringbpf.lang.Module", file=sys.stderr)
        return 1
    try:
        for m in modules:
            c = m.compile()
            print(f"{m.name}: {len(m.programs)} program(s), {len(c.elf)} bytes "
                  f"(IR {c.ir_seconds * 1e3:.1f} ms, LLVM {c.llvm_seconds * 1e3:.1f} ms)")
            if args.ir:
                print(c.ir)
            if args.emit_obj:
                out = Path(args.emit_obj)
                if len(modules) > 1:
                    out = out.with_name(f"{out.stem.split('.')[0]}.{m.name}{''.join(out.suffixes)}")
                m.emit_obj(out)
                print(f"wrote {out}")
            if args.verify:
                loaded = m.load("jit")
                try:
                    for name, p in loaded.obj.programs.items():
                        r = p.verifier_result
                        print(f"  {name}: verified ({r.processed_insns if r else '?'} insns processed), "
                              f"engine {p.engine}")
                finally:
                    loaded.close()
    except LangError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
