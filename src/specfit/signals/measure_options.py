"""Names and defaults of the measurements a signal can be seen through (light: no torch import)."""

MEASURES = ("ct", "mri")
DEFAULT_PROJECTIONS = 20  # Tancik et al. 2020, 2-D CT
DEFAULT_KSPACE_FRACTION = 0.13  # Tancik et al. 2020, 3-D MRI ("about 13 %")
