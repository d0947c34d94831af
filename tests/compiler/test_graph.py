"""The network graph, its quantization, the partitioner and compile-once-run-many on a small CNN."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler.graph import Graph, GraphError, compile_network, cpu, partition, quantize
from vta.compiler.graph.quantize import QNode
from vta.runtime import Runtime


def _f(rng, *shape, scale=0.1):
    return rng.normal(0, scale, shape).astype(np.float32)


def small_cnn(rng) -> Graph:
    """A 1-channel stem, two convs with a residual add (CPU), flatten, dense, argmax."""
    g = Graph("small", (1, 8, 8))
    h = g.relu(g.conv2d(g.input, _f(rng, 16, 1, 3, 3, scale=0.5), _f(rng, 16), pad=1, name="stem"))
    h2 = g.relu(g.conv2d(h, _f(rng, 32, 16, 3, 3), _f(rng, 32), stride=2, pad=1, name="down"))
    h3 = g.conv2d(h2, _f(rng, 32, 32, 3, 3), _f(rng, 32), pad=1, name="body")
    a = g.relu(g.add(h3, h2, name="res"))
    d = g.dense(g.flatten(a, name="flat"), _f(rng, 10, 512, scale=0.05), _f(rng, 10), name="fc")
    g.output(g.argmax(d, name="label"), d)
    return g


@pytest.fixture(scope="module")
def qg():
    rng = np.random.default_rng(3)
    return quantize(small_cnn(rng), rng.random((8, 1, 8, 8)).astype(np.float32))


@pytest.fixture(scope="module")
def net(qg):
    with compile_network(qg, "sim") as n:
        yield n


def test_shapes_are_checked_where_they_go_wrong():
    g = Graph("g", (3, 8, 8))
    with pytest.raises(GraphError, match=r"^conv2d c: weight has 4 input channels, input 'input' has 3$"):
        g.conv2d(g.input, np.zeros((16, 4, 3, 3), np.float32), name="c")
    a = g.conv2d(g.input, np.zeros((16, 3, 3, 3), np.float32), pad=1)
    b = g.conv2d(g.input, np.zeros((16, 3, 1, 1), np.float32), stride=2)
    with pytest.raises(GraphError, match=r"^add s: input shapes differ: 'conv1' is \(16, 8, 8\), 'conv2' is "
                                         r"\(16, 4, 4\)$"):
        g.add(a, b, name="s")
    with pytest.raises(GraphError, match=r"^dense d: input 'conv1' has shape \(16, 8, 8\), expected a "
                                         r"\(features,\) tensor$"):
        g.dense(a, np.zeros((4, 16), np.float32), name="d")
    with pytest.raises(GraphError, match=r"^conv2d k: weight must be a finite float array with 4 dimensions, got "
                                         r"int8 \(16, 3, 3, 3\)$"):
        g.conv2d(g.input, np.zeros((16, 3, 3, 3), np.int8), name="k")


def test_unsupported_op_is_named():
    from vta.compiler.graph import Node

    g = Graph("g", (3, 8, 8))
    with pytest.raises(GraphError, match=r"^node lrn1: unsupported op 'lrn'; supported: conv2d, dense"):
        g.add_node(Node("lrn1", "lrn", ("input",), (3, 8, 8)))


def test_calibration_of_the_wrong_shape_is_refused(qg):
    rng = np.random.default_rng(0)
    with pytest.raises(GraphError, match=r"^graph small: calibration data of shape \(4, 8, 8\): expected "
                                         r"\(samples, 1, 8, 8\) with at least one sample$"):
        quantize(small_cnn(rng), np.zeros((4, 8, 8), np.float32))


def test_relu_fuses_and_scales_are_powers_of_two(qg):
    assert qg.nodes["stem"].fused == ("relu1",) and qg.nodes["stem"].bounds == (0, 127)
    assert qg.nodes["body"].fused == () and qg.nodes["body"].bounds == (-128, 127)
    assert "relu1" not in qg.nodes and qg.alias["relu3"] == "res"
    for node in qg.nodes.values():
        if node.op in ("conv2d", "dense"):
            assert node.weight.dtype == np.int8 and node.bias.dtype == np.int64
            assert node.shift == qg.nodes[node.inputs[0]].frac + node.attrs["weight_frac"] - node.frac >= 0


def test_requantization_rounds_to_nearest():
    acc = np.array([5, 6, 7, -5, -6, -7, 8])
    assert cpu.round_shift(acc, 2).tolist() == [1, 2, 2, -1, -1, -2, 2]  # truncation would give 1, 1, 1, -2, ...
    assert cpu.requantize(np.array([1000, -1000]), 2, 0, 127).tolist() == [127, 0]


def test_int8_reference_tracks_the_float_model(qg):
    rng = np.random.default_rng(1)
    g = small_cnn(np.random.default_rng(3))
    from vta.compiler.graph.quantize import float_forward, fuse

    nodes, _, bounds = fuse(g)
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    want = float_forward(nodes, bounds, x)["fc"]
    got = qg.dequantize("fc", qg.reference(x)["fc"])
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()


def test_partition_gives_reasons(qg):
    p = partition(qg)
    assert p["stem"].reason == "3x3 conv, 1 input channels padded to 16 (94% of the GEMM work on zeros) — VTA"
    assert p["body"].reason == "3x3 conv, 32 input channels — VTA"
    assert [n for n, v in p.items() if v.target == "vta"] == ["stem", "down", "body", "fc"]
    assert p["res"].target == "cpu" and "int32" in p["res"].reason


def test_a_layer_the_operator_library_refuses_falls_back_to_the_cpu():
    rng = np.random.default_rng(6)
    g = Graph("big_kernel", (16, 4, 4))
    g.conv2d(g.input, _f(rng, 16, 16, 35, 35, scale=0.01), pad=16, name="wide")  # 35x35 weights overflow the SRAM
    qg = quantize(g, rng.random((2, 16, 4, 4)).astype(np.float32))
    x = rng.random((16, 4, 4)).astype(np.float32)
    with compile_network(qg, "sim") as net:
        p = net.placement["wide"]
        got = net.run_quantized(qg.quantize_input(x))["wide"]
    assert p.target == "cpu" and p.reason.startswith("the operator library refused it (conv2d wide: no tiling fits")
    np.testing.assert_array_equal(got, qg.reference(x)["wide"])


def test_vta_run_is_bit_exact_in_every_tensor(qg, net):
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.random((1, 8, 8)).astype(np.float32)
        want = qg.reference(x)
        got = net.run_quantized(qg.quantize_input(x), keep=True)
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert net.placement["flat"].target == "cpu"  # its input comes from the CPU add


def test_batch_call_gives_dequantized_outputs_and_labels(qg, net):
    x = np.random.default_rng(4).random((5, 1, 8, 8)).astype(np.float32)
    out = net(x)
    ref = qg.reference(x)
    np.testing.assert_array_equal(out["label"], ref["label"])
    np.testing.assert_array_equal(out["fc"], ref["fc"] * np.float32(2.0 ** -qg.nodes["fc"].frac))


def test_repeated_inferences_reuse_everything(qg, net):
    rt = net.runtime
    xq = qg.quantize_input(np.zeros((1, 8, 8), np.float32))
    net.run_quantized(xq)
    buffers, kernels, insns = len(rt.buffers), len(rt.queue.kernels), rt.stats.instructions
    for _ in range(20):
        net.run_quantized(xq)
    assert (len(rt.buffers), len(rt.queue.kernels), rt.stats.instructions) == (buffers, kernels, insns)
    assert all(t.device_s > 0 for n, t in net.profile.items() if n in net.vta)


def test_bad_input_and_closed_network(qg):
    net = compile_network(qg, "sim")
    with pytest.raises(GraphError, match=r"^network small: node input: expected int8 \(1, 1, 8, 8\), got int32 "):
        net.run_quantized(np.zeros((1, 1, 8, 8), np.int32))
    with pytest.raises(GraphError, match=r"^graph small: input of shape \(1, 1, 4, 4\), expected \(1, 8, 8\)"):
        net(np.zeros((4, 4), np.float32)[None, None])
    net.close()
    with pytest.raises(GraphError, match=r"^network small was closed$"):
        net.run_quantized(np.zeros((1, 1, 8, 8), np.int8))


def test_non_int8_weight_is_refused_and_nothing_stays_allocated(qg):
    bad = dict(qg.nodes)
    n = bad["body"]
    bad["body"] = QNode(n.name, n.op, n.inputs, n.shape, n.frac, n.attrs, n.weight.astype(np.int16), n.bias)
    from vta.compiler.graph import QuantizedGraph

    broken = QuantizedGraph(qg.name, bad, qg.input_frac, qg.outputs, qg.alias)
    with Runtime("sim") as rt:
        before = len(rt.buffers)
        with pytest.raises(GraphError, match=r"^conv2d body: weight must be int8, got int16$"):
            compile_network(broken, rt)
        assert len(rt.buffers) == before


def test_a_failure_while_compiling_frees_what_was_allocated(qg, monkeypatch):
    from vta.compiler.graph import network

    params = network._params
    done = []

    def second_fails(node, *args):  # the first VTA node's weights are already on the device by then
        if done:
            raise GraphError("packing failed")
        done.append(node.name)
        return params(node, *args)

    monkeypatch.setattr(network, "_params", second_fails)
    with Runtime("sim") as rt:
        before = len(rt.buffers)
        with pytest.raises(GraphError, match=r"^packing failed$"):
            compile_network(qg, rt)
        assert done == ["stem"] and len(rt.buffers) == before


def test_the_first_inference_captures_the_streams_and_later_ones_replay_them(qg):
    with compile_network(qg, "sim") as net:
        assert all(v.streams is None for v in net.vta.values()) and net.modeled_seconds() == {}
        xq = qg.quantize_input(np.ones((1, 8, 8), np.float32))
        first = net.run_quantized(xq)
        streams = {n: v.streams for n, v in net.vta.items()}
        assert set(net.modeled_seconds()) == {"stem", "down", "body", "fc"}
        again = net.run_quantized(xq)
        assert all(v.streams is streams[n] for n, v in net.vta.items())
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])


def _log_line(data, kernel, stride, pad, knobs, cost, version="0.2"):
    import json

    args = [["TENSOR", list(data), "int8"], ["TENSOR", list(kernel), "int8"], [stride, stride], [pad] * 4, [1, 1],
            "NCHW1n16c", "int32"]
    entities = [[k, "sp", v] if k.startswith("tile") else [k, "ot", v] for k, v in knobs.items()]
    target = "ext_dev -device=vta -model=pynq_1x16_i8w8a32_15_15_18_17"
    if version == "0.1":
        return json.dumps({"i": [target, "conv2d_packed.vta", args, {}, [], {"i": 0, "c": None, "e": entities}],
                           "r": [[cost], 0, 1.0, 0], "v": 0.1})
    return json.dumps({"input": [target, "conv2d_packed.vta", args, {}],
                       "config": {"index": 0, "code_hash": None, "entity": entities},
                       "result": [[cost], 0, 1.0, 0], "version": 0.2})


def test_a_tuning_log_sets_the_knobs_of_the_layers_it_has(qg, tmp_path):
    from vta.compiler.ops import Conv2dConfig, Conv2dWorkload, default_conv2d_config

    base = {"tile_b": [-1, 1], "tile_w": [-1, 4], "tile_ci": [-1, 1], "oc_nthread": 1, "h_nthread": 1}
    slow = dict(base, tile_h=[1, 4], tile_co=[1, 2])
    best = dict(base, tile_h=[-1, 2], tile_co=[2, 1], tile_w=[1, 4])
    down = ((1, 1, 8, 8, 1, 16), (2, 1, 3, 3, 16, 16), 2, 1)
    log = tmp_path / "tuned.log"
    log.write_text("\n".join([_log_line(*down, slow, 0.5), _log_line(*down, best, 0.1, "0.1"),
                              _log_line((1, 1, 9, 9, 1, 16), (1, 1, 3, 3, 16, 16), 1, 1, slow, 0.01)]) + "\n")
    with compile_network(qg, "sim", tuning_log=str(log)) as net:
        assert net.vta["down"].config == Conv2dConfig(tile_h=[2, 2], tile_w=[1, 4], tile_ci=[1, 1], tile_co=[2, 1])
        body = Conv2dWorkload("body", 4, 4, 32, 32, 3, 1, 1)
        assert net.vta["body"].config == default_conv2d_config(body)  # not in the log: the default tiler
        x = np.random.default_rng(5).random((1, 8, 8)).astype(np.float32)
        got = net.run_quantized(qg.quantize_input(x), keep=True)
    for name, want in qg.reference(x).items():
        np.testing.assert_array_equal(got[name], want, err_msg=name)


def test_a_broken_tuning_log_names_the_line(qg, tmp_path):
    log = tmp_path / "bad.log"
    log.write_text('{"input": ["t", "conv2d_packed.vta"]}\n')
    with pytest.raises(GraphError, match=r"^tuning log .*bad.log, line 1: not an AutoTVM record "
                                         r"\(KeyError: 'config'\)$"):
        compile_network(qg, "sim", tuning_log=str(log))


def test_standalone_relu_pooling_and_softmax_head_are_bit_exact():
    rng = np.random.default_rng(8)
    g = Graph("heads", (16, 8, 8))
    h = g.max_pool(g.conv2d(g.input, _f(rng, 24, 16, 3, 3), _f(rng, 24), pad=1, name="conv"), 3, 2, 1, name="pool")
    h = g.flatten(g.global_avg_pool(g.relu(h, name="relu"), name="gap"), name="flat")
    g.output(g.softmax(g.dense(h, _f(rng, 10, 24), _f(rng, 10), name="fc"), name="prob"))
    qg = quantize(g, rng.normal(0, 1, (4, 16, 8, 8)).astype(np.float32))
    assert qg.nodes["relu"].op == "relu" and qg.nodes["relu"].bounds == (0, 127)  # not fusable into a max-pool
    x = rng.normal(0, 1, (2, 16, 8, 8)).astype(np.float32)
    with compile_network(qg, "sim") as net:
        assert [n for n, p in net.placement.items() if p.target == "vta"] == ["conv", "fc"]
        got = net(x)["prob"]
    want = qg.reference(x)["prob"]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)


def test_a_strided_conv_on_few_host_channels_is_folded_space_to_depth():
    rng = np.random.default_rng(9)
    g = Graph("stem", (3, 18, 18))
    h = g.relu(g.conv2d(g.input, _f(rng, 16, 3, 7, 7), _f(rng, 16), stride=2, pad=3, name="stem"))
    g.conv2d(h, _f(rng, 16, 16, 3, 3), pad=1, name="next")
    qg = quantize(g, rng.normal(0, 1, (3, 3, 18, 18)).astype(np.float32))
    x = rng.normal(0, 1, (3, 18, 18)).astype(np.float32)
    with compile_network(qg, "sim") as net:
        reason = net.placement["stem"].reason
        params = {p.name: p.shape for p in net.vta["stem"].program.params}
        assert set(net.folded) == {"input"} and net.folded["input"][:2] == (2, 3)  # "next" reads a device tensor
        got = net.run_quantized(qg.quantize_input(x), keep=True)
    assert reason == ("7x7 conv, 3 input channels padded to 16 (81% of the GEMM work on zeros); space-to-depth by 2 "
                      "on the host: a 4x4 conv on 12 channels — VTA")
    assert params["kernel"] == (1, 1, 4, 4, 16, 16) and params["data"] == (1, 1, 12, 12, 1, 16)
    for name, want in qg.reference(x).items():
        np.testing.assert_array_equal(got[name], want, err_msg=name)
