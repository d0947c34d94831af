"""The calibration fit: it recovers known constants, and re-running it on the shipped data reproduces
the profiles the model uses by default (slow: it compiles all 75 logged configurations)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vta.sim import calibrate
from vta.sim.perf import PROFILES, PYNQ_Z1, SESSION_PROFILES, HwTiming

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration" / "pynq_board_times.jsonl"
SMALL = (30, 37, 41, 48)  # dense 1x16, two small grouped convs, a 1x1 conv on 4x8


@pytest.fixture(scope="module")
def small_samples(tmp_path_factory):
    lines = DATA.read_text().splitlines()
    f = tmp_path_factory.mktemp("cal") / "small.jsonl"
    f.write_text("\n".join(lines[n - 1] for n in SMALL) + "\n")
    samples, errors = calibrate.load_samples(f)
    assert not errors and len(samples) == len(SMALL)
    return samples


def test_fit_recovers_the_constants_that_made_the_times(small_samples):
    truth = HwTiming(read_bytes_per_cycle=4.5, axi_read_latency=40, host_us=20.0)
    made = [dataclasses.replace(s, measured_s=s.predict(truth)) for s in small_samples]
    grids = {k: calibrate.GRIDS[k] for k in ("read_bytes_per_cycle", "axi_read_latency", "host_us")}
    got = calibrate.fit(made, HwTiming(), grids)
    assert (got.read_bytes_per_cycle, got.axi_read_latency, got.host_us) == (4.5, 40, 20.0)
    assert calibrate.score(made, got) < 1e-9 < calibrate.score(made, HwTiming())


def test_summary_statistics():
    r = calibrate.summary([1.0, 2.2, 2.9, 5.5], [1.0, 2.0, 3.0, 4.0], ["a", "a", "a", "b"])
    assert r["a"]["lines"] == 3 and r["a"]["median_abs_error"] == pytest.approx(1 / 30)
    assert r["a"]["within_25pct"] == 1.0 and r["a"]["spearman"] == pytest.approx(1.0)
    assert r["b"]["within_25pct"] == 0.0 and r["b"]["spearman"] is None


def test_the_default_profile_is_the_models_default():
    assert PYNQ_Z1 is PROFILES["pynq"]
    assert set(SESSION_PROFILES.values()) <= set(PROFILES)


@pytest.mark.slow
def test_refitting_the_shipped_data_reproduces_the_shipped_profiles(tmp_path):
    out = tmp_path / "fit.json"
    assert calibrate.main([str(DATA), "--folds", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["reproduced"] and list(report["unused_lines"]) == ["75"]  # the reblocked 4x8 dense line
    assert {k: HwTiming(**v) for k, v in report["profiles"].items()} == PROFILES


@pytest.mark.parametrize(("option", "field", "value"),
                         [("--shared-bus", "shared_bus", True), ("--no-l2", "l2_bytes", 0)])
def test_options_fit_other_models(tmp_path, option, field, value):
    """--shared-bus fits the model with one AXI port for every DMA, --no-l2 the model without the L2 cache
    in front of the reads: the fitted profiles say so, and they are not the shipped ones (exit 3)."""
    lines = DATA.read_text().splitlines()
    f = tmp_path / "small.jsonl"
    f.write_text("\n".join(lines[n - 1] for n in SMALL) + "\n")
    out = tmp_path / "fit.json"
    assert calibrate.main([str(f), "--folds", "0", option, "--json", str(out)]) == 3
    report = json.loads(out.read_text())
    assert not report["reproduced"] and all(p[field] == value for p in report["profiles"].values())
    assert getattr(PYNQ_Z1, field) != value


@pytest.mark.slow
def test_the_shipped_profiles_predict_every_logged_line_within_25_percent():
    """The issue's bar on the data the fit saw: median |p/m - 1| <= 10 % (over all lines and in every session
    of more than three), every line within +-25 %, Spearman >= 0.9 in every session of more than three lines
    (the three DCGAN lines lie within 11 % of each other; the LSTM sessions have one line each)."""
    samples, _ = calibrate.load_samples(DATA)
    pred = [s.predict(PROFILES[SESSION_PROFILES.get(s.session, "pynq")]) for s in samples]
    ratios = [p / s.measured_s for p, s in zip(pred, samples)]
    assert len(ratios) == 74 and all(0.75 <= r <= 1.25 for r in ratios)
    assert sorted(abs(r - 1) for r in ratios)[len(ratios) // 2] <= 0.10
    report = calibrate.summary(pred, [s.measured_s for s in samples], [s.session for s in samples])
    big = [r for r in report.values() if r["lines"] > 3]
    assert len(big) == 4 and all(r["median_abs_error"] <= 0.10 and r["spearman"] >= 0.9 for r in big)


def test_resnet18_layers_the_board_measured_outside_the_data_are_predicted_within_25_percent():
    """Not in the fitted data: TVM's 1x16 ResNet-18 logs measured C9 at 28.9 and C11 at 31.5 GOPS with
    TopHub's knobs (C11 took 7.35 ms, line 21's configuration in another session); TVM's programs for
    them, modeled with the default profile, must land within +-25 % (they are at about 0.95x)."""
    from vta.compiler.build import build
    from vta.compiler.ops import Epilogue, conv2d
    from vta.compiler.ops.resnet18 import RESNET18, TUNED
    from vta.sim.predict import predict_program

    for name, gops in (("C9", 28.9), ("C11", 31.5)):
        wl = RESNET18[name]
        op = conv2d(wl, TUNED[name], Epilogue(shift=8, clip=(0, 127)))
        modeled = predict_program(build(op.schedule, op.args, op.name, like_tvm=True), PYNQ_Z1).wall_seconds
        measured = 2 * wl.out_h * wl.out_w * wl.out_channels * wl.in_channels * wl.kernel ** 2 / (gops * 1e9)
        assert 0.75 <= modeled / measured <= 1.25, (name, modeled / measured)
