"""The layer stack every activation network shares, and the ReLU head of the encoding networks.

:class:`ActivationMLP` is ``first: Linear(d, width)``, ``hidden_layers`` x ``Linear(width,
width)`` and ``last: Linear(width, C)``, each hidden layer followed by the family's activation.
A family (SIREN, FINER, WIRE, Gauss) only says what its activation is, how it scales the inputs
of each layer, and how its output is read; the parameter names (``first``, ``hidden.i``,
``last``) are the same for all, so saved runs of every family load the same way. A family whose
hidden layers depend on the sample (ResFields' per-frame weights) changes
:meth:`ActivationMLP.hidden_pre_activation`, not the layer loop.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class ActivationMLP(nn.Module):
    """``h = act_0(first(s_0 x))``, ``h = act(layer(s h))`` per hidden layer, ``readout(last(s h))``.

    Subclasses define :meth:`activation` (and :meth:`first_activation` when the first layer
    differs), and may set ``input_scale`` (``s_0``) and ``hidden_scale`` (``s``) and override
    :meth:`readout` and :meth:`hidden_pre_activation` (``layer(s h)`` above). ``dtype`` is that of
    the hidden and output layers (complex for WIRE); the first layer is always real. Maps
    ``(N, in_features)`` to ``(N, out_features)``.
    """

    input_scale: float = 1.0
    hidden_scale: float = 1.0
    autocast_safe = True  # first and last layers keep float32 under autocast (see forward)

    def __init__(self, in_features: int, out_features: int, width: int, hidden_layers: int,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width, dtype=dtype) for _ in range(hidden_layers))
        self.last = nn.Linear(width, out_features, dtype=dtype)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def first_activation(self, z: torch.Tensor) -> torch.Tensor:
        return self.activation(z)

    def readout(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def _scaled(self, h: torch.Tensor, scale: float) -> torch.Tensor:
        return h if scale == 1.0 else h * scale

    def hidden_pre_activation(self, index: int, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """The pre-activation ``z`` ``(N, width)`` of hidden layer ``index`` (counted from 1:
        ``self.hidden[index - 1]``) for its scaled input ``x`` ``(N, width)``; ``coords``
        ``(N, in_features)`` are the network's inputs, for layers that depend on the sample.
        Here ``layer(x)``."""
        return self.hidden[index - 1](x)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Under ``torch.autocast`` (reduced-precision training) only the hidden layers run in the
        lower precision: the first layer's phases (a frequency times the coordinates) and the
        output need float32."""
        with torch.autocast(coords.device.type, enabled=False):
            h = self.first_activation(self.first(self._scaled(coords, self.input_scale)))
        for index in range(1, len(self.hidden) + 1):
            h = self.activation(self.hidden_pre_activation(index, self._scaled(h, self.hidden_scale), coords))
        with torch.autocast(coords.device.type, enabled=False):
            h = h.to(self.last.weight.dtype)
            return self.readout(self.last(self._scaled(h, self.hidden_scale)))


def relu_mlp(in_features: int, out_features: int, width: int, hidden_layers: int,
             xavier: bool = False) -> nn.Sequential:
    """``[Linear, ReLU] x hidden_layers`` then ``Linear``: ``(N, in_features) -> (N, out_features)``.

    ``xavier`` initialises weights Xavier-normal and biases ``N(0, 1e-6)`` (the Fourier-features
    protocol); otherwise PyTorch's defaults.
    """
    sizes = [in_features] + [width] * hidden_layers
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out_features))
    net = nn.Sequential(*layers)
    if xavier:
        with torch.no_grad():
            for module in net:
                if isinstance(module, nn.Linear):
                    nn.init.xavier_normal_(module.weight)
                    module.bias.normal_(0.0, 1e-6)
    return net
