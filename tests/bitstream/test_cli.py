import sys

import pytest

from tests.bitstream.synth import make_bit
from vta.bitstream.store import cache_path
from vta.cli import main

REMOTE = "pynq/0.0.2/1x16_i8w8a32_15_15_18_17.bit"


def test_list_marks_the_active_config(capsys, vta_cache, pynq_env):
    cache_path(pynq_env).parent.mkdir(parents=True)
    cache_path(pynq_env).write_bytes(b"")
    with pynq_env:
        assert main(["bitstream", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9
    (active,) = [ln for ln in lines if ln.startswith("*")]
    assert active.split() == ["*", "pynq", "0.0.2", "1x16_i8w8a32_15_15_18_17.bit", "4045671", "2020/06/30",
                              "18:11:16", "0b24cdf9001d3495", "cached"]
    assert any("de10nano" in ln and ".rbf" in ln for ln in lines)


def test_verify_ok(capsys, tmp_path, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    with user_env:
        assert main(["bitstream", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {path} is a user build (this configuration was never released)\n  1131 bytes, ")
    assert "design vta_wrapper, part 7z020clg484, built 2020/06/30 18:11:16 with 2018.3" in out


def test_verify_mismatch_exits_1(capsys, vta_cache, pynq_env):
    path = cache_path(pynq_env)
    path.parent.mkdir(parents=True)
    path.write_bytes(make_bit())
    with pynq_env:
        assert main(["bitstream", "verify"]) == 1
    assert capsys.readouterr().err.startswith(f"vta bitstream verify: error: {path}: size mismatch: the file has "
                                              "1131 bytes")


def test_fetch_checksum_mismatch_exits_1(capsys, vta_cache, served, pynq_env):
    served.put(REMOTE, make_bit())
    with pynq_env:
        assert main(["bitstream", "fetch", "--url", served.url]) == 1
    assert capsys.readouterr().err.startswith(f"vta bitstream fetch: error: {served.url}/{REMOTE}: size mismatch: the "
                                              f"file has 1131 bytes, the release {REMOTE} needed by")
    assert not vta_cache.exists() or not any(p.is_file() for p in vta_cache.rglob("*"))


def test_fetch_404_exits_1(capsys, vta_cache, served, pynq_env):
    with pynq_env:
        assert main(["bitstream", "fetch", "--url", served.url, "--force", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vta bitstream fetch: error: no released bitstream for TARGET=pynq HW_VER=0.0.2")
    assert "(HTTP 404 Not Found): build your own" in err


def test_program_without_pynq(capsys, monkeypatch, pynq_env):
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pynq_env:
        assert main(["program"]) == 1
    assert "needs the pynq library" in capsys.readouterr().err


def test_program_with_pynq(capsys, tmp_path, fake_pynq, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    with user_env:
        assert main(["program", str(path)]) == 0
    assert capsys.readouterr().out == f"FPGA programmed with {path}\n"
    assert fake_pynq.downloads == [str(path)]


def test_bitstream_needs_a_subcommand():
    with pytest.raises(SystemExit) as e:
        main(["bitstream"])
    assert e.value.code == 2


@pytest.mark.parametrize("url, message", [
    ("ftp://example.org/x", "'ftp://example.org/x': scheme ftp: is not allowed"),
    ("http://", "'http://' has no host"),
    ("https://me:s3cret@example.org/b", "'https://me:***@example.org/b' contains credentials"),
])
def test_fetch_refuses_a_bad_url_with_the_librarys_check(url, message, capsys, vta_cache):
    assert main(["bitstream", "fetch", "--url", url]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"vta bitstream fetch: error: bitstream base URL {message}")
    assert "s3cret" not in err
