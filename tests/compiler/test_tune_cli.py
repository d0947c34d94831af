"""``vta tune``: tasks from a workload file or layer names, AutoTVM lines out, progress, a curve PNG."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from tests.compiler.tune_helpers import SMALL
from vta.cli import main
from vta.compiler.tune.autotvm_log import read_log
from vta.compiler.tune.dispatch import apply_best, logged_config
from vta.runtime.rpc.server import ServerConfig, TcpServer


def _tasks_file(tmp_path):
    conv = {"task": "conv2d_packed.vta", "target": "pynq_1x16_i8w8a32_15_15_18_17",
            "workload": {"data_shape": list(SMALL.data_shape), "kernel_shape": list(SMALL.kernel_shape),
                         "stride": [1, 1], "pad": [1, 1, 1, 1]}, "knobs": {"ignored": True}}
    dense = {"input": ["ext_dev -device=vta -keys=cpu -model=pynq_1x16_i8w8a32_15_15_18_17", "dense_packed.vta",
                       [["TENSOR", [1, 4, 1, 16], "int8"], ["TENSOR", [4, 4, 16, 16], "int8"], None, "int32"], {}],
             "config": {"index": 0, "code_hash": None, "entity": []}, "result": [[1.0], 0, 1.0, 1.0]}
    group = {**conv, "task": "group_conv2d_packed.vta"}
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in (conv, dense, conv, group)) + "\n{broken\n")
    return path


def test_tune_a_task_file_writes_autotvm_lines_that_apply_best_uses(tmp_path, capsys, caplog):
    log = tmp_path / "out.log"
    png = tmp_path / "curve.png"
    with caplog.at_level(logging.WARNING, logger="vta.compiler.tune.command"):
        code = main(["tune", "--tasks", str(_tasks_file(tmp_path)), "--trials", "6", "--cost-model", "xgb",
                     "--log", str(log), "--png", str(png)])
    assert code == 0
    out, err = capsys.readouterr()
    assert "small" not in out  # the file's workload is named by its shape
    assert "conv2d_6x6_16_32_k3_s1 (conv2d_packed.vta): " in out and "pass the validity filter" in out
    assert "6/6 best" in err and "GOPS (modeled)" in err
    assert "12 measurements appended to" in out
    skipped = [r.getMessage() for r in caplog.records]
    assert any(":4: skipped: template 'group_conv2d_packed.vta' is not supported" in m for m in skipped)
    assert any(":5: skipped: " in m for m in skipped)
    records = read_log(log)
    assert len(records) == 12 and all(r.ok for r in records)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = min((r for r in records if r.task == "conv2d_packed.vta"), key=lambda r: r.mean_cost)
    with apply_best(log):
        cfg = logged_config(SMALL)
    assert cfg.tile_h[1] == best.knobs["tile_h"][1] and cfg.tile_co[1] == best.knobs["tile_co"][1]


def test_tune_through_the_simulator_checks_every_output(tmp_path, capsys):
    log = tmp_path / "sim.log"
    assert main(["tune", "--tasks", str(_tasks_file(tmp_path)), "--trials", "2", "--measurer", "sim",
                 "--cost-model", "grid", "--log", str(log)]) == 0
    assert "ms modeled" in capsys.readouterr().out
    records = read_log(log)
    assert len(records) == 4 and all(r.ok for r in records)
    conv = [r.index for r in records if r.task == "conv2d_packed.vta"]
    assert conv == sorted(conv)


def test_tune_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["tune", "--layers", "C1", "--log", str(tmp_path / "x.log")]) == 1
    assert "vta tune: error: ResNet-18 has no VTA layer 'C1'; layers: C2," in capsys.readouterr().err
    assert main(["tune", "--layers", "C2", "--trials", "0", "--log", str(tmp_path / "x.log")]) == 1
    assert "vta tune: error: --trials 0: expected at least 1" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["tune", "--tasks", str(empty), "--log", str(tmp_path / "x.log")]) == 1
    assert "no line names a task this compiler can tune" in capsys.readouterr().err
    assert main(["tune", "--layers", "C9", "--measurer", "board", "--emulator", str(tmp_path / "no-such-board"),
                 "--log", str(tmp_path / "x.log")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vta tune: error: ") and "no-such-board" in err
    with pytest.raises(SystemExit):
        main(["tune", "--layers", "C2", "--tasks", str(empty), "--log", "x"])


TOKEN = "a-test-token-of-enough-length"


@pytest.fixture
def rpc_board(board, env, tmp_path):
    """The emulated board served on loopback with a token, and the token's file."""
    srv = TcpServer(ServerConfig(mode="emulate", token=TOKEN, env=env, emulator=board)).start()
    (tmp_path / "token").write_text(TOKEN + "\n")
    yield f"tcp://127.0.0.1:{srv.address[1]}", str(tmp_path / "token")
    srv.stop()


def test_tune_through_a_served_board(tmp_path, capsys, rpc_board):
    url, token = rpc_board
    log = tmp_path / "rpc.log"
    assert main(["tune", "--tasks", str(_tasks_file(tmp_path)), "--trials", "2", "--measurer", "rpc", "--host", url,
                 "--token-file", token, "--cost-model", "grid", "--log", str(log)]) == 0
    out, err = capsys.readouterr()
    assert "ms measured on the served board" in out and "GOPS (measured on the served board)" in err
    records = read_log(log)
    assert len(records) == 4 and all(r.ok and r.mean_cost > 0 for r in records)


def test_tune_rpc_errors_are_one_line(tmp_path, capsys, rpc_board):
    url, _ = rpc_board
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    (tmp_path / "wrong").write_text("not-the-token-at-all")
    base = ["tune", "--layers", "C9", "--trials", "1", "--log", str(tmp_path / "x.log")]
    for extra, message in (
        (["--measurer", "rpc", "--host", "http://127.0.0.1:1"], "rpc url 'http://127.0.0.1:1': the scheme must be"),
        (["--measurer", "rpc", "--host", "tcp://10.1.2.3:9091"], "plain tcp is allowed only on loopback"),
        (["--measurer", "rpc", "--host", f"tcp://127.0.0.1:{port}"], f"cannot connect to tcp://127.0.0.1:{port}: "),
        (["--measurer", "rpc", "--host", url, "--token-file", str(tmp_path / "wrong")],
         "rpc server refused (auth): authentication failed: wrong or missing token"),
        (["--measurer", "rpc", "--host", url, "--token-file", str(tmp_path / "missing")],
         "rpc: cannot read the token file"),
        (["--measurer", "rpc"], "--measurer rpc needs --host URL"),
        (["--host", url], "--host applies to --measurer rpc only, not --measurer model"),
        (["--measurer", "sim", "--emulator", "x"], "--emulator applies to --measurer board only, not --measurer sim"),
    ):
        assert main(base + extra) == 1, extra
        err = capsys.readouterr().err
        assert err.startswith("vta tune: error: ") and message in err and err.count("\n") == 1, err


def test_one_measurer_serves_every_task_of_a_configuration(tmp_path, capsys, monkeypatch):
    """A device, a runtime or a fleet's cluster is opened once per run, not once per task."""
    from vta.compiler.tune import measure

    made = []

    class Counted(measure.ModelMeasurer):
        def __init__(self, **options):
            super().__init__(**options)
            self.opened = self.closed = 0
            made.append(self)

        def open(self):
            self.opened += 1

        def close(self):
            self.closed += 1

    monkeypatch.setitem(measure.MEASURERS, "model", Counted)
    assert main(["tune", "--layers", "C9,C10", "--trials", "2", "--cost-model", "random",
                 "--log", str(tmp_path / "t.log")]) == 0
    assert "4 measurements appended" in capsys.readouterr().out
    assert [(m.opened, m.closed) for m in made] == [(1, 1)]
