"""Marginal traffic per output channel: what removing one output channel of a layer saves.

Removing an output channel of a layer is structured pruning, so it reaches
further than the layer (as in Torch-Pruning's dependency graph):

- a layer that works channel by channel (depthwise convolution, pooling, add)
  keeps its input and output channels together, so the channel is removed from
  its input and output tensors alike, and from every input of an add;
- the producer of every tensor that loses a channel loses an output channel
  (its weights shrink), and every convolution or matmul that reads such a tensor
  loses an input channel (its reduction shrinks; a flattening matmul loses the
  channel's whole plane of features).

The marginal traffic of a layer is the optimal DRAM traffic of the network minus
that of the network with the channel removed, each solved to optimality with
the same settings, so every affected mapping (and fused group) is re-optimised.
It is not defined (None) where the channel cannot go alone: a layer with one
output channel, a coupled set that reaches the network input, a grouped (not
depthwise) convolution, or attention's activation-by-activation products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dse_milp.errors import NoSolutionError
from dse_milp.solution import Solution, solve
from dse_milp.solvers import Status
from dse_milp.workload import NETWORK_INPUT, Layer, LayerKind, Network, Shape


def _channel_wise(layer: Layer) -> bool:
    """Whether output channel i of ``layer`` depends on input channel i alone."""
    return layer.kind in (LayerKind.POOL, LayerKind.ADD) or (
        layer.kind is LayerKind.CONV2D and layer.groups == layer.m == layer.n
    )


def coupled_tensors(network: Network, layer: str) -> set[str] | None:
    """The tensors (by producer name) that lose a channel with one output channel of ``layer``,
    or None if the channel cannot be removed."""
    coupled, todo = set(), [layer]
    while todo:
        tensor = todo.pop()
        if tensor in coupled:
            continue
        if tensor == NETWORK_INPUT:
            return None
        coupled.add(tensor)
        producer = network.by_name[tensor]
        if _channel_wise(producer):
            todo.extend(producer.inputs)
        for reader in network.consumers(tensor):
            if reader.weight_from is not None:
                return None
            if _channel_wise(reader):
                todo.append(reader.name)
                todo.extend(reader.inputs)
    return coupled


def without_channels(network: Network, layer: str, count: int = 1) -> Network | None:
    """``network`` with ``count`` output channels of ``layer`` removed, and all that goes with it;
    None if they cannot go (the layer would keep no channel, or see the module docstring)."""
    coupled = coupled_tensors(network, layer)
    if coupled is None or network.output_shapes[layer].channels <= count:
        return None
    layers = []
    for node in network.layers:
        if node.name in coupled and _channel_wise(node):
            node = replace(node, m=node.m - count, n=node.n - count, groups=node.groups - count)
        elif node.name in coupled:
            if node.groups != 1:
                return None
            node = replace(node, m=node.m - count)
        lost = [name for name in node.inputs if name in coupled]
        if lost and not _channel_wise(node):
            if node.groups != 1:
                return None
            shape = network.output_shapes[lost[0]]
            plane = 1 if node.kind is not LayerKind.MATMUL or node.n == shape.channels else shape.height * shape.width
            node = replace(node, n=node.n - plane * count)
        layers.append(node)
    shapes = {
        name: Shape(shape.channels - count, shape.height, shape.width) if name in coupled else shape
        for name, shape in network.output_shapes.items()
    }
    return replace(network, layers=tuple(layers), output_shapes=shapes)


def marginal_traffic(
    solution: Solution, advance: Callable[[], None] | None = None, **settings: object
) -> dict[str, float | None]:
    """DRAM bytes saved by removing one output channel of each layer, mapping re-optimised.

    ``settings`` are the keyword arguments of ``dse_milp.solution.solve`` that gave
    ``solution`` (objective, solver, options, fusion). Layers whose channel takes
    the same coupled tensors with it share one re-solve; candidates of unchanged
    layers and groups are reused. ``advance`` is called after each layer.
    """
    network, accelerator = solution.network, solution.accelerator
    cache: dict = {}
    saved: dict[frozenset[str], float | None] = {}
    marginals: dict[str, float | None] = {}
    for layer in network.layers:
        coupled = coupled_tensors(network, layer.name)
        key = frozenset(coupled or ())
        if coupled is None:
            marginals[layer.name] = None
            continue
        if key not in saved:
            pruned = without_channels(network, layer.name)
            if pruned is None:
                saved[key] = None
            else:
                again = solve(pruned, accelerator, prices=False, cache=cache, **settings)  # type: ignore[arg-type]
                if again.result.status is not Status.OPTIMAL:  # stopped early: its traffic proves nothing
                    raise NoSolutionError(f"the re-solve without a channel of {layer.name!r} was not proven optimal")
                saved[key] = solution.dram_bytes - again.dram_bytes
        marginals[layer.name] = saved[key]
        if advance is not None:
            advance()
    return marginals
