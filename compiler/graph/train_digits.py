"""Train the digits CNN (float, numpy) and write ``digits_cnn.npz``: ``python -m vta.compiler.graph.train_digits``.

Needs scikit-learn for the data set (``pip install ".[data]"`` from the pynq-vta checkout). The
split is sklearn's ``train_test_split`` with 20 % held out, stratified, ``random_state=0``;
training is Adam on the cross-entropy, mini-batches of 64, seeded, about a minute on one core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vta.compiler.graph import cpu
from vta.compiler.graph.models import DIGITS_FILE
from vta.errors import VTAError

_SHAPES = {"conv1_w": (16, 1, 3, 3), "conv1_b": (16,), "conv2_w": (32, 16, 3, 3), "conv2_b": (32,),
           "fc_w": (10, 512), "fc_b": (10,)}


def load_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y); images scaled to [0, 1], shape (N, 1, 8, 8)."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ModuleNotFoundError:
        raise VTAError('the digits data set needs scikit-learn: pip install ".[data]" from the pynq-vta '
                       "checkout") from None
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    tx, vx, ty, vy = train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=seed)
    return tx, ty, vx, vy


def _col2im(dcols: np.ndarray, shape: tuple[int, ...], k: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    d = dcols.reshape(n, oh, ow, c, k, k)
    out = np.zeros((n, c, h + 2 * pad, w + 2 * pad), np.float32)
    for di in range(k):
        for dj in range(k):
            out[:, :, di:di + stride * oh:stride, dj:dj + stride * ow:stride] += d[:, :, :, :, di, dj].transpose(
                0, 3, 1, 2)
    return out[:, :, pad:pad + h, pad:pad + w]


def _forward_backward(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    n = len(x)
    c1, oh1, ow1 = cpu.im2col(x, 3, 1, 1)
    z1 = (c1 @ p["conv1_w"].reshape(16, -1).T + p["conv1_b"]).reshape(n, oh1, ow1, 16).transpose(0, 3, 1, 2)
    a1 = np.maximum(z1, 0)
    c2, oh2, ow2 = cpu.im2col(np.ascontiguousarray(a1), 3, 2, 1)
    z2 = (c2 @ p["conv2_w"].reshape(32, -1).T + p["conv2_b"]).reshape(n, oh2, ow2, 32).transpose(0, 3, 1, 2)
    a2 = np.maximum(z2, 0)
    f = a2.reshape(n, -1)
    logits = f @ p["fc_w"].T + p["fc_b"]
    prob = cpu.softmax(logits.astype(np.float64)).astype(np.float32)
    loss = float(-np.log(prob[np.arange(n), y] + 1e-12).mean())
    dl = prob
    dl[np.arange(n), y] -= 1
    dl /= n
    g = {"fc_w": dl.T @ f, "fc_b": dl.sum(0)}
    dz2 = ((dl @ p["fc_w"]).reshape(a2.shape) * (z2 > 0)).transpose(0, 2, 3, 1).reshape(-1, 32)
    g["conv2_w"] = (dz2.T @ c2).reshape(_SHAPES["conv2_w"])
    g["conv2_b"] = dz2.sum(0)
    da1 = _col2im(dz2 @ p["conv2_w"].reshape(32, -1), a1.shape, 3, 2, 1)
    dz1 = (da1 * (z1 > 0)).transpose(0, 2, 3, 1).reshape(-1, 16)
    g["conv1_w"] = (dz1.T @ c1).reshape(_SHAPES["conv1_w"])
    g["conv1_b"] = dz1.sum(0)
    return loss, g


def predict(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Float labels (argmax of the logits)."""
    a1 = np.maximum(cpu.conv2d_float(x, p["conv1_w"], p["conv1_b"], 1, 1), 0)
    a2 = np.maximum(cpu.conv2d_float(a1, p["conv2_w"], p["conv2_b"], 2, 1), 0)
    return (a2.reshape(len(x), -1) @ p["fc_w"].T + p["fc_b"]).argmax(1)


def train(epochs: int = 40, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Train; returns (float parameters, data to ship: test split and calibration batch)."""
    tx, ty, vx, vy = load_split()
    rng = np.random.default_rng(seed)
    p = {k: (rng.normal(0, np.sqrt(2.0 / np.prod(s[1:])), s) if len(s) > 1 else np.zeros(s)).astype(np.float32)
         for k, s in _SHAPES.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    step, lr = 0, 3e-3
    for epoch in range(epochs):
        order = rng.permutation(len(tx))
        for i in range(0, len(tx), 64):
            idx = order[i:i + 64]
            _, g = _forward_backward(p, tx[idx], ty[idx])
            step += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                mh, vh = m[k] / (1 - 0.9 ** step), v[k] / (1 - 0.999 ** step)
                p[k] -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        if epoch == epochs * 3 // 4:
            lr /= 10
    data = {"test_x": vx, "test_y": vy.astype(np.int64), "calib_x": tx[:64]}
    return p, data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name(DIGITS_FILE)), help="where to write the .npz")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args(argv)
    p, data = train(args.epochs)
    acc = float((predict(p, data["test_x"]) == data["test_y"]).mean())
    np.savez_compressed(args.out, **p, **data)
    print(f"float accuracy on the {len(data['test_y'])} held-out digits: {100 * acc:.2f} %; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
