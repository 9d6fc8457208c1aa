"""dse_milp: exact design-space exploration of DNN accelerators with small on-chip buffers.

Per layer, the tiling and loop order that minimise off-chip traffic under the
buffer capacities, found by a mixed-integer linear program and proven optimal.
"""

__version__ = "0.1.0"
