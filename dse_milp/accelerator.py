"""The accelerator model: on-chip buffers, DRAM bandwidth, compute and energy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dse_milp.halo import Halo
from dse_milp.workload import Operand


@dataclass(frozen=True)
class Buffer:
    """An on-chip buffer and the operands whose tiles it holds."""

    name: str
    capacity_bytes: int
    operands: frozenset[Operand]


@dataclass(frozen=True)
class Split:
    """Separate input, weight and output buffers whose sizes the program chooses: whole banks
    of ``bank_bytes``, together at most ``total_bytes``."""

    total_bytes: int
    bank_bytes: int

    @property
    def banks(self) -> int:
        return self.total_bytes // self.bank_bytes


@dataclass(frozen=True)
class Energy:
    """Energy per event, in picojoules."""

    dram_byte: float
    sram_byte: float
    mac: float


class Accumulators(StrEnum):
    """Where the accumulators of a reduction that is not split over input-channel tiles live."""

    ARRAY = "array"
    """In the MAC array: the output tile is held in the buffer at output width."""
    BUFFER = "buffer"
    """In the buffer: the output tile is always held at partial-sum width."""


@dataclass(frozen=True)
class Accelerator:
    name: str
    buffers: tuple[Buffer, ...]
    """One unified buffer holding every operand, or one buffer per operand."""
    double_buffering: bool
    dram_bandwidth: float
    """Bytes per cycle."""
    clock_mhz: float
    macs: int
    """MAC units working in parallel."""
    energy: Energy
    split: Split | None = None
    """Set when the input/weight/output split is free: each buffer's capacity is then only
    its upper bound, the total; the program chooses the sizes."""
    accumulators: Accumulators = Accumulators.ARRAY
    operand_levels: bool = True
    """Whether each operand may sit at its own level of the tile-loop nest (a block of several
    tiles); False keeps one tile of each operand resident."""
    burst_bytes: int = 1
    """DRAM access granularity: a transfer moves every burst its bytes touch (1: bytes)."""
    fused_liveness: bool = False
    """Whether a fused group frees a feature map's slot after its last reader (the footprint is
    then the peak of the live slots, and double buffering doubles only what crosses DRAM), or
    holds every slot for the whole tile (the default)."""
    keep_tensors: bool = False
    """Whether a tensor that crosses a unit boundary (a layer's or a fused group's output read
    later) may stay on chip, whole, from the unit that writes it to the unit that last reads
    it, instead of going through DRAM; the program decides per tensor."""
    halo: tuple[Halo, ...] = (Halo.RECOMPUTE,)
    """The ways a fused group may handle the halo overlap between its tiles (``dse_milp.halo``);
    the program chooses one per group. The default recomputes it."""

    @property
    def accumulate_in_buffer(self) -> bool:
        return self.accumulators is Accumulators.BUFFER

    @property
    def unified(self) -> bool:
        return len(self.buffers) == 1

    @property
    def liveness(self) -> bool | None:
        """For a fused group's footprint: None to hold every slot (``fused_liveness`` off),
        else whether the input and output slots share one buffer (their peak is then taken
        together)."""
        if not self.fused_liveness:
            return None
        return self.buffer_of(Operand.INPUT) is self.buffer_of(Operand.OUTPUT)

    def buffer_of(self, operand: Operand) -> Buffer:
        return next(b for b in self.buffers if operand in b.operands)

    def held_bytes(self, tiles: dict[Operand, int]) -> dict[str, float]:
        """Bytes of each buffer that tiles of the given bits per operand occupy."""
        return {b.name: sum(tiles[op] for op in b.operands) / 8 for b in self.buffers}

    def holds(self, tiles: dict[Operand, int]) -> bool:
        """Whether tiles of the given bits per operand fit every buffer."""
        held = self.held_bytes(tiles)
        return all(held[b.name] <= b.capacity_bytes for b in self.buffers)


def unified_buffer(capacity_bytes: int) -> tuple[Buffer, ...]:
    return (Buffer("unified", capacity_bytes, frozenset(Operand)),)


def sized(accelerator: Accelerator, sizes: dict[str, int]) -> Accelerator:
    """``accelerator`` with its buffers fixed at ``sizes`` (bytes, by buffer name) and no free split."""
    buffers = tuple(Buffer(b.name, sizes[b.name], b.operands) for b in accelerator.buffers)
    return replace(accelerator, buffers=buffers, split=None)


def free_split(total_bytes: int, bank_bytes: int) -> tuple[tuple[Buffer, ...], Split]:
    """Three buffers each bounded by the total, and the split that shares it."""
    return separate_buffers(total_bytes, total_bytes, total_bytes), Split(total_bytes, bank_bytes)


def separate_buffers(input_bytes: int, weight_bytes: int, output_bytes: int) -> tuple[Buffer, ...]:
    sizes = {Operand.INPUT: input_bytes, Operand.WEIGHT: weight_bytes, Operand.OUTPUT: output_bytes}
    return tuple(Buffer(op.value, size, frozenset({op})) for op, size in sizes.items())
