"""Reduced-cost fixing keeps every solution at the held optimum (dse_milp.solvers.fixing).

Checked by brute force over every 0/1 point of small random programs shaped like the mapping
programs: one-hot choices per unit, coupling rows between units and a capacity row.
"""

import itertools

import pyomo.environ as pyo
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.solvers.fixing import fix_by_reduced_cost


def _program(costs: list[list[int]], weights: list[list[int]], capacity: int, agree: bool) -> pyo.ConcreteModel:
    """min sum cost x  s.t. one choice per unit, sum weight x <= capacity and, with ``agree``,
    the first unit's first choice equal to the second unit's first (a shared layout)."""
    m = pyo.ConcreteModel()
    m.pairs = pyo.Set(initialize=[(u, k) for u, row in enumerate(costs) for k in range(len(row))], dimen=2)
    m.x = pyo.Var(m.pairs, domain=pyo.Binary)
    m.one = pyo.Constraint(range(len(costs)), rule=lambda m, u: sum(m.x[u, k] for k in range(len(costs[u]))) == 1)
    m.cap = pyo.Constraint(expr=sum(weights[u][k] * m.x[u, k] for u, k in m.pairs) <= capacity)
    if agree:
        m.agree = pyo.Constraint(expr=m.x[0, 0] == m.x[1, 0])
    m.obj = pyo.Objective(expr=sum(costs[u][k] * m.x[u, k] for u, k in m.pairs))
    return m


def _solutions(m: pyo.ConcreteModel) -> list[tuple[int, dict]]:
    """(objective, point) of every feasible 0/1 point, by enumeration."""
    keys = list(m.pairs)
    out = []
    for bits in itertools.product((0, 1), repeat=len(keys)):
        for key, bit in zip(keys, bits, strict=True):
            m.x[key].set_value(bit)
        if all(
            (c.lower is None or pyo.value(c.body) >= pyo.value(c.lower) - 1e-9)
            and (c.upper is None or pyo.value(c.body) <= pyo.value(c.upper) + 1e-9)
            for c in m.component_data_objects(pyo.Constraint)
        ):
            out.append((round(pyo.value(m.obj)), dict(zip(keys, bits, strict=True))))
    return out


units = st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=4), min_size=2, max_size=3)


@settings(max_examples=60, deadline=None)
@given(units, st.data(), st.booleans())
def test_fixing_keeps_every_optimal_point(costs, data, agree):
    weights = [[data.draw(st.integers(0, 9)) for _ in row] for row in costs]
    capacity = data.draw(st.integers(0, 20))
    m = _program(costs, weights, capacity, agree)
    solutions = _solutions(m)
    if not solutions:
        return
    optimum = min(value for value, _ in solutions)
    fixed = fix_by_reduced_cost(m, optimum)
    optimal = [point for value, point in solutions if value == optimum]
    for key in m.pairs:
        for point in optimal:
            assert m.x[key].lb <= point[key] <= m.x[key].ub, (key, point)
    assert fixed == sum(m.x[key].lb == m.x[key].ub for key in m.pairs)


def test_fixing_closes_what_cannot_tie():
    """Two units, one clearly cheapest choice each: every other choice is closed, and a
    choice that ties stays open."""
    m = _program([[1, 5, 9], [2, 2, 7]], [[0, 0, 0], [0, 0, 0]], 0, agree=False)
    assert fix_by_reduced_cost(m, 3.0) >= 3
    assert [m.x[0, k].ub for k in range(3)] == [1, 0, 0]
    assert m.x[1, 0].ub == 1 and m.x[1, 1].ub == 1 and m.x[1, 2].ub == 0


def test_one_layout_bounds_the_optimum_and_fixing_against_it_keeps_the_answer(monkeypatch):
    """With layouts to choose, one layout for every tensor is a solution, so its cost bounds
    the optimum; fixing against it before the first solve changes nothing in the answer."""
    from dataclasses import replace
    from pathlib import Path

    import dse_milp.solution as solve_module
    from dse_milp.burst_candidates import AUTO_LAYOUTS
    from dse_milp.cost import Objective
    from dse_milp.loader import load_accelerator, load_network
    from dse_milp.solvers.fixing import one_layout_bound

    root = Path(__file__).resolve().parent.parent
    network = load_network(root / "instances" / "networks" / "tiny_resnet8.yaml")
    accelerator = replace(load_accelerator(root / "instances" / "accelerators" / "npu_32k.yaml"), burst_bytes=64)
    problem = solve_module.build_problem(network, accelerator, (Objective.DRAM,), layouts=AUTO_LAYOUTS)
    bound = one_layout_bound(problem)
    fixed = solve_module.solve(network, accelerator, fusion=3)
    assert bound is not None and fixed.result.objective <= bound
    import dse_milp.program

    monkeypatch.setattr(dse_milp.program, "one_layout_bound", lambda problem: None)
    free = solve_module.solve(network, accelerator, fusion=3)
    assert [r.mapping for r in free.layers] == [r.mapping for r in fixed.layers]
    assert free.layouts == fixed.layouts and free.result.objective == fixed.result.objective
    assert one_layout_bound(replace(problem, layouts=())) is None
