"""benchmarks/resnet18_layers.py on one layer: its row is the tuned program's modeled time, checked bit-exact."""

import json
import subprocess
import sys
from pathlib import Path

from vta.compiler.build import build
from vta.compiler.ops import conv2d
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.compiler.tune.task import requant_epilogue
from vta.sim.perf import PROFILES
from vta.sim.predict import predict_program

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "resnet18_layers.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_one_layer_row_matches_the_model_and_is_bit_exact(tmp_path):
    out = tmp_path / "layers.json"
    run = _run("--layers", "C10", "--profile", "pynq-2019-08-09", "--vectors", str(tmp_path), "--json", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    res = json.loads(out.read_text())
    assert (res["profile"], res["modeled"]) == ("pynq-2019-08-09", True)
    (row,) = res["rows"]
    wl = RESNET18["C10"]
    op = conv2d(wl, TUNED["C10"], requant_epilogue(wl.in_channels * wl.kernel ** 2))
    expected = predict_program(build(op.schedule, op.args, "C10"), PROFILES["pynq-2019-08-09"])
    assert row["tuned"]["cycles"] == expected.cycles
    assert row["tuned"]["bit_exact"] and row["default"]["bit_exact"]
    assert row["tvm_vector"] is None  # no vectors in tmp_path
    assert f"{expected.cycles:,}" in run.stdout and "modeled" in run.stdout


def test_unknown_layer_is_a_usage_error(tmp_path):
    run = _run("--layers", "C12", "--json", str(tmp_path / "x.json"))
    assert run.returncode == 2
    assert "unknown layer 'C12'; layers: C2, C3" in run.stderr
    assert not (tmp_path / "x.json").exists()
