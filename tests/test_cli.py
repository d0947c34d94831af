import json
import shutil

import pytest

from vta.cli import main


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["BITSTREAM"] == "1x16_i8w8a32_15_15_18_17" and info["ACC_BUFF_DEPTH"] == 2048


def test_info_bad_config(tmp_path, capsys):
    bad = tmp_path / "c.json"
    bad.write_text('{"TARGET": "sim"}')
    assert main(["info", "--config", str(bad)]) == 1
    assert "missing key(s) HW_VER" in capsys.readouterr().err


def test_run_vector_json_ok_and_refused(vectors_dir, capsys, tmp_path):
    out = tmp_path / "mem.bin"
    assert main(["sim", "run-vector", str(vectors_dir / "random/rand_001"), "--json", "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "ok" and res["error_class"] is None
    assert res["counters"] == json.loads((vectors_dir / "random/rand_001/stats.json").read_text())
    assert out.read_bytes() == (vectors_dir / "random/rand_001/mem_out.bin").read_bytes()
    assert main(["sim", "run-vector", str(vectors_dir / "negative/neg_race_0"), "--json"]) == 1
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "refused" and res["error_class"] == "race" and res["counters"] is None


def test_run_vector_bad_directory(tmp_path, capsys, vectors_dir):
    assert main(["sim", "run-vector", str(tmp_path / "nope")]) == 2
    assert "not a vector directory" in capsys.readouterr().err
    broken = tmp_path / "v"
    shutil.copytree(vectors_dir / "random/rand_001", broken)
    (broken / "meta.json").write_text('{"phys_base": 4096, "insn_offset": 999999999, "insn_count": 2}')
    assert main(["sim", "run-vector", str(broken)]) == 2
    assert "runs past the" in capsys.readouterr().err


def test_disasm_vector_and_raw(vectors_dir, tmp_path, capsys):
    assert main(["disasm", str(vectors_dir / "conv/conv_56_64_64_k3_s1"), "--uops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].split()[2] == "FINISH"
    assert any("GEMM" in ln and "[pop_prev" in ln for ln in lines) and any("uop 0: dst" in ln for ln in lines)
    raw = tmp_path / "s.bin"
    raw.write_bytes(bytes(17))
    assert main(["disasm", str(raw)]) == 1
    assert "not a whole number of 16-byte instructions" in capsys.readouterr().err


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
