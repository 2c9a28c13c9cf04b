"""Coordinate embeddings; each is an ``nn.Module`` with ``out_features``."""

from specfit.encodings.fourier import (
    BasicEncoding,
    GaussianEncoding,
    IdentityEncoding,
    NerfPositionalEncoding,
    PositionalEncoding,
)

__all__ = [
    "BasicEncoding",
    "GaussianEncoding",
    "IdentityEncoding",
    "NerfPositionalEncoding",
    "PositionalEncoding",
]
