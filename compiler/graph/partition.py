"""Where each node of a quantized network runs, and why.

The rule (docs/network.md explains the measurements behind it):

* conv2d and dense go to VTA's GEMM core when at least half of the padded reduction is real
  data: channels are padded to the 16-wide block, so a 3-channel input (ResNet-18's stem)
  would spend 13/16 of every GEMM on zeros; those layers stay on the CPU. A layer the operator
  library refuses (no tiling fits the SRAMs) also falls back, with the library's reason.
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

__all__ = ["MIN_USEFUL", "Placement", "partition"]

MIN_USEFUL = 0.5  # the least fraction of real (unpadded) input channels that goes to VTA


@dataclass(frozen=True)
class Placement:
    """``target`` is "vta" or "cpu"; ``reason`` says why in one line."""

    node: str
    target: str
    reason: str


def _gemm(qg: QuantizedGraph, name: str) -> Placement:
    node = qg.nodes[name]
    block = get_env().BLOCK_IN
    inp = qg.nodes[node.inputs[0]].shape
    n = inp[0]
    padded = -(-n // block) * block
    what = "input channels" if node.op == "conv2d" else "input features"
    if n / padded < MIN_USEFUL:
        waste = round(100 * (padded - n) / padded)
        return Placement(name, "cpu", f"{n} {what} padded to {padded}: {waste}% of the GEMM work would multiply "
                                      "zeros — CPU")
    pad = f" padded to {padded}" if padded != n else ""
    kind = f"{node.attrs['kernel']}x{node.attrs['kernel']} conv" if node.op == "conv2d" else "dense"
    return Placement(name, "vta", f"{kind}, {n} {what}{pad} — VTA")


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
    '1 input channels padded to 16: 94% of the GEMM work would multiply zeros — CPU'
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
