"""Signal kinds: the registry tying each kind's signal module to its task, loading by kind, render plans."""
