"""Where each node of a quantized network runs, and why.

The rule (docs/network.md gives the performance-model figures behind it):

* conv2d and dense go to VTA's GEMM core whenever the operator library compiles them, channel
  padding included. Padding costs: ResNet-18's 3-channel stem padded to 16 channels spends 13/16
  of its GEMM work on zeros, yet the performance model puts it at 29 ms on the Pynq-Z1, the order
  of what numpy's float32 im2col + BLAS needs for it on a fast x86 core and a fraction of what the
  board's Cortex-A9 would need (and :mod:`.space_to_depth` removes most of that padding for the
  stem). A layer the library refuses (no tiling fits the SRAMs) falls back to the CPU
  with the library's reason.
* add, max-pool, standalone relu/clip and global average pool run on the CPU: VTA's ALU works on
  the accumulator, which loads only int32 from DRAM (the Pynq bitstream has no 8-bit
  accumulator load) while every VTA output is int8, and the ALU has no divide. They read the
  packed tensors as they are (element-wise and spatial operators do not care about the
  layout), so they add no layout change.
* flatten is a reshape: a VTA dense after it reads the packed tensor directly, its weights
  permuted at compile time; softmax and argmax are heads on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.compiler.graph.quantize import QuantizedGraph
from vta.config import get_env

__all__ = ["Placement", "partition"]


@dataclass(frozen=True)
class Placement:
    """``target`` is "vta" or "cpu"; ``reason`` says why in one line."""

    node: str
    target: str
    reason: str


def _gemm(qg: QuantizedGraph, name: str) -> Placement:
    node = qg.nodes[name]
    block = get_env().BLOCK_IN
    n = qg.nodes[node.inputs[0]].shape[0]
    padded = -(-n // block) * block
    what = "input channels" if node.op == "conv2d" else "input features"
    kind = f"{node.attrs['kernel']}x{node.attrs['kernel']} conv" if node.op == "conv2d" else "dense"
    if padded == n:
        return Placement(name, "vta", f"{kind}, {n} {what} — VTA")
    zeros = round(100 * (padded - n) / padded)
    return Placement(name, "vta", f"{kind}, {n} {what} padded to {padded} ({zeros}% of the GEMM work on zeros) — VTA")


_CPU_REASONS = {
    "input": "float input quantized to int8 on the host",
    "add": "int8 operands, and the ALU loads only int32 into the accumulator — CPU, packed layout as is",
    "relu": "int8 operand, and the ALU loads only int32 into the accumulator — CPU",
    "clip": "int8 operand, and the ALU loads only int32 into the accumulator — CPU",
    "max_pool": "int8 operand, and the ALU loads only int32 into the accumulator — CPU, packed layout as is",
    "global_avg_pool": "a mean needs a divide, which the ALU lacks — CPU, packed layout as is",
    "flatten": "a reshape on the host (no work)",
    "softmax": "a float head on the dequantized logits — CPU",
    "argmax": "a head on the logits — CPU",
}


def partition(qg: QuantizedGraph, refused: dict[str, str] | None = None) -> dict[str, Placement]:
    """One :class:`Placement` per node, by the rule of this module; ``refused`` maps nodes the
    operator library could not compile to its reason (they fall back to the CPU).

    Examples
    --------
    >>> partition(qg)["conv1"].reason        # doctest: +SKIP
    '3x3 conv, 1 input channels padded to 16 (94% of the GEMM work on zeros) — VTA'
    """
    out: dict[str, Placement] = {}
    for name, node in qg.nodes.items():
        if refused and name in refused:
            out[name] = Placement(name, "cpu", f"the operator library refused it ({refused[name]}) — CPU")
        elif node.op in ("conv2d", "dense"):
            out[name] = _gemm(qg, name)
        else:
            out[name] = Placement(name, "cpu", _CPU_REASONS[node.op])
    for name, node in qg.nodes.items():
        readers = [n for n in qg.nodes.values() if name in n.inputs]
        if node.op == "flatten" and out[node.inputs[0]].target == "vta" and readers and all(
                out[r.name].target == "vta" for r in readers):
            out[name] = Placement(name, "vta", "a reshape of the packed tensor in device memory: the dense weights "
                                               "are permuted to read it as it is — no work")
    return out
