"""Training: the loop, its state, stacked training of many networks, compaction, logs."""
