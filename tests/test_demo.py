import pytest

from vta.cli import main
from vta.demo import dense_demo
from vta.errors import SramOutOfBoundsError


def test_demo_runs_and_checks(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok") == 3 and "MISMATCH" not in out


def test_dense_demo_counts_gemm_work():
    r = dense_demo(256, 512, seed=3)
    assert r["ok"] and r["counters"]["gemm_counter"] == 16 * 32 and r["counters"]["alu_counter"] == 3 * 32


def test_dense_layer_too_big_for_the_weight_sram_is_refused():
    with pytest.raises(SramOutOfBoundsError, match=r"LOAD WGT covers WGT entries 0..4095, past the depth 1024"):
        dense_demo(1024, 1024)
