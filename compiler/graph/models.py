"""The networks this stack ships: ResNet-18 with seeded weights, and a small CNN trained on the digits data set.

Nothing is downloaded. ResNet-18 is the shape users benchmark (224x224x3, 1000 classes) with
deterministic He-initialised weights, so it checks bit-exactness and speed but classifies
nothing. The digits CNN was trained by ``python -m vta.compiler.graph.train_digits`` on
scikit-learn's copy of the UCI handwritten digits (8x8 images); its float weights, the
held-out split and a calibration batch ship in ``digits_cnn.npz`` (about 70 KB). ResNet-18's
conv layers C2-C11 have tuned knobs in ``resnet18_tuned.log`` (AutoTVM lines): the best our tuner
found with the calibrated performance model as measurer (``benchmarks/tuning.py`` writes it).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from vta.compiler.graph.graph import Graph

__all__ = ["DIGITS_FILE", "RESNET18_TUNING_LOG", "digits_cnn", "digits_data", "digits_graph", "resnet18",
           "resnet18_calibration"]

DIGITS_FILE = "digits_cnn.npz"
RESNET18_TUNING_LOG = Path(__file__).with_name("resnet18_tuned.log")


def _he(rng: np.random.Generator, *shape: int, gain: float = 1.0) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    return (rng.normal(0.0, gain * np.sqrt(2.0 / fan_in), shape)).astype(np.float32)


def _bias(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0.0, 0.01, n).astype(np.float32)


def _block(g: Graph, rng: np.random.Generator, x: str, cin: int, cout: int, stride: int, name: str) -> str:
    h = g.relu(g.conv2d(x, _he(rng, cout, cin, 3, 3), _bias(rng, cout), stride, 1, f"{name}.conv1"), f"{name}.relu1")
    h = g.conv2d(h, _he(rng, cout, cout, 3, 3, gain=0.5), _bias(rng, cout), 1, 1, f"{name}.conv2")
    skip = x
    if stride != 1 or cin != cout:
        skip = g.conv2d(x, _he(rng, cout, cin, 1, 1), _bias(rng, cout), stride, 0, f"{name}.down")
    return g.relu(g.add(h, skip, f"{name}.add"), f"{name}.relu2")


def resnet18(seed: int = 0, classes: int = 1000, size: int = 224) -> Graph:
    """ResNet-18 (He et al.) without batch norm (folded away), seeded weights; outputs logits and the label."""
    rng = np.random.default_rng(seed)
    g = Graph("resnet18", (3, size, size))
    h = g.relu(g.conv2d(g.input, _he(rng, 64, 3, 7, 7), _bias(rng, 64), 2, 3, "conv1"), "relu1")
    h = g.max_pool(h, 3, 2, 1, "maxpool")
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for blk in range(2):
            stride = 2 if stage > 1 and blk == 0 else 1
            h = _block(g, rng, h, cin, cout, stride, f"layer{stage}.{blk}")
            cin = cout
    h = g.flatten(g.global_avg_pool(h, "avgpool"), "flatten")
    logits = g.dense(h, _he(rng, classes, 512, gain=0.5), _bias(rng, classes), "fc")
    g.output(logits, g.argmax(logits, "label"))
    return g


def resnet18_calibration(samples: int = 2, seed: int = 1, size: int = 224) -> np.ndarray:
    """Seeded ImageNet-like inputs (standard normal per pixel, as after the usual normalisation)."""
    return np.random.default_rng(seed).normal(0.0, 1.0, (samples, 3, size, size)).astype(np.float32)


def digits_graph(params: dict[str, np.ndarray]) -> Graph:
    """The digits CNN: 1->16 conv, 16->32 stride-2 conv, dense 512->10 (all on VTA), argmax."""
    g = Graph("digits", (1, 8, 8))
    h = g.relu(g.conv2d(g.input, params["conv1_w"], params["conv1_b"], 1, 1, "conv1"), "relu1")
    h = g.relu(g.conv2d(h, params["conv2_w"], params["conv2_b"], 2, 1, "conv2"), "relu2")
    logits = g.dense(g.flatten(h, "flatten"), params["fc_w"], params["fc_b"], "fc")
    g.output(logits, g.argmax(logits, "label"))
    return g


def digits_data() -> dict[str, np.ndarray]:
    """The shipped file: float weights, ``test_x`` (N, 1, 8, 8) in [0, 1], ``test_y``, ``calib_x``."""
    with resources.files("vta.compiler.graph").joinpath(DIGITS_FILE).open("rb") as f, np.load(f) as z:
        return {k: z[k] for k in z.files}


def digits_cnn() -> Graph:
    """The trained digits CNN as a float graph."""
    return digits_graph(digits_data())
