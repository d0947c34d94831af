"""Cycle model of the Pynq-Z1 VTA bitstream: how long a program takes and where the time goes.

Four modules run concurrently (spec §3.1): fetch reads 16-byte instructions over the bus into
three 512-deep command queues; load, compute and store each execute their queue in order,
popping dependency tokens (four 1024-deep FIFOs) before and pushing them after an instruction
(§3.7). An instruction's cost depends only on its fields: DMA geometry for LOAD/STORE, the
micro-op count ``iter_out * iter_in * (uop_end - uop_bgn)`` for GEMM/ALU. So the model needs
no data and runs on the decoded words alone (the timing-only mode). Every assumption is one
field of :class:`HwTiming`, with where it comes from; docs/perf-model.md discusses them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from vta.config import Environment, get_env
from vta.errors import ConfigError, EncodingError, MissingFinishError
from vta.isa import (
    COMPUTE_MODULE,
    LOAD_MODULE,
    MEM_ACC,
    MEM_ACC_8BIT,
    MEM_INP,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    OP_ALU,
    OP_FINISH,
    OP_GEMM,
    OP_LOAD,
    OP_STORE,
    STORE_MODULE,
    DecodedStream,
    Layout,
    get_isa,
)
from vta.sim.events import TRACKS, Events
from vta.sim.fetch import check_fields

__all__ = ["PROFILES", "PYNQ_Z1", "SESSION_PROFILES", "TRACKS", "ZYNQ_L2_BYTES", "HwTiming", "Interval", "ModuleTime",
           "Timing", "concatenate", "estimate"]


@dataclass(frozen=True)
class HwTiming:
    """The model's assumptions, in cycles of the accelerator clock unless named otherwise."""

    # Configured clock, MHz: pkg_config fpga_freq = 100 for pynq (spec §1.2). None: the Environment's.
    clock_mhz: float | None = None
    # AXI data bus width, bytes: VTA_BUS_WIDTH = 64 bits on Pynq (spec §1.3). None: the Environment's.
    bus_bytes: int | None = None
    # Command queues between fetch and the modules: fifo_generator 512 deep (spec §3.1, vivado.tcl).
    cmd_queue_depth: int = 512
    # Dependency token FIFOs: 1024 deep (spec §3.1, vivado.tcl).
    token_queue_depth: int = 1024
    # Cycles from a token push to the consumer seeing it: one FIFO write-to-read (assumed).
    token_latency: int = 1
    # First-beat latency of an AXI read burst through the Zynq S_AXI_ACP port. Assumed ~240 ns,
    # a typical figure for ACP reads served from L2; to be calibrated on a board.
    axi_read_latency: int = 24
    # Write-response latency of an AXI write burst through ACP (assumed like the read latency).
    axi_write_latency: int = 24
    # Fetch: the HLS loop reads one 128-bit instruction per iteration; the instruction array is
    # one long burst, so only the first read pays the latency.
    fetch_overhead: int = 8
    # Per instruction in load/compute/store: read the command FIFO, decode, token handshakes
    # (HLS function entry/exit of a free-running module; assumed).
    insn_overhead: int = 4
    # Per LOAD/STORE with data: address computation and issuing the first request (assumed).
    dma_setup: int = 4
    # The HLS load/store loops issue one memcpy per DRAM row and wait for it to finish, so every
    # row pays the bus latency before its beats stream at one beat per cycle (vta.cc load_2d).
    # Zero-filled pad entries are written one SRAM entry per cycle (reset_mem loop).
    pad_entry_cycles: int = 1
    # GEMM: the uop loop is pipelined at II=1 (spec §3.3); the pipeline depth (uop read, operand
    # reads, 16-way multiply/adder tree, accumulator write) is paid once per instruction (assumed).
    gemm_ii: int = 1
    gemm_fill: int = 10
    # ALU: II=2 because the accumulator SRAM has one read port (spec §3.4); the HLS loop reads
    # the source entry even with use_imm, so the immediate form runs at the same rate.
    alu_ii_two_operand: int = 2
    alu_ii_immediate: int = 2
    alu_fill: int = 8
    # Sustained DMA payload per cycle of one load (read) / store (write) burst, bytes; None: the
    # full bus width (one beat per cycle).
    read_bytes_per_cycle: float | None = None
    write_bytes_per_cycle: float | None = None
    # Host side of one device run as the board's timer sees it: cache flush of the stream,
    # starting the modules and polling for completion, microseconds.
    host_us: float = 0.0
    # Host side per instruction of a run, nanoseconds: TVM's runtime builds the instruction stream
    # on the ARM at every run (a runtime call per DMA or micro-op kernel, and its token flags)
    # before it starts the device, so this time adds to the board's timer whatever the device does.
    host_ns_per_insn: float = 0.0
    # All DMA masters (load, store, compute's UOP/ACC loads) reach DRAM through the one S_AXI_ACP
    # port (spec §3.1, vivado.tcl). True: their data beats share its cycles (a row's beats wait
    # while another master's stream; its first-beat latency does not hold the port). Off by default:
    # refitted with it, the cross-validated errors got worse on some sessions (docs/perf-model.md).
    shared_bus: bool = False
    # The ARM's L2 cache that ACP reads go through, bytes (0: none). A LOAD row read before and not
    # evicted since (LRU over whole rows, loads only) streams at l2_read_bytes_per_cycle (None: the
    # full bus) after the same first-beat latency: tiles reload the same weights and inputs.
    l2_bytes: int = 0
    l2_read_bytes_per_cycle: float | None = None


# Fitted profiles: written by ``python -m vta.sim.calibrate`` from the board times in
# shared/calibration (TVM's published AutoTVM logs); docs/perf-model.md gives the reason for each
# constant and how the default was chosen. tests/sim/test_calibrate.py re-runs the fit.
# The Zynq-7000's L2 cache (PL310), which ACP reads look up: 512 KB (Zynq-7000 TRM, UG585).
ZYNQ_L2_BYTES = 512 * 1024
_FITTED = {"axi_read_latency": 40, "axi_write_latency": 32, "insn_overhead": 52, "read_bytes_per_cycle": 4.0,
           "write_bytes_per_cycle": 8.0, "host_ns_per_insn": 400.0, "l2_bytes": ZYNQ_L2_BYTES,
           "l2_read_bytes_per_cycle": 7.0}
PROFILES: dict[str, HwTiming] = {
    # The released design: every session but one (both 4x8 sessions, DCGAN, LSTM, MobileNet-G).
    "pynq": HwTiming(**_FITTED),
    # 1x16 2019-08-09..10 (ResNet-50, VGG, AlexNet): ~27 cycles per ALU micro-op.
    "pynq-2019-08-09": HwTiming(**_FITTED, alu_ii_two_operand=27, alu_ii_immediate=27),
}
# Measured sessions the default profile does not explain, and the profile fitted to each.
SESSION_PROFILES: dict[str, str] = {
    "1x16 2019-08-09..08-10 (Resnet-50, Alexnet, VGG)": "pynq-2019-08-09",
}
PYNQ_Z1 = PROFILES["pynq"]


@dataclass(frozen=True)
class ModuleTime:
    """Where one module spent the run: executing, waiting for tokens or queue space, or idle."""

    busy: int
    token_stall: int  # waiting on a dependency pop or on a full token FIFO for a push
    starved: int  # waiting for fetch to deliver the next command (fetch: waiting on a full command queue)
    idle: int  # after its last instruction or before its first

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Interval:
    """One instruction on one track of the timeline, in cycles from the start of the run."""

    index: int
    track: str
    start: int
    end: int
    wait_from: int  # when the module took the command; start - wait_from cycles waiting for tokens
    label: str


@dataclass(frozen=True, eq=False)
class Timing:
    """Predicted execution of one program on the configured bitstream."""

    cycles: int
    clock_mhz: float
    modules: dict[str, ModuleTime]
    gemm_uops: int  # accumulating GEMM micro-ops: each is BATCH*BLOCK_IN*BLOCK_OUT MACs
    macs: int
    alu_uops: int
    dram_bytes: dict[str, int]  # bytes moved over the bus per memory type, plus "insn" for fetch
    bus_bytes: int
    stream: DecodedStream = field(repr=False)
    fetch_start: np.ndarray = field(repr=False)
    fetch_end: np.ndarray = field(repr=False)
    issue: np.ndarray = field(repr=False)
    start: np.ndarray = field(repr=False)
    end: np.ndarray = field(repr=False)
    host_s: float = 0.0  # modeled host side: HwTiming.host_us per device run, host_ns_per_insn per instruction

    @property
    def seconds(self) -> float:
        """Device time: cycles at the configured clock."""
        return self.cycles / (self.clock_mhz * 1e6)

    @property
    def wall_seconds(self) -> float:
        """Device time plus the modeled host side: what a board's timer around the launch measures."""
        return self.seconds + self.host_s

    @property
    def utilization(self) -> float:
        """Fraction of cycles in which the GEMM core completed a micro-op (256 MAC/cycle is 1.0)."""
        return self.gemm_uops / self.cycles if self.cycles else 0.0

    @property
    def gops(self) -> float:
        """Achieved GOPS, counting a MAC as two operations as the published peak does (spec §8)."""
        return 2 * self.macs / self.seconds / 1e9 if self.cycles else 0.0

    @property
    def bus_bytes_per_cycle(self) -> float:
        return sum(self.dram_bytes.values()) / self.cycles if self.cycles else 0.0

    @functools.cached_property
    def intervals(self) -> tuple[Interval, ...]:
        """Fetch interval of every instruction, then its execution interval on its module."""
        from vta.sim.trace import label

        out = [Interval(i, "fetch", int(a), int(b), int(a), label(self.stream, i))
               for i, (a, b) in enumerate(zip(self.fetch_start.tolist(), self.fetch_end.tolist()))]
        mod = self.stream.module.tolist()
        for i, (w, a, b) in enumerate(zip(self.issue.tolist(), self.start.tolist(), self.end.tolist())):
            out.append(Interval(i, TRACKS[mod[i] + 1], a, b, w, out[i].label))
        return tuple(out)

    def as_dict(self) -> dict:
        """The summary as plain JSON types (no per-instruction data)."""
        return {"cycles": self.cycles, "clock_mhz": self.clock_mhz, "seconds": self.seconds,
                "host_s": self.host_s, "wall_seconds": self.wall_seconds,
                "gemm_uops": self.gemm_uops, "macs": self.macs, "alu_uops": self.alu_uops,
                "utilization": self.utilization, "gops": self.gops, "dram_bytes": dict(self.dram_bytes),
                "bus_bytes_per_cycle": self.bus_bytes_per_cycle,
                "modules": {k: v.as_dict() for k, v in self.modules.items()}}


def _elem_table(env: Environment) -> np.ndarray:
    """DRAM bytes per element, indexed by memory_type (ACC_8BIT holds one int8 per lane)."""
    t = np.zeros(8, dtype=np.int64)
    for mt, nbytes in get_isa(env).elem_bytes.items():
        if mt != MEM_OUT:  # OUT is only stored; a LOAD of it moves nothing in the model
            t[mt] = nbytes
    return t


def _costs(s: DecodedStream, hw: HwTiming, bus: int) -> tuple[np.ndarray, np.ndarray, dict[str, int], int, int]:
    """Per-instruction execution cycles, DRAM bytes per memory type, GEMM and ALU micro-op totals."""
    env, op, m = s.env, s.opcode, s.mem
    is_load, is_store = op == OP_LOAD, op == OP_STORE
    y, x = m["y_size"], m["x_size"]
    active = (is_load | is_store) & (x > 0)
    elem = np.where(is_store, env.OUT_ELEM_BYTES, _elem_table(env)[m["memory_type"] & 7])
    rate = np.where(is_store, hw.write_bytes_per_cycle or bus, hw.read_bytes_per_cycle or bus)
    row = x * elem
    beats = np.ceil(row / rate)  # per row
    if hw.l2_bytes:  # the share of each LOAD's rows the L2 holds streams at the L2's rate
        hit = _l2_hits(s, hw.l2_bytes)
        mixed = row * ((1 - hit) / rate + hit / (hw.l2_read_bytes_per_cycle or bus))
        beats = np.where(is_load & (hit > 0), np.ceil(mixed), beats)
    beats = beats.astype(np.int64)
    latency = np.where(is_store, hw.axi_write_latency, hw.axi_read_latency)
    pads = np.where(is_load, (m["x_pad_0"] + x + m["x_pad_1"]) * (m["y_pad_0"] + y + m["y_pad_1"]) - x * y, 0)
    dma = np.where(active, hw.dma_setup + y * (latency + beats) + pads * hw.pad_entry_cycles, 0)
    xfer = np.where(active, y * beats, 0)  # cycles on the shared port: the data beats
    g = s.gemm
    uops = g["iter_out"] * g["iter_in"] * np.maximum(g["uop_end"] - g["uop_bgn"], 0)
    is_gemm, is_alu = op == OP_GEMM, op == OP_ALU
    alu_ii = np.where(s.alu["use_imm"] > 0, hw.alu_ii_immediate, hw.alu_ii_two_operand)
    loop = np.where(is_gemm & (uops > 0), hw.gemm_fill + uops * hw.gemm_ii, 0)
    loop = np.where(is_alu & (uops > 0), hw.alu_fill + uops * alu_ii, loop)
    dur = hw.insn_overhead + dma + loop
    moved = np.where(active, x * y * elem, 0)
    per_type = np.bincount(np.where(is_store, 8, m["memory_type"] & 7), weights=moved, minlength=9).astype(np.int64)
    nbytes = {"inp": int(per_type[MEM_INP]), "wgt": int(per_type[MEM_WGT]),
              "acc": int(per_type[MEM_ACC] + per_type[MEM_ACC_8BIT]), "uop": int(per_type[MEM_UOP]),
              "out": int(per_type[8]), "insn": 16 * s.count}
    gemm_uops = int(uops[is_gemm & (g["reset_reg"] == 0)].sum())
    return dur, xfer, nbytes, gemm_uops, int(uops[is_alu].sum())



def _l2_hits(s: DecodedStream, capacity: int) -> np.ndarray:
    """Per instruction, the share of its INP/WGT rows an LRU cache of ``capacity`` bytes holds when it
    runs (rows keyed by memory type, address and length, loads in program order); computed once per
    stream and capacity, since it depends on nothing else."""
    cache = s.__dict__.setdefault("_l2_hits", {})
    if capacity not in cache:
        m = s.mem
        loads = np.nonzero((s.opcode == OP_LOAD) & np.isin(m["memory_type"], (MEM_INP, MEM_WGT))
                           & (m["y_size"] > 0) & (m["x_size"] > 0))[0]
        y = m["y_size"][loads].astype(np.int64)
        insn = np.repeat(loads, y)  # one entry per DRAM row, in program order
        row = np.arange(len(insn)) - np.repeat(np.cumsum(y) - y, y)
        mt, x = m["memory_type"][insn].astype(np.int64), m["x_size"][insn].astype(np.int64)
        addr = m["dram_base"][insn].astype(np.int64) + row * m["x_stride"][insn]
        keys = (addr << 19) | (x << 3) | mt  # address 32 bits, length 16, memory type 3: one int per row
        size = x * _elem_table(s.env)[mt]
        out = np.zeros(s.count)
        out[loads] = np.bincount(insn, weights=_row_hits(keys, size, capacity), minlength=s.count)[loads] / y
        cache[capacity] = out
    return cache[capacity]


def _row_hits(keys: np.ndarray, size: np.ndarray, capacity: int) -> np.ndarray:
    """Whether each row (in order) is in an LRU cache of ``capacity`` bytes when it is read.

    A row read before is held iff it and the distinct rows read since fit in the cache. Those lie
    between every byte read since (all of it fits: a hit) and the rows read for the first time
    since (more than the cache: a miss); when the bounds decide every row, no row-by-row pass runs.
    """
    n = len(keys)
    _, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    prev = np.full(n, -1)
    same = inverse[order[1:]] == inverse[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]  # the row's previous read, -1 for a first read
    again = np.flatnonzero(prev >= 0)
    since = prev[again] + 1
    read = np.r_[0, np.cumsum(size)]
    new = np.r_[0, np.cumsum(np.where(prev < 0, size, 0))]
    if new[-1] <= capacity:  # every distinct row fits: nothing is ever evicted
        return prev >= 0
    held = size[again] + read[again] - read[since] <= capacity
    gone = size[again] + new[again] - new[since] > capacity
    if not (held | gone).all():
        return _lru_hits(keys, size, capacity)
    hit = np.zeros(n, dtype=bool)
    hit[again] = held
    return hit


def _lru_hits(keys: np.ndarray, size: np.ndarray, capacity: int) -> np.ndarray:
    """Whether each row (in order) is in an LRU cache of ``capacity`` bytes when it is read."""
    lru: dict[int, int] = {}  # insertion order is recency order: a hit is moved to the end
    used = 0
    hit = np.zeros(len(keys), dtype=bool)
    for i, (key, n) in enumerate(zip(keys.tolist(), size.tolist())):
        if key in lru:
            hit[i] = True
            lru[key] = lru.pop(key)
            continue
        lru[key] = n
        used += n
        while used > capacity:
            used -= lru.pop(next(iter(lru)))
    return hit


def _module_times(ev: Events, cycles: int) -> dict[str, ModuleTime]:
    fetch_busy = ev.fetch_ii * ev.n + ev.hw.fetch_overhead
    out = {"fetch": ModuleTime(fetch_busy, 0, ev.fetch_stall, max(0, cycles - fetch_busy - ev.fetch_stall))}
    for m in range(3):
        used = ev.busy[m] + ev.token_stall[m] + ev.starved[m]
        out[TRACKS[m + 1]] = ModuleTime(ev.busy[m], ev.token_stall[m], ev.starved[m], max(0, cycles - used))
    return out


_FIELDS = {
    "mem": ("opcode", "pop_prev_dep", "pop_next_dep", "push_prev_dep", "push_next_dep", "memory_type", "y_size",
            "x_size", "x_stride", "y_pad_0", "y_pad_1", "x_pad_0", "x_pad_1", "dram_base"),
    "gemm": ("reset_reg", "uop_bgn", "uop_end", "iter_out", "iter_in"),
    "alu": ("alu_opcode", "use_imm", "imm"),
}


@functools.lru_cache(maxsize=16)
def _layouts(env: Environment) -> dict[str, Layout]:
    isa = get_isa(env)
    return {k: Layout(lay.name, tuple(f for f in lay.fields if f.name in _FIELDS[k]), lay.word_bits, lay.total_bits)
            for k, lay in (("mem", isa.mem), ("gemm", isa.gemm), ("alu", isa.alu))}


class _TimingStream(DecodedStream):
    """A stream decoded to only the fields the field checks and the timing model read.

    Decoding all ~50 fields of the three formats would be most of a timing-only estimate.
    """

    def __init__(self, data: bytes, env: Environment):
        raw = np.frombuffer(data, dtype=np.uint8)
        if raw.size % 16:
            raise EncodingError(f"an instruction stream is a multiple of 16 bytes, got {raw.size}")
        self.env = env
        self.words = raw.view("<u8").reshape(-1, 2)
        self.count = len(self.words)
        lay = _layouts(env)
        self.mem, self.gemm, self.alu = (lay[k].unpack_array(self.words) for k in ("mem", "gemm", "alu"))
        self.opcode = self.mem["opcode"]
        is_load_mod = (self.opcode == OP_LOAD) & ((self.mem["memory_type"] == MEM_INP)
                                                  | (self.mem["memory_type"] == MEM_WGT))
        self.module = np.where(self.opcode == OP_STORE, STORE_MODULE, np.where(is_load_mod, LOAD_MODULE,
                                                                               COMPUTE_MODULE))


def _decoded(source: object, env: Environment | None) -> DecodedStream:
    """A DecodedStream from bytes (field-checked here), a DecodedStream or a prepared program."""
    if isinstance(source, DecodedStream):
        return source
    stream = getattr(source, "stream", None)
    if isinstance(stream, DecodedStream):
        return stream
    s = _TimingStream(bytes(source), env or get_env())
    check_fields(s)
    return s


def estimate(source: bytes | DecodedStream | object, env: Environment | None = None,
             hw: HwTiming = PYNQ_Z1) -> Timing:
    """Predict a program's run on the bitstream from its instruction words alone.

    ``source`` is the stream's bytes, a :class:`~vta.isa.DecodedStream` or a prepared program
    (anything with a ``stream``). Only what the timing needs is checked: well-formed words
    (for bytes) and that every module can run to the end, including the hardware's own hang
    when a command queue fills with instructions waiting on ones fetch cannot reach. Raises
    the ProgramError of a defect found, MissingFinishError without FINISH.
    """
    s = _decoded(source, env)
    if not (s.opcode == OP_FINISH).any():
        raise MissingFinishError(f"the stream of {s.count} instruction(s) has no FINISH, so it never completes")
    bus = hw.bus_bytes or (1 << s.env.LOG_BUS_WIDTH) // 8
    dur, xfer, nbytes, gemm_uops, alu_uops = _costs(s, hw, bus)
    ev = Events(s, dur.tolist(), hw, bus, xfer.tolist() if hw.shared_bus else None)
    ev.run()
    end = np.asarray(ev.end, dtype=np.int64)
    cycles = max(int(end.max(initial=0)), *ev.free)
    env = s.env
    return Timing(cycles, float(hw.clock_mhz or env.FPGA_FREQ_MHZ), _module_times(ev, cycles), gemm_uops,
                  gemm_uops * env.BATCH * env.BLOCK_IN * env.BLOCK_OUT, alu_uops, nbytes, bus, s,
                  np.asarray(ev.fetch_start, dtype=np.int64), np.asarray(ev.fetch_end, dtype=np.int64),
                  np.asarray(ev.issue, dtype=np.int64), np.asarray(ev.start, dtype=np.int64), end,
                  hw.host_us * 1e-6 + len(end) * hw.host_ns_per_insn * 1e-9)


def concatenate(parts: Sequence[Timing]) -> Timing:
    """Back-to-back runs as one timing: what an auto-flushed program costs the device in all.

    Each run starts when the previous one ends (host time between launches is not modelled):
    cycles, micro-ops, bytes and module times add up, and the timeline holds the runs in order.
    Raises ConfigError for no runs or runs timed at different clocks or bus widths.
    """
    if not parts:
        raise ConfigError("concatenate needs at least one Timing, got none")
    first = parts[0]
    if len(parts) == 1:
        return first
    if any((t.clock_mhz, t.bus_bytes) != (first.clock_mhz, first.bus_bytes) for t in parts):
        raise ConfigError(f"runs timed at different clocks or bus widths cannot be concatenated: "
                          f"{sorted({(t.clock_mhz, t.bus_bytes) for t in parts})}")
    offsets = np.cumsum([0] + [t.cycles for t in parts[:-1]])
    modules = {k: ModuleTime(*(sum(getattr(t.modules[k], f.name) for t in parts) for f in fields(ModuleTime)))
               for k in first.modules}
    words = np.concatenate([t.stream.words for t in parts])
    stream = _TimingStream(words.tobytes(), first.stream.env)

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(t, name) + off for t, off in zip(parts, offsets.tolist())])

    return Timing(sum(t.cycles for t in parts), first.clock_mhz, modules, sum(t.gemm_uops for t in parts),
                  sum(t.macs for t in parts), sum(t.alu_uops for t in parts),
                  {k: sum(t.dram_bytes[k] for t in parts) for k in first.dram_bytes}, first.bus_bytes, stream,
                  joined("fetch_start"), joined("fetch_end"), joined("issue"), joined("start"), joined("end"),
                  sum(t.host_s for t in parts))
