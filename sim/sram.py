"""On-chip buffers of the simulated device, stored in the form the numpy kernels want.

INP and WGT hold int8 values in float32 arrays (exact), so GEMMs go straight to BLAS;
WGT entries are kept transposed (in-channel major) so a stack of them is a ready matrix.
ACC holds int32 and wraps like the hardware. The contents persist across runs, as on the
device (spec §3.8).
"""

from __future__ import annotations

import numpy as np

from vta.config import Environment

__all__ = ["Sram"]


class Sram:
    def __init__(self, env: Environment):
        b, bi, bo = env.BATCH, env.BLOCK_IN, env.BLOCK_OUT
        self.uop = np.zeros(env.UOP_BUFF_DEPTH, dtype=np.uint32)
        self.inp = np.zeros((env.INP_BUFF_DEPTH, b, bi), dtype=np.float32)
        self.wgt_t = np.zeros((env.WGT_BUFF_DEPTH, bi, bo), dtype=np.float32)
        self.acc = np.zeros((env.ACC_BUFF_DEPTH, b, bo), dtype=np.int32)
        # The bitstream's 8-bit output buffer (HLS out_mem, spec §3.4-3.5), which STORE reads there;
        # only runs with fidelity="pynq", hw_exec=True maintain it (vta.sim.hardware).
        self.out = np.zeros((env.ACC_BUFF_DEPTH, b, bo), dtype=np.int8)
        self.depths = {"uop": env.UOP_BUFF_DEPTH, "inp": env.INP_BUFF_DEPTH,
                       "wgt": env.WGT_BUFF_DEPTH, "acc": env.ACC_BUFF_DEPTH}
