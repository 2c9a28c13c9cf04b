"""Neural tangent kernels of the registered models: the empirical kernel, its measures, spectral
bias and the Fourier-feature experiments (Tancik et al. 2020)."""
