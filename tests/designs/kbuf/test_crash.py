"""SIGKILL the NBD server process in the middle of writes: no acknowledged write is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stripe import nbd
from stripe.layout import StripeLayout
from stripe.nbd import NbdClient

SERVER = Path(__file__).resolve().parents[3] / "examples" / "kbuf" / "stripe" / "server.py"
BLOCK = 128 * 1024


def spawn(paths, mode):
    proc = subprocess.Popen([sys.executable, str(SERVER), *map(str, paths), "--chunk", "16384",
                             "--mode", mode, "--queue-depth", "16"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("LISTENING"):
        proc.kill()
        raise AssertionError(f"server did not start: {line!r} {proc.stderr.read()}")
    return proc, int(line.split()[1])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["zc", "copy"])
def test_sigkill_mid_write_loses_no_acknowledged_write(tmp_path, mode):
    paths = []
    for i in range(3):
        p = tmp_path / f"disk{i}"
        with open(p, "wb") as f:
            f.truncate(4 << 20)
        paths.append(p)
    proc, port = spawn(paths, mode)
    acked: dict[int, bytes] = {}
    try:
        c = NbdClient("127.0.0.1", port)
        blocks = list(range(c.size // BLOCK))
        random.Random(5).shuffle(blocks)
        inflight: dict[int, tuple[int, bytes]] = {}
        it = iter(blocks)
        killed = False
        try:
            while True:
                while len(inflight) < 24 and not killed:
                    b = next(it, None)
                    if b is None:
                        break
                    data = os.urandom(BLOCK)
                    inflight[c.send(nbd.CMD_WRITE, b * BLOCK, data=data)] = (b, data)
                if not inflight:
                    break
                cookie, err, _ = c.recv()
                b, data = inflight.pop(cookie)
                assert err == 0
                acked[b] = data
                if len(acked) == 40 and not killed:
                    os.kill(proc.pid, signal.SIGKILL)      # 24 writes are in flight now
                    killed = True
        except (ConnectionError, OSError):
            pass
        assert killed and len(acked) >= 40
        assert inflight or len(acked) < len(blocks)     # the kill did interrupt writing
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    # every acknowledged write is on the backing files ...
    layout = StripeLayout(3, 16384, 4 << 20)
    for b, data in acked.items():
        assert layout.read_files([str(p) for p in paths], b * BLOCK, BLOCK) == data
    # ... and a restarted server serves it
    proc, port = spawn(paths, "auto_zc")
    try:
        c = NbdClient("127.0.0.1", port)
        for b, data in acked.items():
            assert c.read(b * BLOCK, BLOCK) == data
        c.disconnect()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
