"""specfit: implicit neural representations with the embedding frequency chosen by FreSh."""

from specfit.errors import SpecfitError

__version__ = "0.1.0"
__all__ = ["SpecfitError", "__version__"]
