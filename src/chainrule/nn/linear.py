"""``Linear`` (one affine layer, the lecture's ``f_k = β_k + Ω_k h_k``) and ``MLP``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from chainrule.nn import init as initialisers
from chainrule.nn.activation import ACTIVATIONS
from chainrule.nn.containers import Sequential
from chainrule.nn.dropout import Dropout
from chainrule.nn.module import Module, Parameter
from chainrule.nn.rng import RNG, as_generator
from chainrule.tensor import device as devices
from chainrule.tensor import dtypes, ops

Init = Literal["he", "glorot", "pytorch"]


class Linear(Module):
    """An affine layer: ``y = x @ Wᵀ + b`` for x of shape (..., in_features).

    In the lecture's notation a layer computes ``f_k = β_k + Ω_k h_k`` for one column h_k;
    here ``weight`` is Ω_k, of shape (out_features, in_features), and ``bias`` is β_k, of
    shape (out_features,). A batch holds one example per row, hence ``x @ Ωᵀ``. The product
    and the bias are one fused primitive (``ops.linear``), whose VJPs are the lecture's
    ``∂ℓ/∂Ω = ∂ℓ/∂f hᵀ`` (summed over the batch), ``∂ℓ/∂β = ∂ℓ/∂f`` and
    ``∂ℓ/∂h = Ωᵀ ∂ℓ/∂f``.

    Args:
        in_features: size of each input row.
        out_features: size of each output row.
        bias: learn β (otherwise the layer is the linear map Ω).
        dtype: of the parameters; the default float dtype (float32 unless changed).
        rng: a NumPy Generator or an int seed for the initial weights (None: the default
            generator, see ``nn.manual_seed``).
        init: how to draw the initial weights:

            - ``'pytorch'`` (default, as ``torch.nn.Linear``): Ω and β ~ U(±1/√in_features)
              (``kaiming_uniform_`` with a=√5). Its variance 1/(3·in) shrinks ReLU
              activations about 6x per layer in deep ReLU networks.
            - ``'he'``: Ω ~ N(0, 2/in_features), β = 0. He initialisation keeps the
              variance of the activations from layer to layer through ReLUs: the rule of
              ``MLP``'s default and of the CLI's models.
            - ``'glorot'``: Ω ~ U(±√(6/(in + out))), β = 0, for tanh and sigmoid networks.
        device: where the parameters live (``'cpu'``, ``'cuda'``; the default device when
            None). They are drawn on the host and moved, so a seed gives the same initial
            weights on every device.

    Example:
        >>> import numpy as np
        >>> from chainrule import Tensor, nn
        >>> layer = nn.Linear(3, 2, rng=0)
        >>> layer.weight.shape, layer.bias.shape
        ((2, 3), (2,))
        >>> layer(Tensor(np.ones((5, 3), dtype=np.float32))).shape
        (5, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = None,
        rng: RNG = None,
        init: Init = "pytorch",
        device: Any = None,
    ) -> None:
        where = devices.target(device, "Linear")  # an unavailable device raises first
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, int | np.integer) or isinstance(n, bool) or n <= 0:
                raise ValueError(f"Linear: {name} must be a positive int, got {n!r}.")
        dt = np.dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
        if dt.kind != "f":
            raise TypeError(f"Linear: dtype must be a float dtype, got {dt}.")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dt))
        self.bias = Parameter(np.zeros(self.out_features, dtype=dt)) if bias else None
        self.reset_parameters(init, rng)
        if where.type != "cpu":
            # Drawn on the host, then moved: the same initial values on every device.
            self.to(where)

    def reset_parameters(self, init: Init = "pytorch", rng: RNG = None) -> None:
        """Draw new initial values (in place) with the rule ``init`` (see the class doc)."""
        gen = as_generator(rng)
        if init == "he":
            initialisers.kaiming_normal_(self.weight, nonlinearity="relu", rng=gen)
        elif init == "glorot":
            initialisers.xavier_uniform_(self.weight, rng=gen)
        elif init == "pytorch":
            bound = 1.0 / math.sqrt(self.in_features)
            initialisers.uniform_(self.weight, -bound, bound, rng=gen)
            if self.bias is not None:
                initialisers.uniform_(self.bias, -bound, bound, rng=gen)
            return
        else:
            raise ValueError(f"Linear: init must be 'he', 'glorot' or 'pytorch', got {init!r}.")
        if self.bias is not None:
            initialisers.zeros_(self.bias)

    def forward(self, x: Any) -> Any:
        shape = np.shape(x._data if hasattr(x, "_data") else x)
        if not shape or shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}): the input has shape {shape}"
                f"; its last axis must have size in_features={self.in_features}. Check the "
                "previous layer's out_features (or reshape the input to (batch, features))."
            )
        dt = x.dtype if hasattr(x, "_data") else np.asarray(x).dtype
        if dt != self.weight.dtype:
            # As PyTorch: no silent promotion (a float64 input would make float64 outputs
            # and gradients, at twice the memory, from float32 weights).
            raise RuntimeError(
                f"Linear({self.in_features}, {self.out_features}): the input is {dt} but the "
                f"weights are {self.weight.dtype}; convert one: x.to({self.weight.dtype}) "
                f"(x.float()), or build the layer with dtype={dt}."
            )
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class MLP(Module):
    """A multi-layer perceptron: Linear, activation, [Dropout], ..., Linear (no activation).

    ``MLP(2, [16, 16], 1)`` has the layers 2→16→16→1, with the activation after every
    layer but the last (which gives scores or logits for a loss to take).

    Args:
        in_features: input size.
        hidden: sizes of the hidden layers (may be empty: one Linear layer).
        out_features: output size.
        activation: 'relu' (default), 'leaky_relu', 'tanh', 'sigmoid', 'gelu', 'identity'.
        bias: give every layer a bias.
        dropout: if > 0, a Dropout(p) after each hidden activation.
        dtype: of the parameters (default float dtype unless given).
        rng: Generator or int seed for all initial weights (and the dropout masks).
        init: 'he', 'glorot' or 'pytorch' (see ``Linear``); by default 'glorot' for tanh
            and sigmoid networks, 'he' otherwise.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "relu",
        bias: bool = True,
        dropout: float = 0.0,
        dtype: Any = None,
        rng: RNG = None,
        init: Init | None = None,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}."
            )
        if isinstance(hidden, int):
            raise TypeError(f"MLP: hidden is a list of layer sizes, e.g. [{hidden}], not an int.")
        if init is None:
            init = "glorot" if activation in ("tanh", "sigmoid") else "he"
        gen = as_generator(rng)
        sizes = [in_features, *hidden, out_features]
        layers: list[Module] = []
        for k in range(len(sizes) - 1):
            layers.append(Linear(sizes[k], sizes[k + 1], bias, dtype, gen, init))
            if k < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
                if dropout > 0:
                    layers.append(Dropout(dropout, rng=gen if rng is not None else None))
        self.layers = Sequential(*layers)

    def forward(self, x: Any) -> Any:
        return self.layers(x)
