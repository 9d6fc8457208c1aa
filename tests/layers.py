"""Random small layers and networks shared by the tests (hypothesis strategies and seeded builders)."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from dse_milp.accelerator import Accelerator, Accumulators, Energy, free_split, separate_buffers, unified_buffer
from dse_milp.traffic import Tiling
from dse_milp.workload import Layer, LayerKind, Network, Precision

ENERGY = Energy(dram_byte=20.0, sram_byte=0.6, mac=0.2)


def small_accelerator(
    capacity: int,
    double_buffering: bool = False,
    separate: bool = False,
    operand_levels: bool = True,
    in_buffer: bool = False,
) -> Accelerator:
    """A test accelerator: one unified buffer of ``capacity`` bytes, or three separate ones;
    accumulators in the buffer with ``in_buffer``."""
    buffers = separate_buffers(capacity, capacity, capacity) if separate else unified_buffer(capacity)
    accumulators = Accumulators.BUFFER if in_buffer else Accumulators.ARRAY
    return Accelerator("test", buffers, double_buffering, dram_bandwidth=4.0, clock_mhz=100.0, macs=8, energy=ENERGY,
                       accumulators=accumulators, operand_levels=operand_levels)  # fmt: skip


TINY_NETWORK: dict = {
    "name": "tiny",
    "input": {"channels": 3, "height": 8, "width": 8},
    "layers": [
        {"name": "c1", "kind": "conv2d", "in_channels": 3, "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "c2", "kind": "conv2d", "in_channels": 8, "out_channels": 8, "kernel": 3, "stride": 2, "padding": 1},
        {"name": "p", "kind": "pool", "kernel": "global"},
        {"name": "fc", "kind": "matmul", "in_features": 8, "out_features": 4},
    ],
}
"""A valid tiny network: 3x8x8 -> c1 8x8x8 -> c2 8x4x4 -> p 8x1x1 -> fc 4x1x1."""

precisions = st.builds(
    Precision,
    input=st.sampled_from([4, 8]),
    weight=st.sampled_from([2, 4, 8]),
    output=st.sampled_from([8, 16]),
    psum=st.sampled_from([16, 32]),
)


@st.composite
def small_layers(draw: st.DrawFn) -> Layer:
    """A conv (plain, grouped or depthwise), pool, add or matmul of a few channels and rows."""
    kind = draw(st.sampled_from(["conv", "grouped", "depthwise", "pool", "add", "matmul"]))
    precision = draw(precisions)
    if kind == "matmul":
        heads = draw(st.integers(1, 2))
        rows = draw(st.integers(1, 5))
        m, n = heads * draw(st.integers(1, 4)), heads * draw(st.integers(1, 4))
        return Layer("x", LayerKind.MATMUL, ("input",), m=m, n=n, r=rows, c=1, h=rows, w=1, groups=heads,
                     precision=precision)  # fmt: skip
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 8)), draw(st.integers(max(1, kw - 2 * pw), 7))
    r, c = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if kind == "add":
        ch = draw(st.integers(1, 3))
        return Layer("x", LayerKind.ADD, ("a", "b"), m=ch, n=ch, r=h, c=w, h=h, w=w, groups=ch, precision=precision)
    if kind in ("pool", "depthwise"):
        ch = draw(st.integers(1, 3))
        layer_kind = LayerKind.POOL if kind == "pool" else LayerKind.CONV2D
        return Layer("x", layer_kind, ("input",), m=ch, n=ch, r=r, c=c, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw,
                     ph=ph, pw=pw, groups=ch, precision=precision)  # fmt: skip
    groups = 1 if kind == "conv" else 2
    m, n = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    return Layer("x", LayerKind.CONV2D, ("input",), m=m, n=n, r=r, c=c, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw,
                 ph=ph, pw=pw, groups=groups, precision=precision)  # fmt: skip


@st.composite
def tilings(draw: st.DrawFn, layer: Layer) -> Tiling:
    return Tiling(*(draw(st.integers(1, extent)) for extent in layer.dims.values()))


@st.composite
def group_spans(draw: st.DrawFn, layer: Layer, tiling: Tiling) -> tuple[Tiling, int]:
    """``tiling`` with one group per tile, or (for a layer of several groups, half the time)
    whole-group m and n tiles spanning a random number of groups."""
    if layer.groups == 1 or not draw(st.booleans()):
        return tiling, 1
    return Tiling(layer.mg, layer.ng, tiling.r, tiling.c), draw(st.integers(1, layer.groups))


def every_tiling(layer: Layer) -> list[Tiling]:
    d = layer.dims
    return [
        Tiling(tm, tn, tr, tc)
        for tm in range(1, d["m"] + 1)
        for tn in range(1, d["n"] + 1)
        for tr in range(1, d["r"] + 1)
        for tc in range(1, d["c"] + 1)
    ]


def random_network_spec(rng: random.Random, layers: int) -> dict:
    """A random tiny network in the YAML format: convs, depthwise convs, pools, residual adds, a classifier."""
    channels, size = rng.randint(1, 3), rng.randint(3, 6)
    spec_layers: list[dict] = []
    shape = (channels, size, size)
    last = "input"
    while len(spec_layers) < layers:
        name = f"l{len(spec_layers)}"
        choice = rng.choice(["conv", "conv", "depthwise", "pool", "residual"])
        ch, hh, _ = shape
        if choice == "pool" and hh >= 2:
            spec_layers.append({"name": name, "kind": "pool", "kernel": 2})
            shape = (ch, hh // 2, hh // 2)
        elif choice == "depthwise":
            spec_layers.append({"name": name, "kind": "conv2d", "in_channels": ch, "out_channels": ch,
                                "kernel": 3, "padding": 1, "groups": ch})  # fmt: skip
        elif choice == "residual" and len(spec_layers) + 2 <= layers:
            k = rng.choice([1, 3])  # "same" padding keeps the shape for the residual add
            spec_layers.append({"name": name, "kind": "conv2d", "in_channels": ch, "out_channels": ch,
                                "kernel": k, "padding": k // 2})  # fmt: skip
            spec_layers.append({"name": f"{name}.add", "kind": "add", "inputs": [name, last]})
            name = f"{name}.add"
        else:
            k = rng.choice([1, 2, 3])
            stride = rng.choice([1, 1, 2])
            pad = rng.randint(0, k - 1)
            out = rng.randint(1, 4)
            rows = (hh + 2 * pad - k) // stride + 1
            if rows < 1:
                continue
            spec_layers.append({"name": name, "kind": "conv2d", "in_channels": ch, "out_channels": out,
                                "kernel": k, "stride": stride, "padding": pad})  # fmt: skip
            shape = (out, rows, rows)
        last = name
    ch, hh, ww = shape
    spec_layers.append({"name": "fc", "kind": "matmul", "in_features": ch * hh * ww, "out_features": rng.randint(1, 4)})
    return {
        "name": "random",
        "input": {"channels": channels, "height": size, "width": size},
        "precision": {"weight": rng.choice([4, 8]), "psum": rng.choice([16, 32])},
        "layers": spec_layers,
    }


def conv_chain(prefix: str, layers: int, channels: int, size: int, kernel: int = 3) -> dict:
    """A network file's contents: ``layers`` same-padded convolutions of ``channels`` channels
    in a chain over ``size`` x ``size`` maps, named ``prefix0``, ``prefix1``, ..."""
    conv = {"kind": "conv2d", "in_channels": channels, "out_channels": channels, "kernel": kernel,
            "padding": kernel // 2}  # fmt: skip
    return {
        "name": f"{prefix}-chain",
        "input": {"channels": channels, "height": size, "width": size},
        "layers": [{"name": f"{prefix}{i}", **conv} for i in range(layers)],
    }


def random_free_split(rng: random.Random, layers: tuple[int, int], banks: tuple[int, int],
                      **options: object) -> tuple[Network, Accelerator]:  # fmt: skip
    """A random tiny network and a free split of a few banks, each somewhat smaller than the
    largest layer's smallest footprint (so the split matters); ``options`` go to the
    accelerator (``double_buffering``, ``keep_tensors``, ...)."""
    from dse_milp.candidates import generate
    from dse_milp.loader import parse_network

    network = parse_network(random_network_spec(rng, rng.randint(*layers)))
    roomy = Accelerator("roomy", unified_buffer(1 << 20), False, 4.0, 100.0, 8, ENERGY)
    need = max(generate(layer, roomy).smallest_footprint.sum() / 8 for layer in network.layers)
    bank = max(1, int(need * rng.uniform(0.3, 1.0)))
    buffers, split = free_split(bank * rng.randint(*banks), bank)
    double = bool(options.pop("double_buffering", False))
    return network, Accelerator("free", buffers, double, 4.0, 100.0, 8, ENERGY, split, **options)  # type: ignore[arg-type]
