"""``uringbpf cc``: the language is explicit, the object must exist, no directory is created."""

from __future__ import annotations

import pytest


def test_any_suffix_is_compiled_as_c(cli, tmp_path):
    src = tmp_path / "prog.txt"
    src.write_text("int f(int x) { return x + 1; }\n")
    out = tmp_path / "x.o"
    status, _, err = cli("cc", src, "-o", out)
    assert status == 0, err
    assert out.read_bytes()[:4] == b"\x7fELF"


@pytest.mark.parametrize("content", [b"garbage\x00\x01\x02", b"\x7fELF\x02\x01\x01\x00"])
def test_binary_input_fails(cli, tmp_path, content):
    src = tmp_path / "garbage.bin"
    src.write_bytes(content)
    out = tmp_path / "out.o"
    status, _, err = cli("cc", src, "-o", out)
    assert status == 1
    assert "not C source" in err
    assert not out.exists()


def test_text_that_is_not_c_fails_with_the_compiler_message(cli, tmp_path):
    src = tmp_path / "notes.bin"
    src.write_text("this is not C\n")
    status, _, err = cli("cc", src, "-o", tmp_path / "out.o")
    assert status == 1
    assert "compilation failed" in err and "error" in err
    assert not (tmp_path / "out.o").exists()


def test_output_directory_is_never_created(cli, tmp_path):
    src = tmp_path / "p.c"
    src.write_text("int f(void) { return 0; }\n")
    target = tmp_path / "nonexistent" / "dir" / "x.o"
    status, _, err = cli("cc", src, "-o", target)
    assert status == 1 and "does not exist" in err
    assert not (tmp_path / "nonexistent").exists()


def test_compiler_that_writes_nothing_is_an_error(tmp_path, monkeypatch):
    """A compiler command that succeeds without an object (the old linker-input case)."""
    from uringbpf.bpf import cc

    src = tmp_path / "p.c"
    src.write_text("int f(void) { return 0; }\n")
    monkeypatch.setattr(cc, "find_compiler", lambda cpu, prefer=None: ["true"])
    with pytest.raises(cc.CompileError, match="wrote no object"):
        cc.compile_c(src, tmp_path / "p.o")


def test_include_dir(cli):
    status, out, _ = cli("include-dir")
    assert status == 0
    from pathlib import Path

    assert (Path(out.strip()) / "bpf" / "bpf_helpers.h").is_file()
