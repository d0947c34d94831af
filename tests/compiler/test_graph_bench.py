"""vta bench: the table, the JSON schema of the issue, the bar chart, on the simulator and the emulated board."""

from __future__ import annotations

import json
import sys

import pytest

from vta.cli import main


def _check_schema(data: dict, timing: str) -> None:
    assert set(data) == {"vta_timing", "bit_exact", "layers", "total"}
    assert data["vta_timing"] == timing and data["bit_exact"] is True
    assert [r["name"] for r in data["layers"]] == ["input", "conv1", "conv2", "flatten", "fc", "label"]
    for r in data["layers"]:
        assert set(r) == {"name", "op", "placement", "cpu_s", "vta_s"} and r["placement"] in ("vta", "cpu")
        assert r["cpu_s"] >= 0 and r["vta_s"] >= 0
    t = data["total"]
    assert set(t) == {"cpu_s", "vta_s", "speedup"}
    assert t["vta_s"] == pytest.approx(sum(r["vta_s"] for r in data["layers"]))
    assert t["speedup"] == pytest.approx(t["cpu_s"] / t["vta_s"])


def test_bench_on_the_simulator_is_labelled_modeled(tmp_path, capsys):
    out_json, png = tmp_path / "b.json", tmp_path / "b.png"
    assert main(["bench", "--model", "digits", "--json", str(out_json), "--png", str(png), "--repeat", "2"]) == 0
    text = capsys.readouterr().out
    assert "VTA ms (modeled)" in text and "im2col + float32 BLAS" in text and "bit-exact" in text
    _check_schema(json.loads(out_json.read_text()), "modeled")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_on_the_emulated_board_is_measured(tmp_path, capsys, board):
    out_json = tmp_path / "b.json"
    assert main(["bench", "--model", "digits", "--backend", "pynq", "--emulator", str(board.path), "--json",
                 str(out_json), "--no-png"]) == 0
    assert "VTA ms (measured)" in capsys.readouterr().out
    data = json.loads(out_json.read_text())
    _check_schema(data, "measured")
    assert all(r["vta_s"] > 0 for r in data["layers"] if r["placement"] == "vta" and r["op"] != "flatten")


def test_bench_without_matplotlib_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["bench", "--model", "digits", "--png", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert 'needs matplotlib: pip install ".[plot]" from the pynq-vta checkout' in err
    assert not (tmp_path / "x.png").exists()


def test_bench_checks_its_output_paths_first(tmp_path, capsys):
    assert main(["bench", "--model", "digits", "--json", str(tmp_path / "no" / "b.json")]) == 1
    assert "does not exist" in capsys.readouterr().err
