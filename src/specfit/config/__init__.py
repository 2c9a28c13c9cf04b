"""Settings of a fit as one typed tree, and config files that describe a fit."""
