"""``python -m stripe.server FILE... [--chunk N] [--mode copy|zc|auto_zc] [--port P]``

Serves the striped target over NBD on 127.0.0.1 until SIGTERM/SIGINT; prints
``LISTENING <port>`` once clients may connect. (Run with ``examples/kbuf`` on sys.path, or
``python examples/kbuf/stripe/server.py``.) Standard clients work too, e.g.
``nbdinfo nbd://127.0.0.1:<port>/stripe`` or ``qemu-img info nbd://127.0.0.1:<port>/stripe``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

if __package__ in (None, ""):          # run as a script: make ``stripe`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "stripe"

from stripe.integrity import IntegrityLog          # noqa: E402
from stripe.layout import DEFAULT_CHUNK            # noqa: E402
from stripe.nbd import NbdServer                   # noqa: E402
from stripe.target import MODES, StripeTarget, start, stop   # noqa: E402


class StripeNbd:
    """Target + source + ring + NBD server, started and stopped together."""

    def __init__(self, paths, chunk_size=DEFAULT_CHUNK, mode="copy", queue_depth=32,
                 port=0, export="stripe", log_path=None, engine="auto"):
        self.integrity = IntegrityLog(log_path, engine)
        self.target = StripeTarget(paths, chunk_size, mode, queue_depth,
                                   integrity=self.integrity)
        self.source, self.ring, self.thread = start(self.target)
        self.nbd = NbdServer(self.source, self.target.size, export, port=port).start()
        self.port = self.nbd.port

    def close(self) -> None:
        """Stop the NBD server and the stripe target."""
        self.nbd.close()
        stop(self.source, self.ring, self.thread, self.target)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: serve a stripe over backing files by NBD on 127.0.0.1."""
    ap = argparse.ArgumentParser(prog="stripe.server", description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    ap.add_argument("--mode", choices=MODES, default="copy")
    ap.add_argument("--queue-depth", type=int, default=32)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--export", default="stripe")
    ap.add_argument("--log", default=None, help="integrity log file (crc32c of every write)")
    ap.add_argument("--engine", choices=("auto", "bpf", "native"), default="auto")
    args = ap.parse_args(argv)
    server = StripeNbd(args.files, args.chunk, args.mode, args.queue_depth, args.port,
                       args.export, args.log, args.engine)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(f"LISTENING {server.port} size={server.target.size} mode={args.mode} "
          f"crc={server.integrity.engine}", flush=True)
    while not done.wait(0.2):      # a short wait keeps the signal handler responsive
        pass
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
