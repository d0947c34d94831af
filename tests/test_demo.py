"""vta demo: ResNet-18 conv layers compiled, simulated and checked; the table the README shows."""

import json

from vta.cli import main
from vta.demo import run_layer


def test_demo_compiles_runs_and_checks_every_layer(capsys, tmp_path):
    assert main(["demo", "--json", str(tmp_path / "demo.json")]) == 0
    out = capsys.readouterr().out
    assert "10 layers" in out and "10/10 bit-exact against numpy" in out and "MISMATCH" not in out
    rows = json.loads((tmp_path / "demo.json").read_text())
    assert [r["name"] for r in rows] == [f"C{i}" for i in range(2, 12)]
    assert all(r["ok"] and r["cycles"] > 0 and r["instructions"] > 0 and r["gops"] > 0 for r in rows)


def test_demo_layer_with_the_default_tiler():
    r = run_layer("C10", tuned=False)
    assert r.ok and r.config == "default"


def test_demo_refuses_unknown_layers(capsys):
    assert main(["demo", "--layers", "C1"]) == 2
    assert "unknown layer 'C1'" in capsys.readouterr().out
