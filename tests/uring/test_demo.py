"""The copy section of `uringbpf demo` really copies, on both backends."""

from uringbpf import demo


def test_demo_copy(backend, capsys):
    assert demo.main(["--only", "copy", "--size-mb", "1", "--block", "65536",
                      "--depth", "4", "--backend", backend]) == 0
    out = capsys.readouterr().out
    assert "identical copy: yes" in out
    assert f"{backend} backend" in out
    assert "cancelled 1 linked write" in out


def test_demo_list_and_bad_args(capsys):
    assert demo.main(["--list"]) == 0
    assert "copy" in capsys.readouterr().out
    assert demo.main(["--only", "nonexistent"]) == 2
    assert demo.main(["--depth", "0"]) == 2
