"""Logged tuning lines -> compiled operators -> modeled board times (`vta model predict`), without executing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vta.cli import main
from vta.compiler.build import build
from vta.compiler.ops.logged import LoggedLineError, build_line, parse_line, read_lines, target_env
from vta.errors import ConfigError
from vta.runtime import Runtime
from vta.sim.perf import PROFILES, SESSION_PROFILES
from vta.sim.predict import predict_line, profile_for

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration"
LINES = (DATA / "pynq_board_times.jsonl").read_text().splitlines()


def digest(n: int) -> dict:
    return json.loads(LINES[n - 1])


def test_autotvm_lines_read_like_their_digest():
    """Each AutoTVM sample line gives the task, shapes, knobs and time of its digest line."""
    by_time = {round(digest(n)["measured_s"], 12): n for n in range(1, len(LINES) + 1)}
    for n, ln in read_lines(DATA / "autotvm_sample.log"):
        d = parse_line(LINES[by_time[round(ln.measured_s, 12)] - 1], 1)
        assert (ln.line, ln.task, ln.data_shape, ln.kernel_shape, ln.knobs) == (n, d.task, d.data_shape,
                                                                                d.kernel_shape, d.knobs)
        assert (ln.strides, ln.padding, ln.groups) == (d.strides, d.padding, d.groups)
        assert ln.target.endswith(d.target)


def test_target_strings_configure_both_logged_configurations():
    a = target_env("ext_dev -device=vta -keys=cpu -model=pynq_1x16_i8w8a32_15_15_18_17")
    b = target_env("pynq_4x8_i8w8a32_15_16_16_18")
    assert (a.BATCH, a.BLOCK_IN, a.LOG_INP_BUFF_SIZE, a.LOG_ACC_BUFF_SIZE) == (1, 16, 15, 17)
    assert (b.BATCH, b.BLOCK_IN, b.LOG_INP_BUFF_SIZE, b.LOG_WGT_BUFF_SIZE, b.LOG_ACC_BUFF_SIZE) == (4, 8, 16, 16, 18)
    with pytest.raises(ConfigError, match="3 is not a power of two"):
        target_env("pynq_1x3_i8w8a32_15_15_18_17")


def test_4x8_dense_line_logged_in_the_1x16_layout_is_built_for_its_blocks_and_runs_bit_exact():
    env, op = build_line(parse_line(LINES[74], 75))
    assert (env.BATCH, env.BLOCK_IN) == (1, 16)
    assert [t.shape for t in op.args] == [(4, 16, 1, 16), (8, 16, 16, 16), (4, 8, 1, 16)]
    with env:
        prog = build(op.schedule, op.args, op.name, env=env)
        data, weight = op.random_inputs(np.random.default_rng(3))
        out = op.empty_output()
        with Runtime("sim", env=env) as rt:
            prog.run(data, weight, out, runtime=rt)
    assert np.array_equal(out, op.reference(data, weight))


def _bad(**changes) -> str:
    d = digest(30)  # the 1x16 LSTM dense line: small
    for k, v in changes.items():
        d[k] = v
    return json.dumps(d)


@pytest.mark.parametrize(("text", "reason"), [
    (_bad(task="winograd.vta"), "task 'winograd.vta' is not supported"),
    (_bad(knobs={"tile_b": [1, 1], "tile_ci": [3, 5], "tile_co": [8, 1], "oc_nthread": 1}), "tile_ci"),
    (_bad(target="pynq_1x16_i8w8a32_15_15_30_17"), "target cannot be configured"),
    (_bad(target="ultra"), "target cannot be configured"),
])
def test_bad_lines_give_a_reason(text, reason):
    with pytest.raises(LoggedLineError, match=reason):
        predict_line(parse_line(text, 1))


def test_profile_is_the_sessions_else_the_default():
    for session, name in SESSION_PROFILES.items():
        assert profile_for(session) == name
    assert profile_for("a session nobody fitted") == "pynq"
    assert profile_for(None, "pynq") == "pynq"
    with pytest.raises(ConfigError, match="unknown hardware profile 'fast'"):
        profile_for(None, "fast")


def test_cli_predicts_good_lines_and_reports_bad_ones(tmp_path, capsys):
    f = tmp_path / "lines.jsonl"
    f.write_text("\n".join([LINES[29], _bad(task="winograd.vta"), "{not json", "", LINES[74]]) + "\n")
    assert main(["model", "predict", str(f), "--json"]) == 1
    cap = capsys.readouterr()
    rows = json.loads(cap.out)
    assert [r["line"] for r in rows] == [1, 2, 3, 5]
    assert rows[0]["predicted_s"] > 0 and rows[0]["profile"] == "pynq" and rows[0]["log_line"] == 63
    assert rows[0]["ratio"] == pytest.approx(rows[0]["predicted_s"] / digest(30)["measured_s"])
    assert "winograd" in rows[1]["error"] and "not valid JSON" in rows[2]["error"]
    assert rows[3]["target"] == "pynq_4x8_i8w8a32_15_16_16_18"
    assert "3 of 4 line(s) predicted" not in cap.err and "2 of 4 line(s) predicted" in cap.err
    assert main(["model", "predict", str(f)]) == 1
    text = capsys.readouterr().out
    assert "line 1: predicted" in text and "modeled" in text and "line 2: error: task 'winograd.vta'" in text
    assert "line 3: error:" in text and "not valid JSON" in text  # a line that does not parse says why too
    assert "summary 1x16 2019-08-13 (LSTM cell): 1 measured line(s)" in text


def test_cli_profile_override_and_unknown_profile(tmp_path, capsys):
    f = tmp_path / "one.jsonl"
    f.write_text(LINES[29] + "\n")
    for name in PROFILES:
        assert main(["model", "predict", str(f), "--json", "--profile", name]) == 0
        assert json.loads(capsys.readouterr().out)[0]["profile"] == name
    assert main(["model", "predict", str(f), "--profile", "nope"]) == 2
    assert "unknown hardware profile 'nope'" in capsys.readouterr().err
    assert main(["model", "predict", str(tmp_path / "missing.jsonl")]) == 2


def test_autotvm_lines_get_the_profile_of_the_session_they_were_measured_in():
    """AutoTVM lines name no session; their configuration and measurement day place them in one."""
    from vta.sim.predict import session_of

    got = {n: session_of(ln.target, ln.timestamp) for n, ln in read_lines(DATA / "autotvm_sample.log")}
    assert got[1] == "1x16 2019-08-09..08-10 (Resnet-50, Alexnet, VGG)"  # measured 2019-08-09
    assert got[2] is None and got[4] is None and got[5] is None  # sessions the default profile explains
    assert session_of("pynq_4x8_i8w8a32_15_16_16_18", 1565330810.0) is None  # right day, other configuration
    assert session_of("pynq_1x16_i8w8a32_15_15_18_17", None) is None
