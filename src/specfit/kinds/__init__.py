"""Signal kinds: the registry tying each kind's signal module to its task (built-in kinds and those of
plugins), loading by kind, render plans and the checks of a saved signal description."""
