"""The in-memory signal: values on a regular grid, in [0, 1], with how to map them back."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Signal:
    """A signal sampled on a regular grid.

    Attributes:
        values: ``(C, *spatial)`` float32 in [0, 1]; an image is ``(C, H, W)``.
        name: short name used for output folders (the file stem).
        kind: modality: ``"image"``, ``"audio"``, ``"video"`` or ``"volume"``.
        mode: channel layout, e.g. ``"L"``, ``"LA"``, ``"RGB"``, ``"RGBA"``.
        bit_depth: 8 or 16 for integer sources, 32 for float arrays.
        value_offset, value_scale: original value = ``values * value_scale + value_offset``
            (only float arrays outside [0, 1] are rescaled).
        source: the path it was read from, if any.
        meta: modality details needed to write the signal back (e.g. ``sample_rate`` for audio,
            ``fps`` for video, ``spacing`` for volumes); JSON-serialisable.
        load_options: the options it was loaded with (recorded in a run, to load it again).
    """

    values: torch.Tensor
    name: str
    kind: str = "image"
    mode: str = "RGB"
    bit_depth: int = 8
    value_offset: float = 0.0
    value_scale: float = 1.0
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    load_options: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.values.shape[0])

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.values.shape[1:])

    @classmethod
    def from_description(cls, description: dict, values: torch.Tensor) -> Signal:
        """Rebuild a signal from :meth:`describe`'s output (a run's ``config["signal"]``) and new values."""
        return cls(
            values=values, name=description["name"], kind=description.get("kind", "image"),
            mode=description["mode"], bit_depth=description["bit_depth"],
            value_offset=description["value_offset"], value_scale=description["value_scale"],
            source=description.get("source"), meta=description.get("meta", {}),
        )

    def describe(self) -> dict:
        """JSON-serialisable description, stored in a run's config."""
        return {
            "kind": self.kind,
            "name": self.name,
            "shape": [self.channels, *self.spatial_shape],
            "mode": self.mode,
            "bit_depth": self.bit_depth,
            "value_offset": self.value_offset,
            "value_scale": self.value_scale,
            "source": self.source,
            "meta": self.meta,
        }
