"""Cost-driven structured pruning (the outer compression loop).

Empty so far: it will turn the solved program's per-layer costs and dual values
into pruning ratios (see the project issues). Installed with the ``prune`` extra.
"""
