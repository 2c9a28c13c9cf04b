"""Networks and the registry that names them."""

from specfit.models.registry import (
    REGISTRY,
    Knob,
    ModelEntry,
    build_model,
    get_entry,
    models,
    register,
    resolve_params,
)

__all__ = [
    "REGISTRY", "Knob", "ModelEntry", "build_model", "get_entry", "models", "register", "resolve_params",
]
