"""MILP builders: pure functions from a problem description to a Pyomo model.

``build_model(problem)`` assembles the mapping program from one module per
constraint family (partition, fusion, selection, capacity, layouts, objective); it neither solves, reads
files nor prints.
"""

from formulations.layouts import chosen_layouts, prefer_layouts
from formulations.model import build_model, chosen_candidates, chosen_groups, chosen_kept
from formulations.objective import fix_stage
from formulations.partition import chosen_sizes, fix_split
from formulations.problem import MappingProblem

__all__ = [
    "MappingProblem",
    "build_model",
    "chosen_candidates",
    "chosen_groups",
    "chosen_kept",
    "chosen_layouts",
    "chosen_sizes",
    "fix_split",
    "fix_stage",
    "prefer_layouts",
]
