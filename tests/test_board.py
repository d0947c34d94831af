"""Board detection (vta.board) and the TARGET choice built on it (vta.config), against fake device trees."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from vta.board import DetectedBoard, detect_board
from vta.config import choose_target, resolve_default
from vta.errors import ConfigError


@pytest.fixture
def dt(tmp_path):
    """A fake device tree root; write(name, text) adds a NUL-terminated string property."""
    root = tmp_path / "proc-device-tree"
    root.mkdir()

    def write(name: str, text: str) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() + b"\0")
        return path

    write.root = root
    return write


@pytest.fixture
def nowhere(tmp_path) -> dict:
    """Detection options that find nothing: an empty device tree and no /etc/environment."""
    return {"dt_roots": (tmp_path / "none",), "etc_environment": tmp_path / "no-environment"}


def test_pynq_board_name_in_the_device_tree(dt, nowhere):
    path = dt("chosen/pynq_board", "Pynq-Z1")
    board = detect_board({}, dt_roots=(dt.root,), etc_environment=nowhere["etc_environment"])
    assert board == DetectedBoard("Pynq-Z1", "pynq", str(path))
    assert board.description == f"{path} reads 'Pynq-Z1'"


@pytest.mark.parametrize("model,target", [
    ("Digilent Pynq-Z1 board", "pynq"), ("TUL PYNQ-Z2 board", "pynq"), ("ZynqMP ZCU104 RevC", "zcu104"),
    ("Avnet Ultra96-V2 Rev1", "ultra96"),
])
def test_device_tree_model_names_the_board(dt, nowhere, model, target):
    path = dt("model", model)
    board = detect_board({}, dt_roots=(nowhere["dt_roots"][0], dt.root), etc_environment=nowhere["etc_environment"])
    assert board == DetectedBoard(model, target, str(path))


def test_a_model_that_names_no_supported_board_is_not_a_board(dt, nowhere):
    dt("model", "Xilinx ZC702 board")
    assert detect_board({}, dt_roots=(dt.root,), etc_environment=nowhere["etc_environment"]) is None


def test_board_variable_and_etc_environment_survive_sudo(tmp_path, nowhere):
    assert detect_board({"BOARD": "Pynq-Z2"}, **nowhere) == \
        DetectedBoard("Pynq-Z2", "pynq", "the BOARD environment variable")
    etc = tmp_path / "environment"
    etc.write_text('PATH="/usr/bin"\nBOARD="Pynq-Z1"\nXILINX_XRT=/usr\n')
    # sudo resets the environment (no BOARD), but PYNQ's /etc/environment still names the board
    assert detect_board({}, dt_roots=nowhere["dt_roots"], etc_environment=etc) == \
        DetectedBoard("Pynq-Z1", "pynq", f"BOARD in {etc}")


def test_device_tree_wins_and_unknown_is_no_board(dt, nowhere):
    dt("chosen/pynq_board", "Unknown")
    dt("model", "Digilent Pynq-Z1")
    found = detect_board({"BOARD": "Unknown"}, dt_roots=(dt.root,), etc_environment=nowhere["etc_environment"])
    assert found is not None and found.target == "pynq" and found.source.endswith("model")
    dt("chosen/pynq_board", "KV260")
    found = detect_board({"BOARD": "Pynq-Z1"}, dt_roots=(dt.root,), etc_environment=nowhere["etc_environment"])
    assert found == DetectedBoard("KV260", None, str(dt.root / "chosen" / "pynq_board"))


# --- choosing TARGET -------------------------------------------------------------------------
def test_no_configuration_on_a_pynq_board_targets_it(dt, nowhere):
    dt("chosen/pynq_board", "Pynq-Z1")
    env, choice = resolve_default({}, dt_roots=(dt.root,), etc_environment=nowhere["etc_environment"])
    assert env.TARGET == "pynq" and env.BITSTREAM == "1x16_i8w8a32_15_15_18_17"
    assert (choice.source, choice.reason) == (
        "detected", f"a Pynq-Z1 board was detected ({dt.root}/chosen/pynq_board reads 'Pynq-Z1')")


def test_no_board_means_the_simulator_and_board_errors_say_what_to_set(nowhere):
    env, choice = resolve_default({}, **nowhere)
    assert env.TARGET == "sim" and choice.source == "default"
    assert choice.board_advice() == (
        "TARGET is 'sim' because no Pynq board was detected (no device-tree pynq_board or model naming one, no "
        "BOARD setting), so the simulator is used; set VTA_TARGET to one of pynq, ultra96, zcu104 (sudo drops the "
        "environment: pass it on the command line, e.g. `sudo VTA_TARGET=pynq vta program`)")


def test_explicit_settings_win_when_they_agree(dt, nowhere, tmp_path):
    dt("chosen/pynq_board", "Pynq-Z1")
    probe = {"dt_roots": (dt.root,), "etc_environment": nowhere["etc_environment"]}
    env, choice = resolve_default({"VTA_TARGET": "sim"}, **probe)  # simulate on the board: allowed
    assert env.TARGET == "sim" and choice.reason == "VTA_TARGET=sim is set"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**env.to_dict(), "TARGET": "pynq", "LOG_BATCH": 1}))
    env, choice = resolve_default({"VTA_CONFIG": str(cfg)}, **probe)
    assert (env.TARGET, env.LOG_BATCH, choice.source) == ("pynq", 1, "VTA_CONFIG")


def test_wrong_settings_say_exactly_what_to_set(dt, nowhere, tmp_path):
    dt("chosen/pynq_board", "Pynq-Z1")
    probe = {"dt_roots": (dt.root,), "etc_environment": nowhere["etc_environment"]}
    with pytest.raises(ConfigError, match=r"^VTA_TARGET='pynqz1' is not allowed; allowed values: sim, pynq, ultra96, "
                       r"zcu104, de10nano, intelfocl, tsim; set one of them, or unset VTA_TARGET to use the detected "
                       r"Pynq-Z1 board \(TARGET pynq\)$"):
        resolve_default({"VTA_TARGET": "pynqz1"}, **probe)
    with pytest.raises(ConfigError, match=r"^VTA_TARGET is 'ultra96', but this machine is a Pynq-Z1 board \(.*"
                       r"pynq_board reads 'Pynq-Z1'\), whose TARGET is 'pynq': set VTA_TARGET=pynq, or unset "
                       r"VTA_TARGET to use the detected Pynq-Z1 board \(TARGET pynq\)$"):
        resolve_default({"VTA_TARGET": "ultra96"}, **probe)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**resolve_default({}, **probe)[0].to_dict(), "TARGET": "zcu104"}))
    with pytest.raises(ConfigError, match=rf"^TARGET in VTA_CONFIG={cfg} is 'zcu104', but this machine is a Pynq-Z1 "
                       r"board .*: set its TARGET to 'pynq' \(or set VTA_TARGET=pynq\)$"):
        resolve_default({"VTA_CONFIG": str(cfg)}, **probe)
    with pytest.raises(ConfigError, match=r"^VTA_TARGET='x' is not allowed; .*; set one of them, or unset VTA_TARGET "
                       r"to use the simulator \(no Pynq board was detected\)$"):
        choose_target({"VTA_TARGET": "x"}, "sim", None)


def test_a_board_without_a_vta_target_uses_the_simulator_and_says_why(dt, nowhere):
    dt("chosen/pynq_board", "KV260")
    env, choice = resolve_default({}, dt_roots=(dt.root,), etc_environment=nowhere["etc_environment"])
    assert env.TARGET == "sim"
    assert choice.reason.startswith(f"the detected board has no VTA target ({dt.root}/chosen/pynq_board reads "
                                    "'KV260'; VTA runs on pynq-z1, pynq-z2, ")


def test_vta_info_says_which_target_and_why(tmp_path):
    """`vta info` in a fresh process with no configuration: here no board, so sim, with the reason and a log line."""
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(name)s: "
            "%(message)s'); from vta.cli import main; sys.exit(main(['info']))")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    target = next(line for line in done.stdout.splitlines() if line.startswith("TARGET ")).split(None, 2)
    assert target[:2] == ["TARGET", "sim"] and target[2].startswith("(no Pynq board was detected")
    assert "vta.config: TARGET sim: no Pynq board was detected" in done.stderr


def test_resolution_logs_the_choice_once(monkeypatch, caplog):
    import vta.config as config

    monkeypatch.setattr(config, "_DEFAULT", [])
    monkeypatch.setenv("VTA_TARGET", "pynq")
    with caplog.at_level(logging.INFO, logger="vta.config"):
        assert config.get_env().TARGET == "pynq" and config.get_env().TARGET == "pynq"
    assert [r.getMessage() for r in caplog.records] == ["TARGET pynq: VTA_TARGET=pynq is set"]
