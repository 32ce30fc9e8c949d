"""The ``uringbpf`` command: one argparse front end, one module per subcommand.

``uringbpf`` (the console script) and ``python -m uringbpf`` both call :func:`main`.
Each subcommand is a module of this package listed in :data:`COMMANDS`; the module
provides

* ``HELP`` -- the one-line summary shown by ``uringbpf --help``;
* ``DESCRIPTION`` (optional) -- the text at the top of ``uringbpf NAME --help``;
* ``configure(parser)`` -- adds the subcommand's arguments;
* ``run(args) -> int`` -- does the work and returns the exit status;
* ``SOCKETS = True`` (optional) -- the command writes to sockets, see below.

Modules import what they use at their top: importing this package has already imported
``uringbpf`` itself, which compiles nothing.  ``uringbpf NAME`` imports only ``NAME``'s
module and builds only its parser; ``uringbpf --help`` (and a missing or unknown command)
imports them all, to list them. Only a module needing something heavier
(LLVM, the designs) imports it inside ``run``, with a ``# why:`` comment, so that
``uringbpf --help`` and the other commands do not pay for it.

Exit status, the same for every subcommand:

* 0 -- success;
* 1 -- the command ran and failed: an input file is missing, unreadable or invalid, a
  program was rejected, compilation failed, a named program does not exist;
* 2 -- usage: the command line itself is wrong (unknown option, missing argument, a
  number out of range);
* 130 -- interrupted (Ctrl-C), as shells report SIGINT.

Errors are one line on stderr, ``uringbpf NAME: what went wrong``; a subcommand reports
failure by raising :class:`~uringbpf.tools.common.CommandError` (or one of the library
errors listed in :func:`~uringbpf.tools.common.expected_errors`).

Writing to a closed pipe (``uringbpf verify x.o | head``) ends the process the way
SIGPIPE ends a Unix tool: silently, status 141 in the shell. Commands run with SIGPIPE's
default action restored, except those declaring ``SOCKETS = True`` (the demo's NBD
target), where a peer closing a socket must stay an EPIPE error: they keep Python's
ignored SIGPIPE and the front end turns the BrokenPipeError of stdout into the same end.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import sys
from types import ModuleType

from .. import __version__
from .common import CommandError, expected_errors, message_of

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommand name -> module of this package implementing it (in ``--help`` order).
COMMANDS: dict[str, str] = {
    "cc": "cc",
    "include-dir": "include_dir",
    "vmlinux": "vmlinux",
    "disasm": "disasm",
    "asm": "asm",
    "verify": "verify",
    "run": "run",
    "conformance-plugin": "conformance",
    "demo": "demo",
    "bench": "bench",
    "compare": "compare",
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{COMMANDS[name]}")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the paragraphs of descriptions as written (they are prose, not reflowable)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``uringbpf`` parser: one subparser per entry of :data:`COMMANDS`, or only
    ``command``'s when one is named (:func:`main` does that for a known command, so
    ``uringbpf run`` neither imports the other commands' modules nor builds their
    parsers: start-up time, #19)."""

    parser = argparse.ArgumentParser(
        prog="uringbpf", formatter_class=_Formatter,
        description="Programmable io_uring from Python: compile, inspect, verify and run "
                    "eBPF programs, and tour the designs (uringbpf demo).",
        epilog="Exit status: 0 success, 1 failure, 2 usage error. "
               "'uringbpf COMMAND --help' describes one command.")
    parser.add_argument("--version", action="version", version=f"uringbpf {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="report what the library decides (compiler choice, fallbacks); "
                             "twice for debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS if command is None else [command]:
        mod = _module(name)
        p = sub.add_parser(name, help=mod.HELP, formatter_class=_Formatter,
                           description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.configure(p)
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names, when it names a known one; else None.

    The front end's own options (``-v``, ``--version``, ``-h``) take no value, so the
    first word not starting with ``-`` is the command.  None (no command, or an unknown
    one) gets the complete parser, whose usage and errors list every command.
    """
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _die_of_sigpipe() -> None:
    """Leave as ``yes | head`` does: killed by SIGPIPE, no traceback, no message.

    Python ignores SIGPIPE so writes raise BrokenPipeError instead; we restore the
    default only here, at the very end, so sockets used while running (the demo's NBD
    target) keep getting EPIPE rather than killing the process.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # the interpreter's final flush must not fail
    except OSError:
        pass  # stdout already gone: nothing left to protect
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)


def main(argv: list[str] | None = None) -> int:
    """Run ``uringbpf ARGV...`` and return the exit status (0, 1 or 2; see the module doc).

    Without ``argv`` it runs the process's own command line (the ``uringbpf`` console
    script, ``python -m uringbpf``), whose next step is the interpreter's exit.  Then the
    command's garbage is collected (its finalizers run, as they would at exit) and what
    is still alive is frozen (:func:`gc.freeze`): the collections Python runs while it
    shuts down would otherwise traverse every module's objects again and again, for
    nothing (8 ms of a 0.125 s ``uringbpf run``, #19).  Those objects are still freed as
    their modules are cleared, and :mod:`atexit` and :class:`weakref.finalize` callbacks
    run as before.  With ``argv`` (a caller in a running program, tests) nothing changes.
    """
    status = _run(sys.argv[1:] if argv is None else list(argv))
    if argv is None:
        gc.collect()
        gc.freeze()
    return status


def _run(argv: list[str]) -> int:
    parser = build_parser(_command_named(argv))
    if not argv:
        parser.print_usage(sys.stderr)
        print("uringbpf: a command is required ('uringbpf --help' lists them)", file=sys.stderr)
        return 2
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:   # reported by the subcommand's parser, so its usage line is shown
            (getattr(args, "_parser", None) or parser).error(
                f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:       # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("uringbpf: a command is required ('uringbpf --help' lists them)", file=sys.stderr)
        return 2
    _configure_logging(args.verbose)
    previous = signal.getsignal(signal.SIGPIPE)
    if not getattr(_module(args.command), "SOCKETS", False):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    where = f"uringbpf {args.command}"
    try:
        try:
            status = int(args._run(args) or 0)
        except CommandError as exc:
            print(f"{where}: {exc}", file=sys.stderr)
            status = exc.status
        except BrokenPipeError:
            raise       # an OSError, but not a failure of the command: see below
        except expected_errors() as exc:
            print(f"{where}: {message_of(exc)}", file=sys.stderr)
            status = 1
        except KeyboardInterrupt:
            print(f"{where}: interrupted", file=sys.stderr)
            status = 130
        sys.stdout.flush()
    except BrokenPipeError:
        _die_of_sigpipe()
        status = 1   # not reached: SIGPIPE ends the process
    finally:
        # main() may be called in-process (tests, embedding): leave the handler as found.
        signal.signal(signal.SIGPIPE, previous)
    return status


def _configure_logging(verbose: int) -> None:
    """Show the ``uringbpf`` logger's records on stderr (warnings, or more with -v)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    log = logging.getLogger("uringbpf")
    if not any(getattr(h, "_uringbpf_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("uringbpf: %(message)s"))
        handler._uringbpf_cli = True   # type: ignore[attr-defined]  # one handler per process
        log.addHandler(handler)
    log.setLevel(level)
