"""micrograd's neural-network library on chainrule's ``Value``: Neuron, Layer, MLP.

Constructor signatures, weight initialisation (``random.uniform(-1, 1)`` drawn in the
same order, bias 0), ReLU on hidden layers, a linear last layer and the summation order
are micrograd's, so a micrograd program gives the same numbers when only its imports
change. One difference under the hood: a neuron's pre-activation ``b + Σ w_i x_i`` is one
graph node (``linear_combination``) instead of 2n nodes; its value and gradients are the
same bits, and backpropagation has far fewer nodes to visit.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from chainrule.scalar.engine import Operand, Value, linear_combination


class Module:
    """Base class: ``parameters()`` lists the trainable Values; ``zero_grad()`` resets them."""

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to 0 (gradients accumulate across backward())."""
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self) -> list[Value]:
        return []


class Neuron(Module):
    """One neuron: ``relu(b + Σ w_i x_i)``, or linear when ``nonlin=False``.

    ``fused=False`` builds micrograd's graph (a ``*`` node per input, a chain of ``+``)
    instead of the one ``w·x+b`` node: the same numbers, micrograd's pictures.
    """

    def __init__(self, nin: int, nonlin: bool = True, fused: bool = True) -> None:
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin
        self.fused = fused

    def __call__(self, x: Sequence[Operand]) -> Value:
        if self.fused:
            act = linear_combination(self.w, x, self.b)
        else:
            act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons reading the same inputs; returns one Value when ``nout == 1``."""

    def __init__(self, nin: int, nout: int, nonlin: bool = True, fused: bool = True) -> None:
        self.neurons = [Neuron(nin, nonlin=nonlin, fused=fused) for _ in range(nout)]

    def __call__(self, x: Sequence[Operand]) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron ``MLP(nin, [n1, n2, ..., nout])``: ReLU hidden layers,
    linear output layer.

    Example:
        >>> random.seed(0)
        >>> model = MLP(2, [4, 1])
        >>> y = model([Value(1.0), Value(-2.0)])
        >>> y.backward()
        >>> len(model.parameters())
        17
    """

    def __init__(self, nin: int, nouts: list[int], fused: bool = True) -> None:
        sizes = [nin, *nouts]
        self.layers = [
            Layer(sizes[i], sizes[i + 1], nonlin=i != len(nouts) - 1, fused=fused)
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Operand]) -> Value | list[Value]:
        out: Value | Sequence[Operand] = x
        for layer in self.layers:
            out = layer([out] if isinstance(out, Value) else out)
        assert isinstance(out, Value | list)
        return out

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
