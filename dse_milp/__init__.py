"""dse_milp: exact design-space exploration of DNN accelerators with small on-chip buffers.

Per layer, the tiling and loop order that minimise off-chip traffic under the
buffer capacities, found by a mixed-integer linear program and proven optimal.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

API = ("load_network", "load_accelerator", "solve", "sweep", "bench")
"""The public functions (``dse_milp.api``, docs/api.md), imported on first use so that
``import dse_milp`` stays light."""

__all__ = [*API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in API:
        from dse_milp import api

        return getattr(api, name)
    raise AttributeError(f"module 'dse_milp' has no attribute {name!r}")
