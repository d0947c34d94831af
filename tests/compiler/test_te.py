"""te: building expressions, dtype inference and the errors that name the expression."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler import te
from vta.compiler.interp import evaluate
from vta.errors import ScheduleError


def test_compute_names_axes_after_lambda_arguments():
    ta = te.placeholder((4, 16), "int8", "A")
    tb = te.compute((4, 16), lambda row, col: ta[row, col].astype("int32") << 2, "B")
    assert [v.name for v in tb.op.axis] == ["row", "col"]
    assert tb.dtype == "int32"
    assert str(tb.op.body) == "(int32(A[row, col]) << 2)"


def test_sum_and_reduce_axes():
    ta = te.placeholder((4, 16), "int8", "A")
    k = te.reduce_axis((0, 16), "k")
    tb = te.compute((4,), lambda i: te.sum(ta[i, k].astype("int32"), axis=k), "B")
    assert tb.op.reduce_axis == (k,)
    a = np.arange(64, dtype=np.int8).reshape(4, 16)
    np.testing.assert_array_equal(evaluate(tb, {ta: a}), a.astype(np.int64).sum(1))


def test_clip_is_min_then_max_and_evaluates():
    ta = te.placeholder((8,), "int32", "A")
    tb = te.compute((8,), lambda i: te.clip(ta[i], -3, 5), "B")
    assert str(tb.op.body) == "max(min(A[i], 5), -3)"
    a = np.arange(-8, 8, 2, dtype=np.int32)
    np.testing.assert_array_equal(evaluate(tb, {ta: a}), np.clip(a, -3, 5))


def test_cast_narrowing_wraps_like_store():
    ta = te.placeholder((3,), "int32", "A")
    tb = te.compute((3,), lambda i: ta[i].astype("int8"), "B")
    np.testing.assert_array_equal(evaluate(tb, {ta: np.array([127, 128, -129], np.int32)}), [127, -128, 127])


def test_pad_zero_fills_and_records_widths():
    ta = te.placeholder((2, 3), "int8", "A")
    tp = te.pad(ta, (1, 0), (0, 2))
    assert tp.shape == (3, 5) and tp.op.attr("pad_before") == (1, 0) and tp.op.attr("pad_after") == (0, 2)
    a = np.arange(1, 7, dtype=np.int8).reshape(2, 3)
    np.testing.assert_array_equal(evaluate(tp, {ta: a}), np.pad(a, ((1, 0), (0, 2))))


def test_int32_add_wraps():
    ta = te.placeholder((1,), "int32", "A")
    tb = te.compute((1,), lambda i: ta[i] + 1, "B")
    assert evaluate(tb, {ta: np.array([2**31 - 1], np.int32)})[0] == -(2**31)


@pytest.mark.parametrize(("build", "message"), [
    (lambda ta, tb: ta[0] + tb[0], r"^\(A\[0\] \+ B\[0\]\): operand dtypes differ \(int8 vs int32\); cast one side"),
    (lambda ta, tb: ta[0] + 300, r"^\(A\[0\] \+ 300\): constant 300 does not fit int8 \(range -128\.\.127\)$"),
    (lambda ta, tb: ta[0, 1], r"^A\[0, 1\]: A has 1 dimensions, got 2 indices$"),
    (lambda ta, tb: ta[9], r"^A\[9\]: index 0 is 9, outside \[0, 4\)$"),
    (lambda ta, tb: tb[0] >> 40, r"^\(B\[0\] >> 40\): shift amount 40 is outside \[0, 32\)$"),
    (lambda ta, tb: te.clip(tb[0], 5, 1), r"^clip\(B\[0\], 5, 1\): lower bound is above the upper bound$"),
    (lambda ta, tb: tb[0] + ta, r": tensor A used as a value; index it, e.g. A\[i\]$"),
    (lambda ta, tb: te.cast(ta[0], "float32"), r"^cast\(A\[0\], 'float32'\): dtype 'float32' is not supported"),
])
def test_expression_errors_name_the_expression(build, message):
    ta = te.placeholder((4,), "int8", "A")
    tb = te.placeholder((4,), "int32", "B")
    with pytest.raises(ScheduleError, match=message):
        build(ta, tb)


def test_expression_has_no_truth_value():
    ta = te.placeholder((4,), "int32", "A")
    with pytest.raises(ScheduleError, match=r"^expression \(A\[0\] < 1\) has no truth value"):
        bool(ta[0] < 1)


def test_compute_rejects_unbound_variable_and_nested_sum():
    ta = te.placeholder((4, 16), "int32", "A")
    k = te.reduce_axis((0, 16), "k")
    with pytest.raises(ScheduleError, match=r"^compute 'B': A\[i, k\] uses variable k which this compute does not"):
        te.compute((4,), lambda i: ta[i, k], "B")
    with pytest.raises(ScheduleError, match=r"^compute 'C': sum\(A\[i, k\], axis=\[k\]\) must be the outermost"):
        te.compute((4,), lambda i: te.sum(ta[i, k], axis=k) + 1, "C")


def test_builder_argument_errors():
    with pytest.raises(ScheduleError, match=r"^placeholder 'A': shape must be a sequence of positive integers"):
        te.placeholder((0, 3), "int8", "A")
    with pytest.raises(ScheduleError, match=r"^reduce_axis\(\(1, 4\), 'k'\): expected \(0, extent\)"):
        te.reduce_axis((1, 4), "k")
    with pytest.raises(ScheduleError, match=r"^thread_axis\('threadIdx.x'\): only 'cthread'"):
        te.thread_axis("threadIdx.x")
    with pytest.raises(ScheduleError, match=r"^compute 'B': fcompute takes 1 arguments for a 2-d shape$"):
        te.compute((2, 2), lambda i: i, "B")
    ta = te.placeholder((2, 2), "int8", "A")
    with pytest.raises(ScheduleError, match=r"^pad\(A, \(1,\), \(1,\)\): need 2 non-negative widths"):
        te.pad(ta, (1,))
    i = te.reduce_axis((0, 2), "i")
    with pytest.raises(ScheduleError, match=r"an axis is listed twice$"):
        te.sum(ta[0, i], axis=[i, i])
