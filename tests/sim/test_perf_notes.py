"""Lines whose measured program is not the one their target names get a note in `vta model predict`, are
predicted as the program that was measured, and are left out of the fit."""

from __future__ import annotations

from pathlib import Path

from vta.cli import main
from vta.compiler.ops.logged import parse_line
from vta.sim.predict import predict_line

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration"
LINES = (DATA / "pynq_board_times.jsonl").read_text().splitlines()


def test_dense_logged_in_another_blocking_is_predicted_as_the_program_for_its_blocks():
    """Line 75 is a 4x8 line with 1x16-packed data: TVM's 4x8 GEMM intrinsic takes 4x8 input blocks, so the
    measured program is the 1x16 one, with TVM's loop order (weights loaded again for each batch row)."""
    row = predict_line(parse_line(LINES[74], 75))
    assert (row["target"], row["ran_as"]) == ("pynq_4x8_i8w8a32_15_16_16_18", "pynq_1x16_i8w8a32_15_15_18_17")
    assert "logged for pynq_4x8_i8w8a32_15_16_16_18 but packed in 1x16 blocks [4, 16, 1, 16]" in row["note"]
    assert "takes 4x8 input blocks" in row["note"] and "(inferred, not fitted)" in row["note"]
    assert 0.75 <= row["ratio"] <= 1.25
    assert "note" not in predict_line(parse_line(LINES[29], 30))  # 1x16 dense in 1x16 blocks


def test_cli_prints_the_note_and_a_summary_without_noted_lines(tmp_path, capsys):
    f = tmp_path / "lines.jsonl"
    f.write_text("\n".join([LINES[29], LINES[74]]) + "\n")
    assert main(["model", "predict", str(f)]) == 0
    out = capsys.readouterr().out
    assert "line 2: predicted" in out and "\n  note: logged for pynq_4x8" in out
    assert "line(s) 2 carry a note (predicted as an inferred program, not the logged one)" in out
    tail = out.split("carry a note")[1]
    assert "summary 1x16 2019-08-13 (LSTM cell): 1 measured line(s)" in tail and "4x8" not in tail


def test_calibration_leaves_the_noted_line_out(tmp_path):
    from vta.sim.calibrate import load_samples

    f = tmp_path / "lines.jsonl"
    f.write_text("\n".join([LINES[29], LINES[74]]) + "\n")
    samples, unused = load_samples(f)
    assert [s.line for s in samples] == [1] and list(unused) == [2]
    assert "TVM cannot have built this program" in unused[2]
