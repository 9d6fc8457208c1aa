"""The compression loop: PyTorch models pruned by the program's costs and shadow prices.

``bridge`` maps an ``nn.Module`` onto the workload model; ``models`` and ``data``
hold the bundled models and data sets; ``train`` trains and fine-tunes;
``channels`` reads and prunes channel groups through Torch-Pruning's dependency
graph; ``predict`` estimates the DRAM bytes a pruning step saves; ``policies``
turn a solution into a step; ``loop`` runs solve, rank, prune, fine-tune,
re-solve; ``record`` writes the logs and plots. Everything here needs the
``prune`` extra (torch, torch-pruning).
"""
