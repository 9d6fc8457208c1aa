"""The linear form of a Pyomo model, as every backend reads it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.core as pyo
from pyomo.core.base.var import VarData
from pyomo.repn import generate_standard_repn


@dataclass(frozen=True)
class LinearForm:
    """min c·x + offset  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper.

    ``A`` is stored row-wise (CSR: ``row_start``, ``column``, ``value``).
    Infinite bounds are ``±inf``.
    """

    variables: list[VarData]
    cost: np.ndarray
    offset: float
    row_start: np.ndarray
    column: np.ndarray
    value: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.row_lower)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        span = slice(self.row_start[i], self.row_start[i + 1])
        return self.column[span], self.value[span]

    def load(self, values: np.ndarray) -> None:
        """Write a solution into the model's variables (integers rounded)."""
        for var, value, integer in zip(self.variables, values, self.integer, strict=True):
            var.set_value(float(round(value)) if integer else float(value), skip_validation=True)


def linear_form(model: pyo.ConcreteModel) -> LinearForm:
    """Extract the linear form of ``model``, which must have one objective, minimised."""
    objectives = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objectives) != 1 or objectives[0].sense != pyo.minimize:
        raise ValueError("a model needs exactly one objective, minimised")
    index: dict[int, int] = {}
    variables: list[VarData] = []

    def columns(vars_: tuple) -> list[int]:
        out = []
        for var in vars_:
            if id(var) not in index:
                index[id(var)] = len(variables)
                variables.append(var)
            out.append(index[id(var)])
        return out

    for var in model.component_data_objects(pyo.Var, active=True, descend_into=True):
        columns((var,))

    starts, cols, vals, lower, upper = [0], [], [], [], []
    for con in model.component_data_objects(pyo.Constraint, active=True):
        repn = generate_standard_repn(con.body, compute_values=True, quadratic=False)
        if not repn.is_linear():
            raise ValueError(f"constraint {con.name} is not linear")
        cols.extend(columns(repn.linear_vars))
        vals.extend(repn.linear_coefs)
        starts.append(len(cols))
        shift = repn.constant
        lower.append(-np.inf if con.lower is None else pyo.value(con.lower) - shift)
        upper.append(np.inf if con.upper is None else pyo.value(con.upper) - shift)

    repn = generate_standard_repn(objectives[0].expr, compute_values=True, quadratic=False)
    if not repn.is_linear():
        raise ValueError("the objective is not linear")
    cost = np.zeros(len(variables))
    np.add.at(cost, columns(repn.linear_vars), repn.linear_coefs)
    return LinearForm(
        variables=variables,
        cost=cost,
        offset=float(repn.constant),
        row_start=np.array(starts, dtype=np.int64),
        column=np.array(cols, dtype=np.int64),
        value=np.array(vals, dtype=float),
        row_lower=np.array(lower, dtype=float),
        row_upper=np.array(upper, dtype=float),
        col_lower=np.array([-np.inf if v.lb is None else v.lb for v in variables], dtype=float),
        col_upper=np.array([np.inf if v.ub is None else v.ub for v in variables], dtype=float),
        integer=np.array([v.is_integer() for v in variables], dtype=bool),
    )
