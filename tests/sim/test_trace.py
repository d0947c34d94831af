"""Timeline export: Chrome/Perfetto JSON, the PNG Gantt chart (optional matplotlib), the CLI."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest

from tests.sim.test_perf import dur, tiles
from vta.cli import main
from vta.isa import MEM_INP, GemmInsn, MemInsn, encode_stream
from vta.sim.device import SimDevice
from vta.sim.perf import estimate
from vta.sim.trace import _COLORS, MissingExtraError, busy_overlap, chrome_trace, label, write_json, write_png


@pytest.fixture
def timing():
    insns = [MemInsn(memory_type=MEM_INP, y_size=1, x_size=8, x_stride=8, push_next_dep=1),
             GemmInsn(uop_end=1, iter_out=100, pop_prev_dep=1), GemmInsn(iter_out=0, reset_reg=1)]
    from vta.isa import FinishInsn

    return estimate(encode_stream([*insns, FinishInsn()]))


def test_one_interval_per_instruction_per_track(timing):
    ivs = timing.intervals
    assert [(iv.index, iv.track) for iv in ivs] == [(0, "fetch"), (1, "fetch"), (2, "fetch"), (3, "fetch"),
                                                    (0, "load"), (1, "compute"), (2, "compute"), (3, "compute")]
    assert [iv.label for iv in ivs[4:]] == ["LOAD INP", "GEMM", "GEMM reset", "FINISH"]
    gemm = ivs[5]
    assert gemm.start - gemm.wait_from > 0  # waited for the load's token
    assert gemm.end - gemm.start == dur(timing, 1)


def test_chrome_trace_events_are_in_microseconds(timing, tmp_path):
    trace = chrome_trace(timing)
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] != "stall"]
    waits = [e for e in trace["traceEvents"] if e.get("cat") == "stall"]
    names = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"]
    assert names == ["fetch", "load", "compute", "store"] and len(slices) == 8
    gemm = next(e for e in slices if e["name"] == "GEMM" and e["cat"] == "compute")
    assert gemm["dur"] == pytest.approx(dur(timing, 1) / 100) and gemm["tid"] == 2
    assert next(e for e in slices if e["name"] == "GEMM")["cat"] == "fetch"
    assert gemm["ts"] == pytest.approx(int(timing.start[1]) / 100)
    assert [w["args"]["for"] for w in waits] == ["GEMM"]
    assert trace["otherData"]["cycles"] == timing.cycles
    write_json(timing, tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(json.dumps(trace))


def test_trace_json_of_a_conv_layer_is_valid_trace_event_format(vectors_dir, tmp_path):
    from vta.sim.vector import load_vector

    t = estimate(load_vector(vectors_dir / "conv" / "conv_28_128_128_k3_s1").insn_bytes())
    write_json(t, tmp_path / "t.json")
    trace = json.loads((tmp_path / "t.json").read_text())
    assert set(trace) == {"traceEvents", "displayTimeUnit", "otherData"} and trace["displayTimeUnit"] in ("ms", "ns")
    meta = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(meta) + len(slices) == len(trace["traceEvents"])
    assert {e["name"] for e in meta} == {"process_name", "thread_name"} and all("name" in e["args"] for e in meta)
    for e in slices:  # complete events: name, category, pid/tid, start and duration in microseconds
        assert {"name", "cat", "ph", "pid", "tid", "ts", "dur", "args"} <= set(e), e
        assert isinstance(e["name"], str) and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert e["ts"] >= 0 and e["dur"] >= 0 and e["ts"] + e["dur"] <= t.seconds * 1e6 + 1e-9
    work = [e for e in slices if e["cat"] != "stall"]
    assert len(work) == 2 * t.stream.count  # one fetch slice and one module slice per instruction
    per_track = {tid: [e for e in work if e["tid"] == tid] for tid in range(4)}
    for events in per_track.values():  # each module runs its queue in order, one instruction at a time
        ends = [(e["ts"], e["ts"] + e["dur"]) for e in sorted(events, key=lambda e: e["args"]["index"])]
        assert all(b[0] >= a[1] - 1e-9 for a, b in itertools.pairwise(ends))
    assert sum(e["dur"] for e in per_track[2]) == pytest.approx(t.modules["compute"].busy / 100)


def test_labels_name_alu_ops_and_nops(env):
    from vta.isa import ALU_MAX, AluInsn, DecodedStream

    s = DecodedStream(encode_stream([AluInsn(alu_opcode=ALU_MAX, use_imm=1, imm=-3), AluInsn(), MemInsn()], env), env)
    assert [label(s, i) for i in range(3)] == ["ALU MAX -3", "ALU ADD", "NOP"]


def test_overlap_is_zero_for_serial_and_large_for_double_buffered():
    dev = SimDevice()
    insns, load, gemm = tiles(dev, 6, double=True)
    from tests.sim.programs import program

    t = program(dev, insns).run().timing
    assert busy_overlap(t, "load", "compute") >= 5 * min(load, gemm) - 20
    assert busy_overlap(t, "load", "store") == 0


def pixels(path, color: str) -> np.ndarray:
    """Row coordinates of the pixels painted exactly ``color`` (#rrggbb)."""
    from matplotlib.image import imread

    rgb = (imread(path)[..., :3] * 255).round().astype(int)
    return np.nonzero((rgb == [int(color[i:i + 2], 16) for i in (1, 3, 5)]).all(-1))[0]


def test_png_gantt_chart_draws_each_module_on_its_row(vectors_dir, tmp_path):
    from matplotlib.image import imread

    from vta.sim.vector import load_vector

    t = estimate(load_vector(vectors_dir / "conv" / "conv_56_64_128_k1_s2").insn_bytes())
    path = tmp_path / "t.png"
    write_png(t, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(path).shape == (352, 1320, 4)  # 12 x 3.2 inches at 110 dpi
    rows = {kind: pixels(path, _COLORS[kind]) for kind in ("LOAD", "GEMM", "ALU", "STORE")}
    assert all(len(r) > 2000 for r in rows.values())  # bars, not just the legend's swatches (~150 pixels each)
    # Rows top to bottom: fetch, load, compute, store; GEMM and ALU share the compute row.
    load, gemm, alu, store = (float(np.median(r)) for r in rows.values())
    assert load < gemm < store and load < alu < store and abs(gemm - alu) <= 2
    assert len(pixels(path, "#eeeeee")) > 10_000  # the token waits of a load-bound layer


def test_png_without_matplotlib_names_the_extra(timing, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r'^PNG timelines need matplotlib: pip install "\.\[plot\]" in the '
                       r"pynq-vta checkout \(or pip install matplotlib\)$"):
        write_png(timing, tmp_path / "t.png")


def test_cli_trace_png(vectors_dir, tmp_path, capsys, monkeypatch):
    d = vectors_dir / "conv" / "conv_14_256_512_k1_s2"
    assert main(["sim", "trace", str(d), "--png", str(tmp_path / "g.png")]) == 0
    assert len(pixels(tmp_path / "g.png", _COLORS["GEMM"])) > 1000
    assert "GEMM utilization" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["sim", "trace", str(d), "--png", str(tmp_path / "h.png")]) == 2
    assert capsys.readouterr().err == ('vta sim trace: error: PNG timelines need matplotlib: pip install ".[plot]" '
                                       "in the pynq-vta checkout (or pip install matplotlib)\n")
    assert not (tmp_path / "h.png").exists()


def test_cli_trace_and_run_vector_timing(vectors_dir, tmp_path, capsys):
    d = vectors_dir / "conv" / "conv_56_64_128_k1_s2"
    assert main(["sim", "trace", str(d), "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    trace = json.loads((tmp_path / "t.json").read_text())
    cycles = trace["otherData"]["cycles"]
    assert out.startswith(f"modeled: {cycles} cycles = ")
    assert main(["sim", "run-vector", str(d), "--json"]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["timing"]["cycles"] == cycles and ran["status"] == "ok"
    assert main(["sim", "run-vector", str(d), "--json", "--timing-only"]) == 0
    timing_only = json.loads(capsys.readouterr().out)
    assert timing_only["timing"] == ran["timing"] and timing_only["status"] == "timing-only"
    assert main(["sim", "run-vector", str(d), "--json", "--fidelity", "pynq", "--hw-exec"]) == 0
    assert json.loads(capsys.readouterr().out)["divergences"] == []
