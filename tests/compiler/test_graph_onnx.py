"""ONNX import: models built here with onnx.helper and the digits CNN exported to ONNX."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler.graph import GraphError, compile_network, quantize
from vta.compiler.graph.onnx_import import import_onnx
from vta.compiler.graph.quantize import float_forward, fuse

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _init(name: str, a: np.ndarray):
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _model(nodes, inits, in_shape, out_name="y", out_shape=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)
    g = helper.make_graph(nodes, "m", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])


def cnn(rng) -> onnx.ModelProto:
    """Conv+BN+Relu, MaxPool, Conv, residual Add, Relu, strided 1x1 Conv, Clip, GAP, Flatten, Gemm."""
    f = lambda *s, k=0.2: rng.normal(0, k, s)  # noqa: E731
    inits = [_init("w1", f(16, 3, 3, 3, k=0.4)), _init("b1", f(16)), _init("g", 1 + f(16)), _init("be", f(16)),
             _init("mu", f(16)), _init("var", 1 + np.abs(f(16))), _init("w2", f(16, 16, 3, 3, k=0.1)),
             _init("w3", f(32, 16, 1, 1)), _init("b3", f(32)), _init("lo", np.float32(0)),
             _init("hi", np.float32(6)), _init("wf", f(10, 32)), _init("bf", f(10))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["n1"], name="bn1", training_mode=0),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["a"], name="res"),
        helper.make_node("Relu", ["a"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="conv3", kernel_shape=[1, 1], strides=[2, 2]),
        helper.make_node("Clip", ["c3", "lo", "hi"], ["r3"], name="relu6"),
        helper.make_node("GlobalAveragePool", ["r3"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    return _model(nodes, inits, (1, 3, 16, 16))


def _float(graph, x):
    nodes, _, bounds = fuse(graph)
    return float_forward(nodes, bounds, x)


def test_imported_graph_matches_onnx_reference_and_runs_bit_exact():
    rng = np.random.default_rng(0)
    m = cnn(rng)
    g = import_onnx(m)
    assert [n.op for n in g.nodes.values()] == ["input", "conv2d", "relu", "max_pool", "conv2d", "add", "relu",
                                                "conv2d", "clip", "global_avg_pool", "flatten", "dense"]
    x = rng.random((4, 3, 16, 16)).astype(np.float32)
    want = np.concatenate([ReferenceEvaluator(m).run(None, {"x": x[i:i + 1]})[0] for i in range(4)])
    np.testing.assert_allclose(_float(g, x)["fc"], want, rtol=1e-4, atol=1e-4)
    qg = quantize(g, x)
    with compile_network(qg, "sim") as net:
        assert net.placement["conv2"].target == "vta" and net.placement["res"].target == "cpu"
        got = net.run_quantized(qg.quantize_input(x[0]), keep=True)
    for name, ref in qg.reference(x[0]).items():
        np.testing.assert_array_equal(got[name], ref, err_msg=name)


def digits_onnx(p: dict[str, np.ndarray]) -> onnx.ModelProto:
    inits = [_init(k, p[k]) for k in ("conv1_w", "conv1_b", "conv2_w", "conv2_b")]
    inits += [_init("fc_wt", p["fc_w"].T), _init("fc_b", p["fc_b"])]
    nodes = [
        helper.make_node("Conv", ["x", "conv1_w", "conv1_b"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2_w", "conv2_b"], ["c2"], name="conv2", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc_wt"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fc_b"], ["y"], name="fc_bias"),
    ]
    return _model(nodes, inits, (1, 1, 8, 8))


def test_digits_exported_to_onnx_imports_to_the_same_network(tmp_path):
    from vta.compiler.graph.models import digits_data
    from vta.compiler.graph.train_digits import predict

    d = digits_data()
    path = tmp_path / "digits.onnx"
    onnx.save(digits_onnx(d), path)
    g = import_onnx(path)
    x = d["test_x"]
    np.testing.assert_array_equal(_float(g, x)["fc"].argmax(1), predict(d, x))
    qg = quantize(g, d["calib_x"])
    with compile_network(qg, "sim") as net:
        got = net(x[:50])
    np.testing.assert_array_equal(got["fc"], qg.dequantize("fc", qg.reference(x[:50])["fc"]))


def test_unsupported_operator_is_named_with_its_op_type():
    m = _model([helper.make_node("LRN", ["x"], ["y"], name="norm1", size=3)], [], (1, 3, 8, 8))
    with pytest.raises(GraphError, match=r"^ONNX node norm1 \(LRN\): unsupported operator; supported: Conv, "):
        import_onnx(m)


def test_batchnorm_without_a_conv_before_it_is_refused():
    inits = [_init(n, np.ones(3)) for n in ("g", "b", "m", "v")]
    m = _model([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], name="bn")], inits,
               (1, 3, 8, 8))
    with pytest.raises(GraphError, match=r"^ONNX node bn \(BatchNormalization\): only a BatchNormalization right "
                                         r"after a Conv"):
        import_onnx(m)


def test_shape_mismatch_names_the_onnx_node():
    inits = [_init("w", np.zeros((4, 5, 3, 3)))]
    m = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3])], inits, (1, 3, 8, 8))
    with pytest.raises(GraphError, match=r"^ONNX node c \(Conv\): conv2d c: weight has 5 input channels, input "
                                         r"'input' has 3$"):
        import_onnx(m)


def test_a_file_that_is_not_onnx(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00\x01this is not a protobuf" * 10)
    with pytest.raises(GraphError, match=r"model.onnx: not an ONNX model"):
        import_onnx(bad)


def test_vta_run_writes_one_row_per_sample(tmp_path, capsys):
    from vta.cli import main
    from vta.compiler.graph.models import digits_data

    d = digits_data()
    onnx.save(digits_onnx(d), tmp_path / "digits.onnx")
    np.save(tmp_path / "cal.npy", d["calib_x"])
    np.save(tmp_path / "x.npy", d["test_x"][:10])
    args = ["run", str(tmp_path / "digits.onnx"), "--calibration", str(tmp_path / "cal.npy"), "--input",
            str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "padded to 16 (94% of the GEMM work on zeros) — VTA" in out and "modeled for the Pynq-Z1" in out
    y = np.load(tmp_path / "y.npy")
    qg = quantize(import_onnx(tmp_path / "digits.onnx"), d["calib_x"])
    np.testing.assert_array_equal(y, qg.dequantize("fc", qg.reference(d["test_x"][:10])["fc"]))


def test_vta_run_refuses_bad_files_clearly(tmp_path, capsys):
    from vta.cli import main

    (tmp_path / "m.onnx").write_bytes(b"garbage" * 20)
    np.save(tmp_path / "cal.npy", np.zeros((2, 1, 8, 8), np.float32))
    np.save(tmp_path / "bad_cal.npy", np.zeros((2, 8, 8), np.float32))
    base = ["run", str(tmp_path / "m.onnx"), "--input", str(tmp_path / "cal.npy"), "--output", str(tmp_path / "y.npy")]
    assert main([*base, "--calibration", str(tmp_path / "cal.npy")]) == 1
    assert "not an ONNX model" in capsys.readouterr().err
    from vta.compiler.graph.models import digits_data

    onnx.save(digits_onnx(digits_data()), tmp_path / "m.onnx")
    assert main([*base, "--calibration", str(tmp_path / "bad_cal.npy")]) == 1
    assert "calibration data of shape (2, 8, 8): expected (samples, 1, 8, 8)" in capsys.readouterr().err
    assert main([*base, "--calibration", str(tmp_path / "nope.npy")]) == 1
    assert "--calibration" in capsys.readouterr().err and not (tmp_path / "y.npy").exists()


def test_vta_bench_takes_an_onnx_model_with_its_calibration(tmp_path, capsys):
    import json

    from vta.cli import main
    from vta.compiler.graph.models import digits_data

    d = digits_data()
    onnx.save(digits_onnx(d), tmp_path / "digits.onnx")
    np.save(tmp_path / "cal.npy", d["calib_x"])
    model = str(tmp_path / "digits.onnx")
    assert main(["bench", "--model", model, "--no-png"]) == 1
    assert "an ONNX model needs --calibration CAL.npy" in capsys.readouterr().err
    out = tmp_path / "b.json"
    assert main(["bench", "--model", model, "--calibration", str(tmp_path / "cal.npy"), "--no-png", "--json",
                 str(out), "--repeat", "1"]) == 0
    data = json.loads(out.read_text())
    assert data["bit_exact"] is True and data["vta_timing"] == "modeled"
    assert {r["name"]: r["placement"] for r in data["layers"]}["conv2"] == "vta"
