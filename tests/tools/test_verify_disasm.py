"""``uringbpf verify`` behaves like ``BpfObject.load()``; ``disasm --prog``."""

from __future__ import annotations


def test_verify_freezes_rodata_like_load(cli, socket_obj):
    """#20: a .rodata constant used as a bound is a constant for the CLI too."""
    from uringbpf.bpf.object import BpfObject

    status, out, err = cli("verify", socket_obj, "--prog", "rodata_bound")
    assert status == 0, out + err
    assert "rodata_bound: OK" in out
    with BpfObject.open(socket_obj) as obj:         # the same verdict from load()
        for name, prog in obj.programs.items():
            prog.autoload = name == "rodata_bound"
        obj.load()


def test_verify_reports_each_program(cli, socket_obj):
    status, out, _ = cli("verify", socket_obj)
    assert status == 1
    assert "sum8: OK (socket_filter)" in out
    assert "unchecked: REJECTED: invalid bpf_context access" in out


def test_verify_unknown_program_lists_the_programs(cli, socket_obj):
    status, out, err = cli("verify", socket_obj, "--prog", "nosuch")
    assert status == 1
    assert err.strip().endswith("has no program 'nosuch' (programs: sum8, unchecked, "
                                "rodata_bound)")
    assert out == ""


def test_verify_log_level_2(cli, socket_obj):
    status, out, _ = cli("verify", socket_obj, "--prog", "sum8", "--log-level", "2")
    assert status == 0
    assert "R2=" in out and "processed" in out


def test_disasm_one_program(cli, socket_obj):
    status, out, _ = cli("disasm", socket_obj, "--prog", "unchecked")
    assert status == 0
    assert out.startswith("unchecked:") and "sum8" not in out
    status, _, err = cli("disasm", socket_obj, "--prog", "nosuch")
    assert status == 1 and "programs: sum8, unchecked, rodata_bound" in err


def test_disasm_prog_needs_an_object(cli, tmp_path):
    raw = tmp_path / "p.bin"
    raw.write_bytes(bytes.fromhex("b7000000070000009500000000000000"))
    status, _, err = cli("disasm", raw, "--prog", "x")
    assert status == 1 and "needs an ELF object" in err
