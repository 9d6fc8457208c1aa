"""The memos candidate generation keeps across solves, and how to empty them: a timing that
should start cold, as a fresh ``python -m dse_milp solve`` does, clears them first."""

from __future__ import annotations

from dse_milp.burst_candidates import _layer_in_bursts
from dse_milp.candidates import _fewest_tiles, _generate, channel_options, spatial_options
from dse_milp.passes import tiled_pass_bursts
from dse_milp.traffic import halo_stats

MEMOS = (channel_options, spatial_options, halo_stats, _generate, _fewest_tiles, _layer_in_bursts, tiled_pass_bursts)


def clear_caches() -> None:
    """Empty every memo of ``MEMOS``."""
    for memo in MEMOS:
        memo.cache_clear()
