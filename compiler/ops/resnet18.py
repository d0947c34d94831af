"""ResNet-18's ten VTA conv2d layers C2-C11 and their tuned template knobs (spec §7.3).

The knobs come from TVM's TopHub log ``vta_v0.10.log`` for ``pynq_1x16_i8w8a32_15_15_18_17``
(section "Resnet-18"); only the knob values are trusted, not the logged times (spec §9.10).
C1 (the 7x7 stem on 3 channels) and the final dense layer run on the CPU in TVM's deployment.
"""

from __future__ import annotations

import numpy as np

from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.errors import ScheduleError

__all__ = ["RESNET18", "TUNED", "layer", "random_inputs"]

RESNET18: dict[str, Conv2dWorkload] = {wl.name: wl for wl in (
    Conv2dWorkload("C2", 56, 56, 64, 64, 3, 1, 1),
    Conv2dWorkload("C3", 56, 56, 64, 128, 3, 2, 1),
    Conv2dWorkload("C4", 56, 56, 64, 128, 1, 2, 0),
    Conv2dWorkload("C5", 28, 28, 128, 128, 3, 1, 1),
    Conv2dWorkload("C6", 28, 28, 128, 256, 3, 2, 1),
    Conv2dWorkload("C7", 28, 28, 128, 256, 1, 2, 0),
    Conv2dWorkload("C8", 14, 14, 256, 256, 3, 1, 1),
    Conv2dWorkload("C9", 14, 14, 256, 512, 3, 2, 1),
    Conv2dWorkload("C10", 14, 14, 256, 512, 1, 2, 0),
    Conv2dWorkload("C11", 7, 7, 512, 512, 3, 1, 1),
)}


def _cfg(h: list[int], w: list[int], ci: list[int], co: list[int], oc_t: int, h_t: int) -> Conv2dConfig:
    return Conv2dConfig(tile_h=h, tile_w=w, tile_ci=ci, tile_co=co, oc_nthread=oc_t, h_nthread=h_t)


TUNED: dict[str, Conv2dConfig] = {
    "C2": _cfg([7, 8], [1, 56], [4, 1], [2, 2], 2, 1),
    "C3": _cfg([4, 7], [1, 28], [4, 1], [2, 4], 2, 1),
    "C4": _cfg([4, 7], [1, 28], [4, 1], [2, 4], 1, 2),
    "C5": _cfg([2, 14], [1, 28], [8, 1], [4, 2], 1, 2),
    "C6": _cfg([1, 14], [1, 14], [8, 1], [4, 4], 2, 1),
    "C7": _cfg([2, 7], [1, 14], [8, 1], [2, 8], 2, 1),
    "C8": _cfg([1, 14], [1, 14], [16, 1], [4, 4], 2, 1),
    "C9": _cfg([1, 7], [1, 7], [16, 1], [2, 16], 2, 1),
    "C10": _cfg([1, 7], [1, 7], [16, 1], [2, 16], 2, 1),
    "C11": _cfg([1, 7], [1, 7], [32, 1], [2, 16], 2, 1),
}


def layer(name: str) -> Conv2dWorkload:
    """The workload called ``name`` ("C2" ... "C11").

    Raises
    ------
    ScheduleError
        If there is no such layer.

    Examples
    --------
    >>> layer("C9").out_h
    7
    """
    if name not in RESNET18:
        raise ScheduleError(f"ResNet-18 has no VTA layer {name!r}; layers: {', '.join(RESNET18)}")
    return RESNET18[name]


def random_inputs(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random packed int8 (data, kernel) for layer ``name``.

    Examples
    --------
    >>> data, kernel = random_inputs("C11", np.random.default_rng(0))
    >>> data.shape, kernel.shape
    ((1, 32, 7, 7, 1, 16), (32, 32, 3, 3, 16, 16))
    """
    return layer(name).random_inputs(rng)
