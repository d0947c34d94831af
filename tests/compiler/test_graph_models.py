"""The shipped networks: the trained digits CNN (accuracy, bit-exact on every backend) and ResNet-18."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from vta.compiler.graph import compile_network, quantize
from vta.compiler.graph.models import digits_cnn, digits_data, resnet18, resnet18_calibration
from vta.compiler.graph.train_digits import predict
from vta.runtime import Runtime


@pytest.fixture(scope="module")
def digits():
    d = digits_data()
    return d, quantize(digits_cnn(), d["calib_x"])


def test_digits_vta_equals_int8_cpu_and_int8_is_within_a_point_of_float(digits):
    d, qg = digits
    x, y = d["test_x"], d["test_y"]
    float_acc = (predict(d, x) == y).mean()
    ref = qg.reference(x)
    with compile_network(qg, "sim") as net:
        got = net(x)
    np.testing.assert_array_equal(got["label"], ref["label"])
    np.testing.assert_array_equal(got["fc"], qg.dequantize("fc", ref["fc"]))
    int8_acc = (ref["label"] == y).mean()
    assert len(y) == 360 and float_acc > 0.95
    assert abs(int8_acc - float_acc) <= 0.01


def test_digits_placement_puts_every_gemm_on_vta(digits):
    _, qg = digits
    with compile_network(qg, "sim") as net:
        where = {n: p.target for n, p in net.placement.items()}
    assert where == {"input": "cpu", "conv1": "vta", "conv2": "vta", "flatten": "vta", "fc": "vta", "label": "cpu"}


def test_digits_bit_exact_through_the_emulated_board(digits, board):
    from vta.runtime.backends.board import BoardBackend

    d, qg = digits
    x = d["test_x"][:20]
    with Runtime(BoardBackend(emulator=board, timeout_s=10.0)) as rt, compile_network(qg, rt) as net:
        for i in range(len(x)):
            got = net.run_quantized(qg.quantize_input(x[i]), keep=True)
            want = qg.reference(x[i])
            for name in want:
                np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        assert net.modeled_seconds() == {}  # no timing model on a board: times are measured


def _soak(qg, x, n: int) -> None:
    with compile_network(qg, "sim") as net:
        rt = net.runtime
        xq = qg.quantize_input(x)
        for _ in range(5):
            net.run_quantized(xq)
        state = (len(rt.buffers), sum(b.nbytes for b in rt.buffers), len(rt.queue.kernels), rt.stats.instructions)
        tracemalloc.start()
        for _ in range(100):  # traced warm-up: the interpreter's free lists fill here, not in the measured loop
            net.run_quantized(xq)
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            net.run_quantized(xq)
        grown = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        after = (len(rt.buffers), sum(b.nbytes for b in rt.buffers), len(rt.queue.kernels), rt.stats.instructions)
    assert after == state
    assert grown < 64 * 1024, f"host memory grew by {grown} bytes over {n} inferences"


def test_repeated_digits_inferences_do_not_grow_anything(digits):
    d, qg = digits
    _soak(qg, d["test_x"][0], 100)


@pytest.mark.slow
def test_a_thousand_digits_inferences_do_not_grow_anything(digits):
    d, qg = digits
    _soak(qg, d["test_x"][0], 1000)


@pytest.fixture(scope="module")
def resnet():
    return quantize(resnet18(), resnet18_calibration())


def _check_resnet(qg, backend) -> None:
    x = resnet18_calibration(1, seed=5)[0]
    want = qg.reference(x)
    with compile_network(qg, backend) as net:
        got = net.run_quantized(qg.quantize_input(x), keep=True)
        vta = {n for n, p in net.placement.items() if p.target == "vta"}
    assert len([n for n in vta if qg.nodes[n].op == "conv2d"]) == 20 and "fc" in vta
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.slow
def test_resnet18_is_bit_exact_on_the_simulator(resnet):
    _check_resnet(resnet, "sim")


@pytest.mark.slow
def test_resnet18_is_bit_exact_through_the_emulated_board(resnet, board):
    from vta.runtime.backends.board import BoardBackend

    with Runtime(BoardBackend(emulator=board, timeout_s=60.0)) as rt:
        _check_resnet(resnet, rt)


def test_consecutive_vta_nodes_keep_their_tensors_in_device_memory(digits, monkeypatch):
    from vta.runtime import DeviceBuffer

    d, qg = digits
    reads, writes = [], []
    with compile_network(qg, "sim") as net:
        xq = qg.quantize_input(d["test_x"][0])
        net.run_quantized(xq)  # the first inference captures the streams (copies them to buffers of their own)
        copy_to, copy_from = DeviceBuffer.copy_to, DeviceBuffer.copy_from
        monkeypatch.setattr(DeviceBuffer, "copy_to", lambda self, arr=None: reads.append(self) or copy_to(self, arr))
        monkeypatch.setattr(DeviceBuffer, "copy_from", lambda self, arr: writes.append(self) or copy_from(self, arr))
        net.run_quantized(xq)
        # the input goes to the device once; conv1 -> conv2 -> flatten -> fc stay there; only the logits come back
        assert writes == [net.device["input"]] and reads == [net.device["fc"]]
