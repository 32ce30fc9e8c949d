"""Our own bpf_conformance runner: parse ``.data`` files, run the plugin, compare.

Usable against any directory of ``.data`` files (ours under tests/bpf/data, or the
upstream suite fetched separately)::

    python tests/bpf/conformance_runner.py /tmp/bpf_conformance/tests --cpu-version v4
    python tests/bpf/conformance_runner.py tests/bpf/data --subprocess   # real plugin process
    python tests/bpf/conformance_runner.py DIR --plugin "uringbpf conformance-plugin --jit"

Like the upstream runner it skips files whose instructions need a newer cpu version
or a conformance group that is not enabled (``--groups``; default: all groups, since we
implement callx and report packet loads as unsupported) and files it cannot parse.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from uringbpf.bpf import conformance, isa

PLUGIN_CMD = [sys.executable, "-m", "uringbpf", "conformance-plugin"]


@dataclass
class Outcome:
    path: str
    status: str          # PASS, FAIL, SKIP, ERROR
    message: str = ""


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def run_file(path: str | Path, *, cpu_version: int = 4, groups: set[str] | None = None,
             plugin: list[str] | None = None, engine: str = "interp",
             timeout: float = 60.0) -> Outcome:
    """Run one ``.data`` file.  ``plugin=None`` runs in-process (same code as the plugin)."""
    path = str(path)
    groups = set(isa.GROUPS) if groups is None else groups
    try:
        test = conformance.parse_data_file(path)
    except (ValueError, OSError) as exc:
        return Outcome(path, "SKIP", f"unparsable: {exc}")
    if test.skip:
        return Outcome(path, "SKIP", test.skip)
    try:
        insns = test.program()
    except (ValueError, isa.DecodeError) as exc:
        return Outcome(path, "SKIP", f"does not assemble: {exc}")
    if not insns:
        return Outcome(path, "SKIP", "no instructions")
    need = conformance.required_cpu_version(insns)
    if need > cpu_version:
        return Outcome(path, "SKIP", f"needs cpu v{need}")
    missing = conformance.required_groups(insns) - groups
    if missing:
        return Outcome(path, "SKIP", f"needs groups {sorted(missing)}")
    code = test.bytecode()
    if plugin is None:
        rc, out = conformance.execute(code, test.mem, engine)
        err = out if rc else ""
    else:
        args = _place_memory(plugin, _hex(test.mem)) if test.mem else list(plugin)
        try:
            proc = subprocess.run(args, input=_hex(code) + "\n", capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome(path, "ERROR", f"plugin timed out after {timeout}s")
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    ok, message = conformance.judge(test, rc, out, err)
    return Outcome(path, "PASS" if ok else "FAIL", message)


def _place_memory(plugin: list[str], mem_hex: str) -> list[str]:
    """Insert the memory argument before the plugin's own options (``--jit`` ...)."""
    args = list(plugin)
    i = len(args)
    while i > 0 and args[i - 1].startswith("--"):
        i -= 1
    return args[:i] + [mem_hex] + args[i:]


def run_directory(directory: str | Path, **kw) -> list[Outcome]:
    files = sorted(Path(directory).glob("*.data"))
    include = kw.pop("include_regex", None)
    exclude = kw.pop("exclude_regex", None)
    outcomes = []
    for f in files:
        if include and not re.search(include, f.name):
            outcomes.append(Outcome(str(f), "SKIP", "include regex"))
            continue
        if exclude and re.search(exclude, f.name):
            outcomes.append(Outcome(str(f), "SKIP", "exclude regex"))
            continue
        outcomes.append(run_file(f, **kw))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help=".data files or directories")
    ap.add_argument("--cpu-version", default="v4", choices=("v1", "v2", "v3", "v4"))
    ap.add_argument("--groups", default="all",
                    help="'all', 'default' (RFC 9669 default: no packet/callx) or a comma list")
    ap.add_argument("--plugin", help="plugin command line (default: in-process)")
    ap.add_argument("--subprocess", action="store_true",
                    help="run the real `uringbpf conformance-plugin` process for every test")
    ap.add_argument("--jit", action="store_true", help="in-process: use the JIT engine")
    ap.add_argument("--include-regex")
    ap.add_argument("--exclude-regex")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.groups == "all":
        groups = set(isa.GROUPS)
    elif args.groups == "default":
        groups = set(isa.DEFAULT_GROUPS)
    else:
        groups = {g.strip() for g in args.groups.split(",") if g.strip()}
    plugin = shlex.split(args.plugin) if args.plugin else (PLUGIN_CMD if args.subprocess else None)
    kw = dict(cpu_version=int(args.cpu_version[1]), groups=groups, plugin=plugin,
              engine="jit" if args.jit else "interp")
    outcomes: list[Outcome] = []
    for p in args.paths:
        if Path(p).is_dir():
            outcomes += run_directory(p, include_regex=args.include_regex,
                                      exclude_regex=args.exclude_regex, **kw)
        else:
            outcomes.append(run_file(p, **kw))
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0, "ERROR": 0}
    for o in outcomes:
        counts[o.status] += 1
        if o.status in ("FAIL", "ERROR") or args.verbose:
            print(f"{o.status}: {o.path} {o.message}".rstrip())
    print(f"{counts['PASS']} passed, {counts['FAIL'] + counts['ERROR']} failed, "
          f"{counts['SKIP']} skipped")
    return 0 if counts["FAIL"] + counts["ERROR"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
