"""FreSh: spectra, the Wasserstein distance, measured spectra and the search over a knob's grid."""
