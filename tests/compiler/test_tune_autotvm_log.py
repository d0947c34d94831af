"""AutoTVM log lines: the published ones import as-is and run bit-exact; ours read back identically;
apply_best picks the best logged configuration and falls back with a note."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vta.compiler.build import build
from vta.compiler.ops import Conv2dWorkload, conv2d, default_conv2d_config, dense
from vta.compiler.tune import TuneError
from vta.compiler.tune.autotvm_log import make_record, read_log, target_env, task_of, write_log
from vta.compiler.tune.dispatch import apply_best, logged_config
from vta.compiler.tune.measure import ModelMeasurer, SimMeasurer
from vta.compiler.tune.task import conv2d_task

SAMPLE = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration" / "autotvm_sample.log"
SMALL = Conv2dWorkload("small", 6, 6, 16, 32, 3, 1, 1)


def _lines() -> list[str]:
    return [line for line in SAMPLE.read_text().splitlines() if line.strip()]


def test_published_lines_import_as_is_and_write_back_the_same_json():
    records = read_log(SAMPLE)
    assert len(records) == len(_lines()) == 6
    for line, rec in zip(_lines(), records):
        assert json.loads(rec.to_json()) == json.loads(line)
    assert {r.task for r in records} == {"conv2d_packed.vta", "dense_packed.vta", "group_conv2d_packed.vta",
                                         "conv2d_transpose_packed.vta"}


def test_published_indices_agree_with_our_spaces():
    supported = 0
    for rec in read_log(SAMPLE):
        try:
            task, env = task_of(rec)
        except TuneError:
            continue
        with env:
            assert task.space.index(rec.knobs) == rec.index
        supported += 1
    assert supported == 3


def test_templates_and_layouts_we_cannot_build_are_named():
    by_task = {}
    for rec in read_log(SAMPLE):
        by_task.setdefault((rec.task, rec.target.split("model=")[1].split("_")[1]), rec)
    with pytest.raises(TuneError, match=r"^template 'group_conv2d_packed.vta' is not supported by this compiler; "
                                        r"supported: conv2d_packed.vta, dense_packed.vta$"):
        task_of(by_task[("group_conv2d_packed.vta", "1x16")])
    with pytest.raises(TuneError, match=r"^dense data \[4, 16, 1, 16\] / weight \[8, 16, 16, 16\]: expected the "
                                        r"packed layout of 4x8_i8w8a32_15_16_16_18 \(innermost \(4, 8\)\)$"):
        task_of(by_task[("dense_packed.vta", "4x8")])
    with pytest.raises(TuneError, match=r"^target 'ext_dev -model=pynq_3x16': expected a VTA model such as "):
        target_env("ext_dev -model=pynq_3x16")


def _run_published(task_name: str, model: str) -> None:
    rec = next(r for r in read_log(SAMPLE) if r.task == task_name and model in r.target)
    task, env = task_of(rec)
    with env:
        measurer = SimMeasurer()
        try:
            (result,) = measurer.measure(task, [task.space.index(rec.knobs)])
        finally:
            measurer.close()
    assert result.ok, result.error
    assert result.seconds > 0


def test_published_dense_configuration_runs_bit_exact():
    _run_published("dense_packed.vta", "1x16")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["1x16", "4x8"])
def test_published_conv2d_configurations_run_bit_exact(model):
    _run_published("conv2d_packed.vta", model)


def test_a_log_we_write_reads_back_identically(tmp_path):
    task = conv2d_task(SMALL)
    indices = task.space.valid.tolist()[:3]
    results = ModelMeasurer().measure(task, indices)
    records = [make_record(task, r.index, r.seconds, r.error, 0.5, 1700000000.0 + k) for k, r in enumerate(results)]
    records.append(make_record(task, indices[0], None, "compile: bad", 0.1, 1700000009.0))
    path = tmp_path / "ours.log"
    with path.open("w") as f:
        write_log(records, f)
    assert read_log(path) == records
    assert records[-1].error_no == 2 and not records[-1].ok
    back, _ = task_of(records[0])
    assert back.space.workload.data_shape == SMALL.data_shape and back.space.index(records[0].knobs) == indices[0]


def test_malformed_lines_are_skipped_with_a_warning_naming_the_line(tmp_path, caplog):
    good = _lines()[0]
    path = tmp_path / "bad.log"
    path.write_text("\n".join([good, "{not json", '{"input": [1, 2]}', "", good]) + "\n")
    with caplog.at_level(logging.WARNING, logger="vta.compiler.tune.autotvm_log"):
        records = read_log(path)
    assert len(records) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith(f"{path}:2: skipped a malformed AutoTVM record: not valid JSON")
    assert messages[1].startswith(f"{path}:3: skipped a malformed AutoTVM record: expected input = ")
    with pytest.raises(TuneError, match=r"^cannot read tuning log '.*missing.log': No such file or directory$"):
        read_log(tmp_path / "missing.log")


def _program_text(op) -> str:
    return str(build(op.schedule, op.args, "x"))


def test_apply_best_picks_the_cheapest_logged_configuration(tmp_path):
    task = conv2d_task(SMALL)
    a, b = task.space.valid.tolist()[:2]
    path = tmp_path / "small.log"
    with path.open("w") as f:
        write_log([make_record(task, a, 2e-3, None, 1, 1), make_record(task, b, 1e-3, None, 1, 2),
                   make_record(task, a, None, "wrong output", 1, 3)], f)
    with apply_best(path) as best:
        assert len(best) == 1
        assert logged_config(SMALL) == task.space.config(b)
        chosen = _program_text(conv2d(SMALL, epilogue=task.epilogue))
    assert chosen == _program_text(conv2d(SMALL, task.space.config(b), task.epilogue))
    assert logged_config(SMALL) is None  # inactive outside the block


def test_apply_best_falls_back_to_the_default_tiler_with_a_note(tmp_path, caplog):
    other = Conv2dWorkload("other", 8, 8, 16, 16, 3, 1, 1)
    with apply_best(SAMPLE), caplog.at_level(logging.WARNING, logger="vta.compiler.tune.dispatch"):
        text = _program_text(conv2d(other))
        r50 = logged_config(Conv2dWorkload("r50", 14, 14, 1024, 2048, 1, 2, 0))
        dense_cfg = logged_config((1, 8, 16))
        dense(16, 256, 128)
    assert text == _program_text(conv2d(other, default_conv2d_config(other)))
    notes = [r.getMessage() for r in caplog.records]
    assert "apply_best: no logged configuration for other on 1x16_i8w8a32_15_15_18_17; using the default tiler" in notes
    assert "apply_best: no logged configuration for dense (16, 8, 16) on 1x16_i8w8a32_15_15_18_17; using the " \
           "default tiler" in notes
    assert r50.tile_co == (8, 16) and r50.oc_nthread == 2
    assert dense_cfg.tile_ci == (1, 16)
    assert any("group_conv2d_packed.vta record" in n and "not used" in n for n in notes)


def _as_v01(line: str) -> str:
    """A published (version 0.2) line as AutoTVM wrote the same record in log version 0.1."""
    obj = json.loads(line)
    target, task, args, kwargs = obj["input"]
    cfg = obj["config"]
    return json.dumps({"i": [target, task, args, kwargs, ["WORKLOAD", task], {"i": cfg["index"], "c": cfg["code_hash"],
                                                                             "e": cfg["entity"]}],
                       "r": obj["result"], "v": 0.1})


def test_the_three_readers_agree_on_every_published_line_in_both_log_versions(tmp_path):
    from vta.compiler.graph.tuning import load_tuning_log
    from vta.compiler.ops.logged import read_lines

    for version, lines in (("0.2", _lines()), ("0.1", [_as_v01(x) for x in _lines()])):
        path = tmp_path / f"v{version}.log"
        path.write_text("# a comment AutoTVM skips\n" + "\n".join(lines) + "\n")
        records = read_log(path)  # the tuner
        assert [json.loads(r.to_json()) for r in records] == [json.loads(x) for x in lines]  # writes back as read
        assert {r.version for r in records} == {float(version)}
        logged = [ln for _, ln in read_lines(path)]  # vta model predict
        assert [(ln.line, ln.task, ln.knobs, ln.measured_s, ln.timestamp) for ln in logged] == \
            [(n, r.task, r.knobs, r.mean_cost, r.timestamp) for n, r in enumerate(records, 2)]
        tuned = load_tuning_log(path)  # the network compiler: the conv2d lines, one per workload
        conv = [r for r in records if r.task == "conv2d_packed.vta"]
        assert len(conv) == len(tuned) == 2  # two workloads, one line each
        assert sorted(json.dumps(k) for _, k in tuned.best.values()) == sorted(json.dumps(r.knobs) for r in conv)


def test_a_malformed_line_names_itself_in_every_reader(tmp_path, caplog):
    from vta.compiler.graph.graph import GraphError
    from vta.compiler.graph.tuning import load_tuning_log
    from vta.compiler.ops.logged import LoggedLineError, read_lines

    bad = json.loads(_as_v01(_lines()[0]))
    del bad["r"]
    path = tmp_path / "bad.log"
    path.write_text(_lines()[0] + "\n" + json.dumps(bad) + "\n")
    with caplog.at_level(logging.WARNING):
        assert len(read_log(path)) == 1
    assert caplog.records[0].getMessage() == (f"{path}:2: skipped a malformed AutoTVM record: expected input = "
                                              "[target, template, args, kwargs], config.entity and result = "
                                              "[costs, error_no, all_cost, timestamp]")
    (n, err), = [(n, x) for n, x in read_lines(path) if isinstance(x, LoggedLineError)]
    assert n == 2 and str(err).startswith("an AutoTVM line: expected input = ")
    with pytest.raises(GraphError, match=r"^tuning log .*bad\.log, line 2: not an AutoTVM record \(KeyError: 'r'\)$"):
        load_tuning_log(path)
