"""Run folders: the saved format, its schema, checkpoints, the in-memory Run, rendering a saved run."""
