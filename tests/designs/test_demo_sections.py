"""The design sections of `uringbpf demo` (`make demo`) run and check their own results."""

import subprocess
import sys

from uringbpf import demo


def test_demo_lists_every_design_section(capsys):
    assert demo.main(["--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["copy", "loop", "requests", "ops", "filter", "stripe"]


def test_demo_requests_and_ops_sections(capsys):
    assert demo.main(["--only", "requests", "--only", "ops"]) == 0
    out = capsys.readouterr().out
    assert "final values 20 and 21" in out
    assert "bytes identical: yes" in out
    assert "results match a Python crc32c: yes" in out


def test_whole_demo_as_make_demo_runs_it():
    proc = subprocess.run([sys.executable, "-m", "uringbpf", "demo"], capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("== ") == 6
    assert ": NO" not in proc.stdout and "MISMATCH" not in proc.stdout


def test_demo_filter_and_stripe_sections(capsys):
    assert demo.main(["--only", "filter", "--only", "stripe"]) == 0
    out = capsys.readouterr().out
    assert "O_WRONLY|O_TRUNC -> -EACCES, O_CREAT -> -EACCES; the file is intact: yes" in out
    assert "20000 of 20000 NOPs failed with EACCES" in out
    assert "identical: yes" in out and "NBD on 127.0.0.1" in out


def test_a_failed_check_is_exit_status_1(monkeypatch, capsys):
    from uringbpf.tools import main

    def broken(opts):
        demo._check(False, "copy: the copy differs from its source")

    monkeypatch.setattr(demo, "SECTIONS", [("copy", "broken on purpose", broken)])
    assert main(["demo"]) == 1
    assert "uringbpf demo: check failed: copy: the copy differs" in capsys.readouterr().err
