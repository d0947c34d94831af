"""A stage of a schedule: the loop transformations and hardware mapping of one operation.

Decisions documented in :mod:`vta.compiler.schedule` apply here: split factors must divide,
and every primitive re-runs the whole-schedule checks on what is already placed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vta.compiler.expr import ComputeOp, IterVar, PlaceholderOp
from vta.compiler.intrin import GemmIntrin
from vta.compiler.relations import Fuse, Split
from vta.config import get_env
from vta.errors import ScheduleError

if TYPE_CHECKING:
    from vta.compiler.schedule import Schedule

__all__ = ["PRAGMAS", "SCOPES", "SRAM_DEPTH", "Stage", "check_scope"]

SCOPES = ("global", "local.inp_buffer", "local.wgt_buffer", "local.acc_buffer")
# The Environment constant that gives each on-chip scope its depth in entries (spec §1.2).
SRAM_DEPTH = {"local.inp_buffer": "INP_BUFF_DEPTH", "local.wgt_buffer": "WGT_BUFF_DEPTH",
              "local.acc_buffer": "ACC_BUFF_DEPTH"}
PRAGMAS = ("dma_copy", "alu")


class Stage:
    """How one operation is computed: its loops, where it lives, and what runs it."""

    def __init__(self, op: ComputeOp | PlaceholderOp, schedule: Schedule) -> None:
        self.op = op
        self.origin_op = op
        self.schedule = schedule
        self.scope = "global"
        self.relations: list[Split | Fuse] = []
        self.attach: tuple[Stage, IterVar] | None = None
        self.pragmas: dict[IterVar, str] = {}
        self.tensorized: tuple[IterVar, GemmIntrin] | None = None
        self.binds: dict[IterVar, IterVar] = {}
        self._reset_axes()

    def _reset_axes(self) -> None:
        op = self.op
        self.leaf_iter_vars: list[IterVar] = (
            list(op.axis) + list(op.reduce_axis) if isinstance(op, ComputeOp) else [])

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def is_placeholder(self) -> bool:
        return isinstance(self.op, PlaceholderOp)

    def __repr__(self) -> str:
        return f"Stage({self.name}, scope={self.scope})"

    # --- helpers -----------------------------------------------------------------------------
    def _fail(self, primitive: str, message: str) -> ScheduleError:
        return ScheduleError(f"stage {self.name}: {primitive}: {message}")

    def _leaf(self, var: object, primitive: str) -> IterVar:
        if self.is_placeholder:
            raise self._fail(primitive, "a placeholder has no loops to schedule")
        if not isinstance(var, IterVar) or var not in self.leaf_iter_vars:
            loops = ", ".join(v.name for v in self.leaf_iter_vars)
            name = var.name if isinstance(var, IterVar) else repr(var)
            raise self._fail(primitive, f"axis {name} is not a current loop of this stage (loops: {loops})")
        return var

    def _unattached(self, var: IterVar, primitive: str) -> None:
        """Refuse to replace a loop that another stage is computed at (its attachment would dangle)."""
        attached = [st.name for st in self.schedule.stages if st.attach == (self, var)]
        if attached:
            raise self._fail(primitive, f"{', '.join(attached)} is computed at {var.name}; split or fuse before "
                                        "compute_at")

    def _done(self) -> None:
        self.schedule.recheck()

    # --- loop transformations ----------------------------------------------------------------
    def split(self, parent: IterVar, factor: int | None = None,
              nparts: int | None = None) -> tuple[IterVar, IterVar]:
        """Split ``parent`` into ``(outer, inner)`` loops.

        Parameters
        ----------
        parent
            A current loop of this stage.
        factor, nparts
            Exactly one: the inner extent, or the outer extent. It must divide the extent.

        Returns
        -------
        (outer, inner)

        Raises
        ------
        ScheduleError
            If ``parent`` is not a current loop, both or neither sizes are given, or the size
            does not divide the extent.

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((64,), "int32", "A")
        >>> B = te.compute((64,), lambda i: A[i] + 1, "B")
        >>> s = create_schedule(B)
        >>> xo, xi = s[B].split(B.op.axis[0], factor=16)
        >>> (xo.extent, xi.extent)
        (4, 16)
        """
        parent = self._leaf(parent, "split")
        what = f"split({parent.name}, factor={factor}, nparts={nparts})"
        self._unattached(parent, what)
        if (factor is None) == (nparts is None):
            raise self._fail(what, "give exactly one of factor and nparts")
        size = factor if factor is not None else nparts
        n = parent.extent
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise self._fail(what, f"the size must be a positive integer, got {size!r}")
        if n % size:
            raise self._fail(what, f"{size} does not divide the extent {n} of {parent.name}; "
                                   "VTA loop nests have no tail guards")
        inner_n = size if factor is not None else n // size
        outer = IterVar(f"{parent.name}.outer", n // inner_n, parent.kind)
        inner = IterVar(f"{parent.name}.inner", inner_n, parent.kind)
        pos = self.leaf_iter_vars.index(parent)
        self.leaf_iter_vars[pos:pos + 1] = [outer, inner]
        self.relations.append(Split(parent, outer, inner))
        self._done()
        return outer, inner

    def tile(self, x_parent: IterVar, y_parent: IterVar, x_factor: int,
             y_factor: int) -> tuple[IterVar, IterVar, IterVar, IterVar]:
        """Split two loops and order them ``(x_outer, y_outer, x_inner, y_inner)``.

        Returns
        -------
        (x_outer, y_outer, x_inner, y_inner)

        Raises
        ------
        ScheduleError
            As :meth:`split`.

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((8, 8), "int32", "A")
        >>> B = te.compute((8, 8), lambda i, j: A[i, j] + 1, "B")
        >>> s = create_schedule(B)
        >>> [v.name for v in s[B].tile(*B.op.axis, 4, 2)]
        ['i.outer', 'j.outer', 'i.inner', 'j.inner']
        """
        xo, xi = self.split(x_parent, factor=x_factor)
        yo, yi = self.split(y_parent, factor=y_factor)
        self.reorder(xo, yo, xi, yi)
        return xo, yo, xi, yi

    def reorder(self, *args: IterVar) -> None:
        """Put the given loops in this order, in the positions they occupy now.

        Raises
        ------
        ScheduleError
            If a loop is not current or is listed twice.

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((4, 4), "int32", "A")
        >>> B = te.compute((4, 4), lambda i, j: A[i, j] + 1, "B")
        >>> s = create_schedule(B)
        >>> s[B].reorder(B.op.axis[1], B.op.axis[0])
        >>> [v.name for v in s[B].leaf_iter_vars]
        ['j', 'i']
        """
        for v in args:
            self._leaf(v, "reorder")
        if len(set(args)) != len(args):
            raise self._fail("reorder", f"a loop is listed twice in {[v.name for v in args]}")
        slots = sorted(self.leaf_iter_vars.index(v) for v in args)
        for pos, v in zip(slots, args):
            self.leaf_iter_vars[pos] = v
        self._done()

    def fuse(self, *args: IterVar) -> IterVar:
        """Merge adjacent loops (outermost first) into one.

        Returns
        -------
        IterVar
            The fused loop, extent the product of the extents.

        Raises
        ------
        ScheduleError
            If the loops are not adjacent in order, or mix reduction and data loops.

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((4, 4), "int32", "A")
        >>> B = te.compute((4, 4), lambda i, j: A[i, j] + 1, "B")
        >>> s = create_schedule(B)
        >>> s[B].fuse(*B.op.axis).extent
        16
        """
        if not args:
            raise self._fail("fuse", "needs at least one loop")
        pos = [self.leaf_iter_vars.index(self._leaf(v, "fuse")) for v in args]
        for v in args:
            self._unattached(v, "fuse")
        names = [v.name for v in args]
        if pos != list(range(pos[0], pos[0] + len(pos))):
            raise self._fail(f"fuse({', '.join(names)})", "the loops must be adjacent, outermost first")
        if len({v.kind for v in args}) > 1:
            raise self._fail(f"fuse({', '.join(names)})", "cannot fuse reduction loops with data loops")
        fused = args[0]
        for inner in args[1:]:
            new = IterVar(f"{fused.name}.{inner.name}.fused", fused.extent * inner.extent, fused.kind)
            self.relations.append(Fuse(fused, inner, new))
            fused = new
        self.leaf_iter_vars[pos[0]:pos[-1] + 1] = [fused]
        self._done()
        return fused

    # --- placement -----------------------------------------------------------------------------
    def compute_at(self, parent: Stage, scope: IterVar) -> None:
        """Compute this stage inside loop ``scope`` of ``parent`` (one tile per iteration).

        Raises
        ------
        ScheduleError
            If ``scope`` is not a loop of ``parent``, this stage is an output or placeholder,
            the tile does not fit its SRAM, or a consumer runs outside that loop.

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((4, 1, 16), "int32", "A")
        >>> B = te.compute((4, 1, 16), lambda i, b, c: A[i, b, c] + 1, "B")
        >>> s = create_schedule(B)
        >>> AA = s.cache_read(A, "local.acc_buffer", [B])
        >>> s[AA].compute_at(s[B], B.op.axis[0])
        """
        what = f"compute_at({parent.name}, {getattr(scope, 'name', scope)})"
        if self.is_placeholder or self in self.schedule.output_stages:
            raise self._fail(what, "only intermediate stages can be moved into another stage's loop")
        if parent is self:
            raise self._fail(what, "a stage cannot be computed inside itself")
        parent._leaf(scope, what)
        chain, cur = [], parent
        while cur is not None:
            if cur is self:
                raise self._fail(what, f"{parent.name} is already computed inside {self.name}")
            chain.append(cur)
            cur = cur.attach[0] if cur.attach else None
        self.attach = (parent, scope)
        self._done()

    def set_scope(self, scope: str) -> None:
        """Keep this stage's result in an on-chip buffer (``local.inp_buffer`` ...) or in DRAM.

        Raises
        ------
        ScheduleError
            If the scope is unknown or the tensor's dtype/innermost shape is not that buffer's
            entry (INP int8 (BATCH, BLOCK_IN), WGT int8 (BLOCK_OUT, BLOCK_IN), ACC int32
            (BATCH, BLOCK_OUT); spec §2.10).

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((4, 1, 16), "int32", "A")
        >>> B = te.compute((4, 1, 16), lambda i, b, c: A[i, b, c] >> 1, "B")
        >>> C = te.compute((4, 1, 16), lambda i, b, c: B[i, b, c] + 1, "C")
        >>> create_schedule(C)[B].set_scope("local.acc_buffer")
        """
        if self.is_placeholder:
            raise self._fail(f"set_scope({scope!r})", "placeholders live in DRAM")
        check_scope(self.name, self.op.shape, self.op.dtype, scope)
        self.scope = scope
        self._done()

    # --- hardware mapping ----------------------------------------------------------------------
    def pragma(self, var: IterVar, pragma_type: str) -> None:
        """Mark the loop nest from ``var`` inward as a DMA copy or an ALU kernel.

        Raises
        ------
        ScheduleError
            If the pragma is unknown, ``var`` is not a current loop, or the body is not a copy
            (``dma_copy``) or an ALU operation (``alu``).

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((4, 1, 16), "int32", "A")
        >>> B = te.compute((4, 1, 16), lambda i, b, c: A[i, b, c] + 1, "B")
        >>> s = create_schedule(B)
        >>> AA = s.cache_read(A, "local.acc_buffer", [B])
        >>> s[AA].pragma(s[AA].op.axis[0], "dma_copy")
        """
        what = f"pragma({getattr(var, 'name', var)}, {pragma_type!r})"
        if pragma_type not in PRAGMAS:
            raise self._fail(what, f"unknown pragma; allowed: {', '.join(PRAGMAS)}")
        self._leaf(var, what)
        from vta.compiler.check import check_pragma_body

        check_pragma_body(self, pragma_type, what)
        self.pragmas[var] = pragma_type
        self._done()

    def tensorize(self, var: IterVar, tensor_intrin: GemmIntrin) -> None:
        """Replace the loops from ``var`` inward by the GEMM intrinsic.

        Raises
        ------
        ScheduleError
            If the loops from ``var`` inward are not exactly (batch, out-channel, in-channel)
            element loops of the intrinsic's shape, or the body is not an int8 x int8 sum.

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> from vta.compiler.intrin import gemm_intrin
        >>> x = te.placeholder((1, 1, 1, 16), "int8", "x")
        >>> w = te.placeholder((1, 1, 16, 16), "int8", "w")
        >>> k = te.reduce_axis((0, 16), "k")
        >>> y = te.compute((1, 1, 1, 16), lambda n, m, b, j: te.sum(
        ...     x[n, 0, b, k].astype("int32") * w[m, 0, j, k].astype("int32"), axis=k), "y")
        >>> s = create_schedule(y)
        >>> s[y].tensorize(y.op.axis[2], gemm_intrin())
        """
        what = f"tensorize({getattr(var, 'name', var)})"
        self._leaf(var, what)
        if not isinstance(tensor_intrin, GemmIntrin):
            raise self._fail(what, f"expected the GEMM intrinsic, got {tensor_intrin!r}")
        tensor_intrin.match(self, var, what)
        self.tensorized = (var, tensor_intrin)
        self._done()

    def bind(self, ivar: IterVar, thread_ivar: IterVar) -> None:
        """Run the iterations of ``ivar`` as virtual threads, interleaved to hide latency.

        Raises
        ------
        ScheduleError
            If ``thread_ivar`` is not a ``cthread`` axis or ``ivar`` is a reduction loop.

        Examples
        --------
        >>> from vta.compiler import te
        >>> from vta.compiler.schedule import create_schedule
        >>> A = te.placeholder((4, 1, 16), "int32", "A")
        >>> B = te.compute((4, 1, 16), lambda i, b, c: A[i, b, c] + 1, "B")
        >>> s = create_schedule(B)
        >>> xo, xi = s[B].split(B.op.axis[0], nparts=2)
        >>> s[B].bind(xo, te.thread_axis("cthread"))
        """
        what = f"bind({getattr(ivar, 'name', ivar)}, {getattr(thread_ivar, 'name', thread_ivar)})"
        self._leaf(ivar, what)
        if not isinstance(thread_ivar, IterVar) or thread_ivar.tag != "cthread":
            raise self._fail(what, "bind to te.thread_axis('cthread'); VTA has only virtual threads")
        if ivar.kind != "data":
            raise self._fail(what, "a reduction loop cannot run as virtual threads")
        if ivar in self.binds:
            raise self._fail(what, f"{ivar.name} is already bound")
        self.binds[ivar] = thread_ivar
        self._done()


def check_scope(name: str, shape: tuple[int, ...], dtype: str, scope: str) -> None:
    """Refuse a scope whose SRAM entry does not match the tensor's innermost block (spec §2.10)."""
    if scope not in SCOPES:
        raise ScheduleError(f"stage {name}: set_scope({scope!r}): unknown scope; allowed: {', '.join(SCOPES)}")
    if scope == "global":
        return
    env = get_env()
    entry, want = {
        "local.inp_buffer": ((env.BATCH, env.BLOCK_IN), "int8"),
        "local.wgt_buffer": ((env.BLOCK_OUT, env.BLOCK_IN), "int8"),
        "local.acc_buffer": ((env.BATCH, env.BLOCK_OUT), "int32"),
    }[scope]
    if len(shape) < 2 or tuple(shape[-2:]) != entry or dtype != want:
        raise ScheduleError(
            f"stage {name}: set_scope({scope!r}): a {scope} entry is {want} {entry}, "
            f"got {dtype} with innermost dims {tuple(shape[-2:])}")
