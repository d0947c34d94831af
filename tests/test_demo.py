"""vta demo: the digits CNN's accuracies and ResNet-18 end to end, bit-exact, with the modeled speed-up table."""

import json

import pytest

from vta.cli import main


def test_demo_digits_accuracies_and_bit_exact(capsys, tmp_path):
    assert main(["demo", "--models", "digits", "--json", str(tmp_path / "demo.json")]) == 0
    captured = capsys.readouterr()
    assert "VTA equals the int8 CPU reference" in captured.out
    assert "digits: 360 inferences on the simulator" in captured.err  # progress goes to stderr
    r = json.loads((tmp_path / "demo.json").read_text())["digits"]
    assert r["samples"] == 360 and r["vta_equals_int8"] is True
    assert r["vta_accuracy"] == r["int8_accuracy"] and abs(r["int8_accuracy"] - r["float_accuracy"]) <= 0.01
    assert r["float_accuracy"] > 0.95 and r["modeled_ms"] > 0


@pytest.mark.slow
def test_full_demo_runs_resnet18_end_to_end(capsys, tmp_path):
    assert main(["demo", "--json", str(tmp_path / "demo.json")]) == 0
    out = capsys.readouterr().out
    assert "VTA ms (modeled)" in out and "bit-exact against the int8 CPU reference: yes" in out
    data = json.loads((tmp_path / "demo.json").read_text())
    res = data["resnet18"]
    assert res["vta_timing"] == "modeled" and res["bit_exact"] is True and res["total"]["speedup"] > 0
    assert sum(r["placement"] == "vta" for r in res["layers"]) == 21  # 20 convs and the classifier


def test_demo_checks_the_json_path_before_any_work(capsys, tmp_path):
    assert main(["demo", "--json", str(tmp_path / "missing" / "demo.json")]) == 1
    captured = capsys.readouterr()
    assert "--json" in captured.err and "does not exist" in captured.err
    assert captured.out == "" and "quantizing" not in captured.err


def test_demo_json_path_that_is_a_directory(capsys, tmp_path):
    assert main(["demo", "--json", str(tmp_path)]) == 1
    assert "is a folder, not a file" in capsys.readouterr().err


@pytest.mark.parametrize("arg, msg", [(",", "--models ',' names no model; models: digits, resnet18"),
                                      ("", "--models '' names no model"),
                                      ("digits,C1", "--models: unknown model 'C1'; models: digits, resnet18")])
def test_demo_refuses_empty_or_unknown_model_lists(capsys, arg, msg):
    assert main(["demo", "--models", arg]) == 1
    captured = capsys.readouterr()
    assert msg in captured.err and captured.out == ""


def test_demo_compiles_resnet18_with_the_shipped_tuned_knobs(monkeypatch):
    import vta.compiler.graph as graph
    from vta import demo
    from vta.compiler.graph.tuning import load_tuning_log
    from vta.compiler.ops import resnet18
    from vta.compiler.ops.conv2d_config import default_conv2d_config

    class Compiled(Exception):
        pass

    seen = {}

    def compile_network(qg, backend, **options):
        seen.update(options)
        raise Compiled

    monkeypatch.setattr(graph, "quantize", lambda g, cal: None)
    monkeypatch.setattr(graph, "compile_network", compile_network)
    with pytest.raises(Compiled):
        demo.run_resnet18(lambda message: None)
    log = load_tuning_log(seen["tuning_log"])
    tuned = {name: log.config(resnet18.layer(name)) for name in resnet18.RESNET18}
    assert None not in tuned.values()
    assert tuned["C4"] != default_conv2d_config(resnet18.layer("C4"))  # the tuner beat the default tiler there
