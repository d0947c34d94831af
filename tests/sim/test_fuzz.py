"""benchmarks/fuzz_sim.py at a smaller count: random streams run or are refused, never crash or hang."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_sim.py"


@pytest.mark.slow
def test_random_programs_never_crash_hang_or_touch_other_dram(tmp_path):
    out = tmp_path / "fuzz.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--count", "4000", "--seed", "11", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    res = json.loads(out.read_text())
    assert (res["count"], res["crashes"], res["hangs"], res["dram_violations"]) == (4000, 0, 0, 0)
    flavours = res["flavours"]
    assert sum(r["programs"] for r in flavours.values()) == 4000
    assert flavours["small_fields"]["ran_to_finish"] > 0  # the data paths really executed
    assert "0 crashes, 0 hangs" in run.stdout
