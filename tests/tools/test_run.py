"""``uringbpf run``: bad input, huge numbers, and program types without a data context."""

from __future__ import annotations

import re

import pytest


def test_struct_ops_program_is_refused(cli, struct_ops_obj):
    """#13 item 11: a loop_step program would dereference data as its context."""
    status, out, err = cli("run", struct_ops_obj, "--data-size", "64")
    assert status == 1
    assert "context is not a data buffer" in err and "struct_ops" in err
    assert out == ""


def test_struct_ops_refused_by_the_api_too(struct_ops_obj):
    from uringbpf.bpf.progtypes import ProgTypeError
    from uringbpf.bpf.run import run_program

    with pytest.raises(ProgTypeError, match="not a data buffer"):
        run_program(struct_ops_obj, None, bytes(64), verify=False)


@pytest.mark.parametrize("args", [
    ("--data-size", "99999999999"), ("--data-size", "-1"), ("--repeat", "0"),
    ("--repeat", "99999999999999999999"), ("--data-size", "12abc"), ("--jit", "--interp"),
])
def test_bad_numbers_are_usage_errors(cli, socket_obj, args):
    status, _, err = cli("run", socket_obj, "--prog", "sum8", *args)
    assert status == 2
    assert err.startswith("usage: uringbpf run")


def test_program_choice(cli, socket_obj):
    status, _, err = cli("run", socket_obj)
    assert status == 1 and "choose one with --prog" in err and "sum8" in err
    status, _, err = cli("run", socket_obj, "--prog", "nosuch")
    assert status == 1
    assert "no program 'nosuch'" in err and "programs: sum8, unchecked, rodata_bound" in err


def test_rejection_and_checked_fault_are_one_line_without_class_names(cli, socket_obj, tmp_path):
    status, _, err = cli("run", socket_obj, "--prog", "unchecked")
    assert status == 1 and "BpfVerifierError" not in err
    assert "invalid bpf_context access" in err
    assert len(err.strip().splitlines()) == 1 and "uringbpf verify" in err   # log: one command away
    status, _, err = cli("run", socket_obj, "--prog", "unchecked", "--no-verify",
                         "--data-size", "16")
    assert status == 1
    assert "load of 1 bytes" in err and not re.search(r"\w+Error\b", err)
    status, _, err = cli("run", socket_obj, "--prog", "sum8", "--data-in", tmp_path / "nope")
    assert status == 1 and "nope" in err


def test_runs_and_writes_data_out(cli, socket_obj, tmp_path):
    data = tmp_path / "in"
    data.write_bytes(bytes(range(1, 9)))
    status, out, err = cli("run", socket_obj, "--prog", "sum8", "--data-in", data,
                           "--data-out", tmp_path / "out")
    assert status == 0, err
    assert out.startswith("Return value: 36 (0x24)")
    assert (tmp_path / "out").read_bytes() == bytes(range(1, 9))
    status, _, err = cli("run", socket_obj, "--prog", "sum8", "--data-out",
                         tmp_path / "no" / "dir" / "out")
    assert status == 1 and "does not exist" in err
