"""ONNX import: a float CNN as PyTorch exports it -> a :class:`Graph` (the optional ``[onnx]`` extra).

Supported: Conv (square kernel, symmetric padding, no groups or dilation), BatchNormalization
folded into the Conv before it, Relu, Clip, MaxPool, Add, GlobalAveragePool, Flatten, Gemm,
MatMul (a following Add of a constant becomes its bias), Softmax and ArgMax heads. Anything
else is refused with the node's name and op type, before any tensor is converted.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vta.compiler.graph.graph import Graph, GraphError
from vta.errors import VTAError

__all__ = ["SUPPORTED", "import_onnx"]

SUPPORTED = ("Conv", "BatchNormalization", "Relu", "Clip", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm",
             "MatMul", "Softmax", "ArgMax")


def _onnx() -> Any:
    try:
        import onnx
    except ModuleNotFoundError:
        raise VTAError('ONNX import needs the onnx package: pip install ".[onnx]" from the pynq-vta checkout') from None
    return onnx


def _load(model: str | os.PathLike[str] | Any) -> Any:
    onnx = _onnx()
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        m = onnx.load(os.fspath(model))
    except OSError as e:
        raise GraphError(f"{os.fspath(model)}: cannot read: {e.strerror}") from None
    except Exception as e:  # protobuf's DecodeError (and friends) for bytes that are not a model
        raise GraphError(f"{os.fspath(model)}: not an ONNX model ({type(e).__name__}: {e})") from None
    if not m.graph.node:
        raise GraphError(f"{os.fspath(model)}: not an ONNX model (no graph nodes)")
    return m


def _attrs(node: Any) -> dict[str, Any]:
    onnx = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _square(where: str, attrs: dict[str, Any]) -> tuple[int, int, int]:
    """(kernel, stride, pad) from ONNX attributes, refusing what the graph cannot express."""
    k = list(attrs.get("kernel_shape", []))
    s = list(attrs.get("strides", [1, 1]))
    p = list(attrs.get("pads", [0, 0, 0, 0]))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise GraphError(f"{where}: auto_pad is not supported; export with explicit pads")
    if len(set(s)) != 1 or len(set(p)) != 1 or (k and len(set(k)) != 1):
        raise GraphError(f"{where}: kernel {k}, strides {s}, pads {p}: only square kernels with equal strides and "
                         "symmetric, equal padding are supported")
    if any(d != 1 for d in attrs.get("dilations", [1])) or attrs.get("group", 1) != 1:
        raise GraphError(f"{where}: dilation and grouped convolutions are not supported")
    return (k[0] if k else 0), s[0], p[0]


def import_onnx(model: str | os.PathLike[str] | Any, name: str | None = None) -> Graph:
    """Build the float graph of an ONNX model (path or ``ModelProto``).

    Raises
    ------
    GraphError
        Not an ONNX file, or a node that cannot be imported (naming the node and its op type).
    VTAError
        The onnx package is not installed.
    """
    m = _load(model)
    from onnx import numpy_helper

    g = m.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"])
    names = [n.name or f"{n.op_type.lower()}{i}" for i, n in enumerate(g.node)]
    for n, nm in zip(g.node, names):
        if n.op_type not in SUPPORTED and n.op_type != "Constant":
            raise GraphError(f"ONNX node {nm} ({n.op_type}): unsupported operator; supported: {', '.join(SUPPORTED)}")
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise GraphError(f"ONNX graph: expected one data input, got {[i.name for i in inputs]}")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or min(dims[1:]) < 1:
        raise GraphError(f"ONNX input {inputs[0].name}: shape {dims}: expected (N, C, H, W) with fixed C, H, W")
    graph = Graph(name or g.name or "onnx", dims[1:])
    readers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    tensor = {inputs[0].name: graph.input}
    skip: set[int] = set()
    for idx, (n, nm) in enumerate(zip(g.node, names)):  # ONNX lists nodes in topological order
        if idx in skip or n.op_type == "Constant":
            continue
        where = f"ONNX node {nm} ({n.op_type})"
        try:
            out = _convert(graph, n, nm, where, tensor, consts, g.node, readers, skip)
        except GraphError as e:
            if str(e).startswith(where):
                raise
            raise GraphError(f"{where}: {e}") from None
        tensor[n.output[0]] = out
    outs = [tensor[o.name] for o in g.output if o.name in tensor]
    if outs:
        graph.output(*outs)
    return graph


def _arg(tensor: dict[str, str], name: str, where: str) -> str:
    if name not in tensor:
        raise GraphError(f"{where}: input {name!r} is neither the graph input nor an imported node's output")
    return tensor[name]


def _convert(graph: Graph, n: Any, nm: str, where: str, tensor: dict[str, str], consts: dict[str, np.ndarray],
             nodes: Any, readers: dict[str, int], skip: set[int]) -> str:
    """Add the graph node for ONNX node ``n`` (folding a BatchNormalization or bias Add after it)."""
    a = _attrs(n)
    op = n.op_type
    x = n.input[0]
    if op == "Conv":
        _, stride, pad = _square(where, a)
        w = consts[n.input[1]].astype(np.float32)
        b = consts[n.input[2]].astype(np.float32) if len(n.input) > 2 and n.input[2] else None
        nxt = [j for j, m in enumerate(nodes) if n.output[0] in m.input]
        if len(nxt) == 1 and nodes[nxt[0]].op_type == "BatchNormalization" and readers.get(n.output[0]) == 1:
            bn = nodes[nxt[0]]
            if _attrs(bn).get("training_mode", 0):
                raise GraphError(f"{where}: BatchNormalization {bn.name} is in training mode; export in eval mode")
            gamma, beta, mean, var = (consts[i].astype(np.float64) for i in bn.input[1:5])
            scale = gamma / np.sqrt(var + _attrs(bn).get("epsilon", 1e-5))
            w = (w * scale[:, None, None, None]).astype(np.float32)
            b = (((b if b is not None else 0.0) - mean) * scale + beta).astype(np.float32)
            skip.add(nxt[0])
            tensor[bn.output[0]] = nm
        return graph.conv2d(_arg(tensor, x, where), w, b, stride, pad, nm)
    if op == "BatchNormalization":
        raise GraphError(f"{where}: only a BatchNormalization right after a Conv (its only reader) can be folded")
    if op == "Relu":
        return graph.relu(_arg(tensor, x, where), nm)
    if op == "Clip":
        lo = consts[n.input[1]] if len(n.input) > 1 and n.input[1] else a.get("min", -np.inf)
        hi = consts[n.input[2]] if len(n.input) > 2 and n.input[2] else a.get("max", np.inf)
        return graph.clip(_arg(tensor, x, where), float(lo), float(hi), nm)
    if op == "MaxPool":
        k, stride, pad = _square(where, a)
        return graph.max_pool(_arg(tensor, x, where), k, stride, pad, nm)
    if op == "GlobalAveragePool":
        return graph.global_avg_pool(_arg(tensor, x, where), nm)
    if op == "Flatten":
        if a.get("axis", 1) != 1:
            raise GraphError(f"{where}: axis={a['axis']}: only axis=1 is supported")
        return graph.flatten(_arg(tensor, x, where), nm)
    if op == "Gemm":
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            raise GraphError(f"{where}: only alpha=1, beta=1, transA=0 are supported")
        w = consts[n.input[1]].astype(np.float32)
        w = w if a.get("transB", 0) else w.T
        b = consts[n.input[2]].astype(np.float32).reshape(-1) if len(n.input) > 2 and n.input[2] else None
        return graph.dense(_arg(tensor, x, where), np.ascontiguousarray(w), b, nm)
    if op == "MatMul":
        if n.input[1] not in consts:
            raise GraphError(f"{where}: the second operand must be a constant weight")
        w = np.ascontiguousarray(consts[n.input[1]].astype(np.float32).T)
        nxt = [j for j, m in enumerate(nodes) if n.output[0] in m.input]
        b = None
        if len(nxt) == 1 and nodes[nxt[0]].op_type == "Add":
            other = [i for i in nodes[nxt[0]].input if i != n.output[0]]
            if other and other[0] in consts:
                b = consts[other[0]].astype(np.float32).reshape(-1)
                skip.add(nxt[0])
                tensor[nodes[nxt[0]].output[0]] = nm
        return graph.dense(_arg(tensor, x, where), w, b, nm)
    if op == "Add":
        if any(i in consts for i in n.input):
            raise GraphError(f"{where}: adding a constant is only supported as the bias of a MatMul")
        return graph.add(_arg(tensor, n.input[0], where), _arg(tensor, n.input[1], where), nm)
    if op == "Softmax":
        return graph.softmax(_arg(tensor, x, where), nm)
    return graph.argmax(_arg(tensor, x, where), nm)
