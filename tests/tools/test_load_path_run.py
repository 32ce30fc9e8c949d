"""``uringbpf run`` on the way to its first run (issue #19): the object is parsed once, the
opened object handed to ``run_program`` is always closed, and a re-run of an unchanged
program takes the verifier's verdict from the cache."""

from __future__ import annotations

import pytest

from uringbpf.bpf import elf as elf_mod
from uringbpf.bpf import verify_cache
from uringbpf.bpf.object import BpfObject
from uringbpf.bpf.run import run_program


@pytest.fixture
def reads(monkeypatch):
    """Paths read by the ELF parser during the test."""
    seen = []
    real = elf_mod.read

    def read(path):
        seen.append(path)
        return real(path)
    monkeypatch.setattr(elf_mod, "read", read)
    return seen


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(verify_cache.ENV, str(tmp_path / "verdicts"))
    verify_cache.clear()


def test_run_parses_the_object_once(cli, socket_obj, reads):
    status, out, err = cli("run", socket_obj, "--prog", "sum8", "--data-size", "8", "--interp")
    assert (status, err) == (0, "") and out.startswith("Return value: 0 ")
    assert reads == [str(socket_obj)]


@pytest.mark.parametrize("args, message", [
    (("--prog", "nosuch"), "has no program"),
    ((), "choose one with --prog"),
    (("--prog", "sum8", "--interp", "--jit-tier", "llvm"), "not with --interp"),
    (("--prog", "sum8", "--jit-tier", "direct", "--wait-llvm"), "never switches"),
    (("--prog", "unchecked", "--interp"), "the log: uringbpf verify"),
])
def test_errors_close_the_object(cli, socket_obj, monkeypatch, args, message):
    opened = []
    real = BpfObject.open.__func__

    def open_(cls, path):
        obj = real(cls, path)
        opened.append(obj)
        return obj
    monkeypatch.setattr(BpfObject, "open", classmethod(open_))
    status, _, err = cli("run", socket_obj, *args)
    assert status == 1 and message in err
    assert len(opened) == 1 and opened[0].closed


def test_run_program_closes_what_it_is_given(socket_obj):
    obj = BpfObject.open(socket_obj)
    with pytest.raises(ValueError, match="repeat"):
        run_program(socket_obj, "sum8", bytes(8), repeat=0, opened=obj)
    assert obj.closed
    obj = BpfObject.open(socket_obj)
    result = run_program(socket_obj, "sum8", bytes(range(8)), engine="interp", opened=obj)
    assert result.retval == sum(range(8)) and obj.closed


def test_a_rerun_takes_the_verdict_from_the_cache(cli, socket_obj):
    for _ in range(2):
        status, out, _ = cli("run", socket_obj, "--prog", "rodata_bound", "--data-size", "8",
                             "--interp")
        assert status == 0 and out.startswith("Return value: 0 ")
    stats = verify_cache.stats()
    assert (stats["misses"], stats["stores"], stats["hits"]) == (1, 1, 1)
