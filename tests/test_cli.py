import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vta.cli import EXIT_BROKEN_PIPE, main
from vta.disasm import MAX_STREAM_BYTES
from vta.sim.vector import load_vector


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


# --- issue 11: golden comparison, one error handler, honest output ------------------------------------------------


def _copy(vectors_dir, name, tmp_path):
    dst = tmp_path / name.replace("/", "_")
    shutil.copytree(vectors_dir / name, dst)
    return dst


def test_run_vector_reports_first_differing_byte(vectors_dir, tmp_path, capsys):
    d = _copy(vectors_dir, "random/rand_001", tmp_path)
    good = (d / "mem_out.bin").read_bytes()
    (d / "mem_out.bin").write_bytes(b"\xab" * len(good))
    assert main(["sim", "run-vector", str(d)]) == 3
    at = next(i for i, b in enumerate(good) if b != 0xAB)
    assert capsys.readouterr().out.splitlines()[0] == (
        f"mismatch: mem_out.bin: {sum(b != 0xAB for b in good)} byte(s) differ; first at image offset {at} "
        f"(address 0x{0x1000 + at:x}): expected 0xab, got 0x{good[at]:02x}")
    assert main(["sim", "run-vector", str(d), "--json"]) == 3
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "mismatch" and res["checked"] == ["mem_out.bin"]


def test_run_vector_reports_first_differing_counter(vectors_dir, tmp_path, capsys):
    d = _copy(vectors_dir, "random/rand_001", tmp_path)
    stats = json.loads((d / "stats.json").read_text())
    (d / "stats.json").write_text(json.dumps({**stats, "gemm_counter": 7}))
    assert main(["sim", "run-vector", str(d)]) == 3
    assert capsys.readouterr().out.splitlines()[0] == (
        f"mismatch: stats.json: counter gemm_counter: expected 7, got {stats['gemm_counter']}")


def test_run_vector_checks_expected_refusal(vectors_dir, tmp_path, capsys):
    d = _copy(vectors_dir, "negative/neg_race_0", tmp_path)
    assert main(["sim", "run-vector", str(d)]) == 1
    assert capsys.readouterr().out.endswith("; matches expect.json\n")
    (d / "expect.json").write_text(json.dumps({"class": "deadlock"}))
    assert main(["sim", "run-vector", str(d)]) == 3
    assert capsys.readouterr().out == ("mismatch: expect.json: the program must be refused with class 'deadlock', "
                                       "but it was refused with 'race'\n")
    ok = _copy(vectors_dir, "random/rand_001", tmp_path)
    (ok / "expect.json").write_text(json.dumps({"class": "race"}))
    assert main(["sim", "run-vector", str(ok), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["message"] == ("expect.json: the program must be refused with class "
                                                              "'race', but it ran to FINISH")


def test_run_vector_without_golden_files_says_so(vectors_dir, tmp_path, capsys):
    d = _copy(vectors_dir, "random/rand_001", tmp_path)
    (d / "mem_out.bin").unlink()
    (d / "stats.json").unlink()
    assert main(["sim", "run-vector", str(d)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == ("ok: ran 22 instructions to FINISH; no golden files to compare "
                                                       "(mem_out.bin, stats.json, expect.json)")


def test_timing_only_says_no_checks_ran(vectors_dir, capsys):
    d = vectors_dir / "random/rand_001"
    assert main(["sim", "run-vector", str(d), "--timing-only", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "timing-only" and res["checked"] == [] and res["counters"] is None
    assert "no race, bounds, uninitialised-SRAM or golden-output checks ran" in res["message"]
    assert main(["sim", "run-vector", str(d), "--timing-only"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("timing only: nothing executed;") and "ok" not in out.split()


def test_fidelity_and_hw_exec_say_what_happened(vectors_dir, capsys):
    conv = vectors_dir / "conv/conv_56_64_64_k3_s1"
    assert main(["sim", "run-vector", str(conv), "--fidelity", "pynq"]) == 0
    assert "  pynq fidelity: no divergences (the Pynq bitstream executes this program as the reference)\n" in \
        capsys.readouterr().out
    assert main(["sim", "run-vector", str(conv), "--hw-exec"]) == 1
    assert capsys.readouterr().err == ("vta sim run-vector: error: --hw-exec executes as the Pynq bitstream does and "
                                       "needs --fidelity pynq\n")
    rand = vectors_dir / "random/rand_001"
    assert main(["sim", "run-vector", str(rand), "--fidelity", "pynq", "--hw-exec"]) == 0
    out = capsys.readouterr().out
    assert "golden files not compared" in out.splitlines()[0]
    assert ("  hw-exec: executed as the Pynq bitstream does; the image changed: 288 byte(s) differ from the reference "
            "execution, first at image offset 8448 (address 0x3100): reference 0x00, hw-exec 0x30\n") in out
    assert main(["sim", "run-vector", str(conv), "--fidelity", "pynq", "--hw-exec", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hw_exec"] == "the image is identical to the reference execution's"


@pytest.mark.parametrize("argv,message", [
    (["sim", "run-vector", "{v}", "--out", "{t}/no/such/dir/m.bin"],
     "vta sim run-vector: error: --out '{t}/no/such/dir/m.bin': the folder '{t}/no/such/dir' does not exist"),
    (["sim", "run-vector", "{v}", "--out", "{t}"], "vta sim run-vector: error: --out '{t}' is a folder, not a file"),
    (["sim", "run-vector", "{v}", "--timing-only", "--out", "{t}/m.bin"],
     "vta sim run-vector: error: --out writes the image after the run, but --timing-only runs nothing"),
    (["sim", "trace", "{v}", "--json", "{t}/nope/t.json"],
     "vta sim trace: error: --json '{t}/nope/t.json': the folder '{t}/nope' does not exist"),
    (["sim", "trace", "{v}", "--png", "{t}/nope/t.png"],
     "vta sim trace: error: --png '{t}/nope/t.png': the folder '{t}/nope' does not exist"),
    (["sim", "trace", "{v}", "--png", "{t}/x.xyz"],
     "vta sim trace: error: --png '{t}/x.xyz': the file name must end in .png"),
])
def test_bad_output_paths_are_refused_before_work(vectors_dir, tmp_path, capsys, argv, message):
    fill = {"v": str(vectors_dir / "random/rand_001"), "t": str(tmp_path)}
    assert main([a.format(**fill) for a in argv]) == 1
    assert capsys.readouterr() == ("", message.format(**fill) + "\n")
    assert list(tmp_path.iterdir()) == []


def test_write_errors_name_the_file(vectors_dir, capsys):
    assert main(["sim", "run-vector", str(vectors_dir / "random/rand_001"), "--out", "/dev/full"]) == 1
    assert capsys.readouterr().err == ("vta sim run-vector: error: --out '/dev/full': cannot write the file: No space "
                                       "left on device\n")
    assert main(["sim", "trace", str(vectors_dir / "random/rand_001"), "--json", "/dev/full"]) == 1
    assert capsys.readouterr().err == ("vta sim trace: error: --json '/dev/full': cannot write the file: No space "
                                       "left on device\n")


def test_other_os_errors_become_one_line(vectors_dir, capsys, monkeypatch):
    """The one handler in vta.cli: an OSError no subcommand anticipated is one line naming the file, exit 1."""
    import vta.sim.vector

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(vta.sim.vector, "load_vector", unreadable)
    assert main(["sim", "trace", "/some/vector"]) == 1
    assert capsys.readouterr() == ("", "vta sim trace: error: /some/vector: Permission denied\n")


def test_broken_pipe_exits_quietly(vectors_dir):
    r = subprocess.run(["bash", "-c", "set -o pipefail; \"$0\" -m vta.cli disasm \"$1\" --uops | head -1; "
                        "echo \"rc=$?\"", sys.executable, str(vectors_dir / "conv/conv_56_64_64_k3_s1")],
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.splitlines() == ["     0  compute  LOAD   UOP      NOP [push_prev]", f"rc={EXIT_BROKEN_PIPE}"]
    assert r.stderr == ""


# --- disasm -----------------------------------------------------------------------------------------------------


def test_disasm_reads_with_a_bound(tmp_path, capsys):
    assert main(["disasm", "/dev/zero"]) == 1
    assert capsys.readouterr().err == (f"vta disasm: error: /dev/zero: more than {MAX_STREAM_BYTES} bytes "
                                       f"({MAX_STREAM_BYTES >> 20} MiB, {MAX_STREAM_BYTES // 16} instructions), "
                                       "the limit for an instruction file\n")
    assert main(["disasm", str(tmp_path / "missing.bin")]) == 1
    assert capsys.readouterr().err == (f"vta disasm: error: cannot read instruction file "
                                       f"'{tmp_path / 'missing.bin'}': No such file or directory\n")
    assert main(["disasm", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"vta disasm: error: {tmp_path}: a folder that is not a vector directory (it "
                                       "needs meta.json and mem_in.bin)\n")


def test_disasm_refuses_data_that_is_not_a_stream(vectors_dir, tmp_path, capsys):
    data = tmp_path / "data.bin"
    data.write_bytes((vectors_dir / "random/rand_001/mem_in.bin").read_bytes()[:4096])
    assert main(["disasm", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vta disasm: error: {data} does not look like an instruction stream: ")
    assert "instructions have an undefined opcode (first: instruction 0, opcode 6;" in err
    assert err.endswith("the last instruction (255) is not FINISH (--force lists it anyway)\n")
    assert main(["disasm", str(data), "--force"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 256
    stream = tmp_path / "s.bin"
    v = load_vector(vectors_dir / "random/rand_001")
    stream.write_bytes(v.insn_bytes())
    assert main(["disasm", str(stream)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 22
    assert main(["disasm", str(stream), "--uops"]) == 1
    assert "--uops needs a vector directory" in capsys.readouterr().err
    (tmp_path / "e.bin").write_bytes(b"")
    assert main(["disasm", str(tmp_path / "e.bin")]) == 1
    assert "does not look like an instruction stream: it holds no instructions" in capsys.readouterr().err


def test_disasm_uops_of_every_vector(vectors_dir, capsys):
    """Micro-ops come from the stream's LOAD UOPs, whatever the vector calls its regions; gaps are explained."""
    index = json.loads((vectors_dir / "index.json").read_text())
    unexplained, gaps = [], {}
    for entries in index.values():
        for e in entries:
            assert main(["disasm", str(vectors_dir / e["path"]), "--uops"]) == 0
            lines = capsys.readouterr().out.splitlines()
            for i, ln in enumerate(lines):
                listed = i + 1 < len(lines) and lines[i + 1].startswith(" " * 17)
                if (" GEMM " in ln or " ALU " in ln) and not listed:
                    unexplained.append((e["path"], ln))
            gaps[e["path"]] = [ln.strip() for ln in lines if "not listed" in ln]
    assert unexplained == []
    assert gaps["negative/neg_race_0"] == []
    assert gaps["negative/neg_sram_oob_7"] == ["(micro-ops [8191,8200) not listed: the uop SRAM has 8192 entries)"]
    assert gaps["negative/neg_early_finish_1"] == [
        "(micro-ops [0,1) not listed: no earlier LOAD UOP in this stream filled them)"]
    assert sum(map(len, gaps.values())) <= 8


def test_disasm_uops_with_padded_uop_loads(vectors_dir, capsys):
    """rand_003 loads micro-ops with padding: the zero pad entries and the DRAM words land where the SRAM has them."""
    assert main(["disasm", str(vectors_dir / "random/rand_003"), "--uops"]) == 0
    out = capsys.readouterr().out
    assert "not listed" not in out and "uop 6119: dst" in out


# --- bitstream files from any target --------------------------------------------------------------------------------


def test_bitstream_verify_a_missing_file_says_missing(tmp_path, capsys):
    assert main(["bitstream", "verify", str(tmp_path / "nope.bit")]) == 1
    assert capsys.readouterr().err == f"vta bitstream verify: error: {tmp_path / 'nope.bit'} does not exist\n"
    assert main(["bitstream", "verify", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"vta bitstream verify: error: {tmp_path} is a folder, not a file\n"


def test_bitstream_verify_works_from_the_sim_target(tmp_path, capsys):
    from tests.bitstream.synth import make_bit
    from vta.config import load_config

    sim_user = load_config(target="sim").replace(LOG_BATCH=1)  # never released: name and header checks only
    path = tmp_path / f"{sim_user.BITSTREAM}.bit"
    path.write_bytes(make_bit())
    with sim_user:
        assert main(["bitstream", "verify", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "(TARGET=sim has no FPGA bitstream: checked against the same configuration with TARGET=pynq)"
    assert out[1] == f"ok: {path} is a user build (this configuration was never released)"
    released = tmp_path / "1x16_i8w8a32_15_15_18_17.bit"
    released.write_bytes(make_bit())
    assert main(["bitstream", "verify", str(released)]) == 1
    assert f"{released}: size mismatch: the file has 1131 bytes" in capsys.readouterr().err


def test_bitstream_fetch_default_timeout_in_help_is_the_store_default(capsys):
    from vta.bitstream.store import DEFAULT_TIMEOUT_S

    with pytest.raises(SystemExit):
        main(["bitstream", "fetch", "--help"])
    assert f"(default {DEFAULT_TIMEOUT_S:g})" in " ".join(capsys.readouterr().out.split())


# --- configuration -----------------------------------------------------------------------------------------------


def test_info_names_the_active_configuration(monkeypatch, tmp_path, capsys):
    from vta.config import default_config_path

    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"configuration: {default_config_path()} (the bundled default; VTA_CONFIG unset)"
    assert "VTA_CONFIG=/path/to/config.json" in lines[1] and lines[2].endswith(" (VTA_CACHE_PATH)")
    cfg = tmp_path / "c.json"
    cfg.write_text(default_config_path().read_text())
    assert main(["info", "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config_source"] == f"{cfg} (--config)"
    monkeypatch.setenv("VTA_CONFIG", str(cfg))
    monkeypatch.setenv("VTA_TARGET", "pynq")
    monkeypatch.setattr("vta.config._DEFAULT", [])
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"configuration: {cfg} (from VTA_CONFIG), TARGET=pynq from VTA_TARGET\n")
    assert "\nTARGET " in out and out.split("\nTARGET", 1)[1].split()[0] == "pynq"


# --- what the command line imports and cites -------------------------------------------------------------------------


# What `vta --help` may import of the package beyond the light command-line modules: the device lock (for the
# default lock path in `vta program --help`).
LIGHT_AT_HELP = ["vta.driver.lock"]


def test_help_imports_nothing_heavy():
    code = ("import sys\nfrom vta.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if not m.endswith(('.cli', '_cli')) and "
            "(m.split('.')[0] == 'numpy' or "
            "m.startswith(('vta.compiler', 'vta.sim.', 'vta.runtime', 'vta.demo', 'vta.isa', 'vta.driver.'))))\n"
            "print(heavy, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip().splitlines()[-1] == str(LIGHT_AT_HELP)
    assert "demo" in r.stdout and "run-vector" not in r.stdout


def _message_strings(path):
    """String constants of a module that are not docstrings: what it can print or raise."""
    import ast

    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("core", "sim", "runtime", "driver", "bitstream", "compiler")


def test_messages_state_rules_not_spec_sections():
    cited = [f"{p.relative_to(ROOT)}:{line}" for d in PACKAGE_DIRS for p in sorted((ROOT / d).rglob("*.py"))
             for line, text in _message_strings(p) if "§" in text]
    assert cited == []


def test_no_install_advice_for_a_package_not_on_the_index():
    files = [p for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py")] + [ROOT / "README.md",
                                                                          *(ROOT / "docs").glob("*.md")]
    # `pip install "pynq-vta[board]"` asks the index; a path ending in pynq-vta (`.../pynq-vta[board]`) is fine.
    by_name = re.compile(r"(?<![\w/.-])pynq-vta\[")
    advice = [str(p.relative_to(ROOT)) for p in files if by_name.search(p.read_text())]
    assert advice == []
    assert by_name.search('pip install "pynq-vta[board]"') and not by_name.search("pip install '/x/pynq-vta[board]'")


# --- the golden vectors are required --------------------------------------------------------------------------------


def test_suite_fails_without_the_golden_vectors(tmp_path):
    """Issue 11 item 9: without the vectors the tests that need them fail, naming where they are expected."""
    env = {**os.environ, "VTA_VECTORS": str(tmp_path / "nowhere")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                        "tests/test_cli.py::test_run_vector_json_ok_and_refused",
                        "tests/conformance/test_vectors.py::test_index_covers_all_sets"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout[-2000:]
    assert f"golden vectors: {tmp_path / 'nowhere'} (VTA_VECTORS) -- MISSING" in r.stdout
    assert (f"golden vectors not found: expected {tmp_path / 'nowhere'}/index.json (VTA_VECTORS); place the "
            "shared/ folder beside the checkout or set VTA_VECTORS to the vectors folder") in r.stdout
    assert "2 errors" in r.stdout and "skipped" not in r.stdout


def test_run_vector_refused_where_the_reference_ran(vectors_dir, tmp_path, capsys):
    """A vector with mem_out.bin whose program is refused disagrees with its golden files: exit 3, not 1."""
    d = _copy(vectors_dir, "negative/neg_race_0", tmp_path)
    (d / "expect.json").unlink()
    (d / "mem_out.bin").write_bytes((d / "mem_in.bin").read_bytes())
    assert main(["sim", "run-vector", str(d), "--json"]) == 3
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "mismatch" and res["checked"] == ["mem_out.bin"]
    assert res["message"].startswith("refused (race: instruction 1, store module:")
    assert res["message"].endswith("but the vector has mem_out.bin: the reference ran the program")
