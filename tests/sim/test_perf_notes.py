"""Lines the board cannot have run as logged get a note in `vta model predict` and are left out of the fit."""

from __future__ import annotations

from pathlib import Path

from vta.cli import main
from vta.compiler.ops.logged import parse_line
from vta.sim.predict import predict_line

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration"
LINES = (DATA / "pynq_board_times.jsonl").read_text().splitlines()


def test_dense_logged_in_another_blocking_carries_a_note():
    """Line 75 is a 4x8 line with 1x16-packed data: TVM's 4x8 GEMM intrinsic takes 4x8 input blocks."""
    row = predict_line(parse_line(LINES[74], 75))
    assert row["target"] == "pynq_4x8_i8w8a32_15_16_16_18" and row["predicted_s"] > 0
    assert "logged in 1x16 blocks [4, 16, 1, 16]" in row["note"]
    assert "takes 4x8 input blocks" in row["note"] and "not the program the board measured" in row["note"]
    assert "note" not in predict_line(parse_line(LINES[29], 30))  # 1x16 dense in 1x16 blocks


def test_cli_prints_the_note_and_a_summary_without_noted_lines(tmp_path, capsys):
    f = tmp_path / "lines.jsonl"
    f.write_text("\n".join([LINES[29], LINES[74]]) + "\n")
    assert main(["model", "predict", str(f)]) == 0
    out = capsys.readouterr().out
    assert "line 2: predicted" in out and "\n  note: logged in 1x16 blocks" in out
    assert "line(s) 2 carry a note" in out
    tail = out.split("carry a note")[1]
    assert "summary 1x16 2019-08-13 (LSTM cell): 1 measured line(s)" in tail and "4x8" not in tail


def test_calibration_leaves_the_noted_line_out(tmp_path):
    from vta.sim.calibrate import load_samples

    f = tmp_path / "lines.jsonl"
    f.write_text("\n".join([LINES[29], LINES[74]]) + "\n")
    samples, unused = load_samples(f)
    assert [s.line for s in samples] == [1] and list(unused) == [2]
    assert "TVM cannot have built this program" in unused[2]
