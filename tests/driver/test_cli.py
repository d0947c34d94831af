"""``vta selftest`` on emulators, and the pynq backend when the runtime interface is present."""

from __future__ import annotations

import json

from vta.cli import main


def test_selftest_on_a_temporary_emulator(capsys):
    assert main(["selftest", "--emulate", "--repeat", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == "a temporary emulator"
    assert [(r["name"], r["ok"]) for r in out["results"]] == [("alu_add", True), ("gemm", True)]


def test_selftest_on_a_served_emulator(board, capsys):
    assert main(["selftest", "--emulator", str(board.path), "--repeat", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"selftest on {board.path}:") and "ok   gemm" in text


def test_selftest_bad_memory_device(capsys, tmp_path):
    assert main(["selftest", "--skip-program", "--mem", str(tmp_path / "mem"), "--lock", str(tmp_path / "l")]) == 1
    assert "vta selftest: error: vta_device_open: open() failed for" in capsys.readouterr().err


def test_board_backend_over_the_emulator(board):
    from vta.runtime.backends.board import BoardBackend

    backend = BoardBackend(emulator=board)
    try:
        assert backend.name == "pynq" and "recovery" in backend.capabilities
    finally:
        backend.close()
