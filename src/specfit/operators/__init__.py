"""Differentiable forward models of measured signals: CT projections, MRI k-space sampling,
volume rendering."""
