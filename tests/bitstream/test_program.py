import sys

import pytest

from tests.bitstream.synth import make_bit, record_for
from vta.bitstream.program import program
from vta.bitstream.store import cache_path
from vta.errors import BitstreamError, BitstreamMismatch


def test_without_pynq_the_error_says_a_board_is_needed(monkeypatch, pynq_env):
    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq fails, installed or not
    with pytest.raises(BitstreamError, match=r"^programming the FPGA needs the pynq library, which is not "
                       r"installed in .*: run this on a Pynq board, with pynq-vta installed there by "
                       r"`pip install \"\.\[board\]\"` in its checkout$"):
        program(env=pynq_env)


def test_broken_pynq_install(monkeypatch, tmp_path, pynq_env):
    (tmp_path / "pynq").mkdir()
    (tmp_path / "pynq" / "__init__.py").write_text("import _vta_test_missing_dependency\n")
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BitstreamError, match=r"^the pynq library is installed but cannot be imported \(No module "
                       r"named '_vta_test_missing_dependency'\); programming the FPGA needs a Pynq board$"):
        program(env=pynq_env)


@pytest.mark.parametrize("target", ["sim", "de10nano"])
def test_targets_not_programmed_through_pynq(fake_pynq, pynq_env, target):
    with pytest.raises(BitstreamError, match=rf"^cannot program an FPGA for TARGET='{target}': pynq-vta programs "
                       r"TARGET in pynq, ultra96, zcu104 \(sim and tsim need no bitstream"):
        program(env=pynq_env.replace(TARGET=target))
    assert fake_pynq.downloads == []


def test_programs_a_verified_cached_file(vta_cache, fake_pynq, pynq_env):
    blob = make_bit()
    path = cache_path(pynq_env)
    path.parent.mkdir(parents=True)
    path.write_bytes(blob)
    assert program(env=pynq_env, expected=record_for(blob, pynq_env)) == path
    assert fake_pynq.downloads == [str(path)]


def test_programs_a_user_build(tmp_path, fake_pynq, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    assert program(path, user_env) == path
    assert fake_pynq.downloads == [str(path)]


def test_mismatching_file_is_never_downloaded(tmp_path, fake_pynq, pynq_env):
    path = tmp_path / "1x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    with pytest.raises(BitstreamMismatch, match=r"size mismatch: the file has 1131 bytes, the release "
                       r"pynq/0\.0\.2/1x16_i8w8a32_15_15_18_17\.bit needed by .* has 4045671 bytes$"):
        program(path, pynq_env)
    with pytest.raises(BitstreamMismatch, match=r"HW_VER '0\.0\.1' vs configured '0\.0\.2'$"):
        program(path, pynq_env, expected=record_for(make_bit(), pynq_env, hw_ver="0.0.1"))
    assert fake_pynq.downloads == []


def test_pynq_failure_becomes_bitstream_error(tmp_path, fake_pynq, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    fake_pynq.failure = OSError(13, "Permission denied")
    with pytest.raises(BitstreamError, match=rf"^pynq could not program {path} onto the FPGA: PermissionError: "
                       r"\[Errno 13\] Permission denied$"):
        program(path, user_env)
