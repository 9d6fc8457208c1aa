"""Channel groups of a PyTorch model, read and pruned through Torch-Pruning's dependency graph.

A *group* is a set of output channels that structured pruning must remove
together (Fang et al., "DepGraph", CVPR 2023): a convolution's filters with the
BatchNorm after it, the depthwise convolution that passes them on, the other
branch of a residual add, and the input channels of every reader. Torch-Pruning
finds the groups and removes channels from every member; nothing here edits a
weight by hand. A group is named after its first convolution or linear layer in
network order, which is also a layer of the network the bridge builds from the
model, so that the program's coupled channel sets (``dse_milp.marginals``) and
the groups match one for one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from dse_milp.errors import InputError
from pruning.data import DataSet

PRUNABLE = (nn.Conv2d, nn.Linear)


FISHER_BATCHES, FISHER_BATCH = 64, 32
"""Mini-batches of training samples whose squared loss gradients estimate the Fisher information."""


def importance(model: nn.Module, data: DataSet, seed: int) -> tp.importance.Importance:
    """The importance criterion the policies share: Torch-Pruning's Optimal Brain Damage scores
    (``GroupHessianImportance``; LeCun et al., NeurIPS 1989), the estimated rise of the loss when a
    channel goes, sum of F w^2 / 2 over its weights, summed over the group's members and not
    normalised, so that scores compare across groups. The Hessian's diagonal F is the empirical
    Fisher information: the mean squared gradient of the cross-entropy over ``FISHER_BATCHES``
    fixed mini-batches (drawn by ``seed``), BatchNorm in inference mode.

    Torch-Pruning's scorer reads F from each parameter's ``.grad``, where this leaves it (its own
    ``accumulate_grad`` keeps only the last gradient it is given in version 1.6, so the squares
    are summed here); clear them (``model.zero_grad``) once the step is pruned. F belongs to the
    weights of this step: estimate it again after pruning and fine-tuning.
    """
    model.eval()
    squares: dict[nn.Parameter, torch.Tensor] = {}
    chosen = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))
    chosen = chosen[: FISHER_BATCHES * FISHER_BATCH]
    batches = range(0, len(chosen), FISHER_BATCH)
    for start in batches:
        batch = chosen[start : start + FISHER_BATCH]
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.train_x[batch]), data.train_y[batch]).backward()
        for parameter in model.parameters():
            if parameter.grad is not None:
                squares[parameter] = squares.get(parameter, 0) + parameter.grad.detach() ** 2
    for parameter in model.parameters():
        parameter.grad = squares[parameter] / len(batches) if parameter in squares else None
    return tp.importance.GroupHessianImportance(group_reduction="sum", normalizer=None)


@dataclass(frozen=True, eq=False)
class Group:
    name: str
    """The group's first convolution or linear layer in network order."""
    layers: tuple[str, ...]
    """The convolution and linear layers whose output channels the group holds, in network order."""
    channels: int
    members: tp.dependency.Group
    """Torch-Pruning's group (all channels), for its importance."""
    root: nn.Module
    handler: object


class Channels:
    """The prunable groups of ``model`` (its outputs' channels excluded), traced on one sample."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, int, int], outputs: list[str]) -> None:
        self.model = model
        self.input_shape = input_shape
        self.names = {module: name for name, module in model.named_modules()}
        modules = dict(model.named_modules())
        self.ignored = [modules[name] for name in outputs if name in modules]
        training = model.training
        model.eval()
        try:
            self.graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, *input_shape))
        finally:
            model.train(training)
        self.order = {name: i for i, name in enumerate(self.names.values())}

    def layers_of(self, members: tp.dependency.Group) -> list[str]:
        """The convolution and linear layers whose output channels a Torch-Pruning group holds."""
        return sorted(
            {
                self.names[d.target.module]
                for d, _ in members
                if isinstance(d.target.module, PRUNABLE) and self.graph.is_out_channel_pruning_fn(d.handler)
            },
            key=self.order.__getitem__,
        )

    def name_of(self, members: tp.dependency.Group) -> str:
        """The name of the group a Torch-Pruning group (from any pruner of this model) is."""
        return self.layers_of(members)[0]

    def groups(self) -> list[Group]:
        """Every group that can lose a channel (more than one channel left), in network order."""
        found = []
        for members in self.graph.get_all_groups(ignored_layers=self.ignored, root_module_types=list(PRUNABLE)):
            dep = members[0].dep
            layers = self.layers_of(members)
            channels = self.graph.get_out_channels(dep.target.module)
            if layers and channels > 1:
                found.append(Group(layers[0], tuple(layers), channels, members, dep.target.module, dep.handler))
        return sorted(found, key=lambda g: self.order[g.name])

    def scores(self, group: Group, criterion: tp.importance.Importance) -> torch.Tensor:
        """The importance of each channel of ``group`` by ``criterion`` (see ``importance``)."""
        return criterion(group.members).detach().cpu()

    def prune(self, group: Group, channels: list[int]) -> None:
        """Remove ``channels`` (indices into the group's current channels) from every member."""
        if channels:
            self.graph.get_pruning_group(group.root, group.handler, sorted(channels)).prune()


def widths(model: nn.Module) -> dict[str, int]:
    """The output channels (features) of every convolution and linear layer, by module name."""
    return {
        name: module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        for name, module in model.named_modules()
        if isinstance(module, PRUNABLE)
    }


def rebuild(model: nn.Module, input_shape: tuple[int, int, int], outputs: list[str], target: dict[str, int],
            source: str) -> None:  # fmt: skip
    """Prune a fresh ``model`` in place to the widths ``target`` (read from ``source``), so that a
    pruned model's state dict loads into it."""
    channels = Channels(model, input_shape, outputs)
    for group in channels.groups():
        keep = target.get(group.name, group.channels)
        if not 1 <= keep <= group.channels:
            raise InputError(
                [f"{source}: widths.{group.name}: {keep} channels do not fit the model's {group.channels}"]
            )
        channels.prune(group, list(range(keep, group.channels)))
    now = widths(model)
    wrong = {name: (width, now.get(name)) for name, width in target.items() if now.get(name) != width}
    if wrong:
        name, (want, got) = next(iter(wrong.items()))
        raise InputError([f"{source}: widths.{name}: {want} does not fit the model (it has {got})"])
