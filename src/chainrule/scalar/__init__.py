"""The scalar engine: micrograd's ``Value`` and its neural-network library, made fast."""

from chainrule.scalar.engine import Value, linear_combination, values
from chainrule.scalar.nn import MLP, Layer, Module, Neuron

__all__ = ["MLP", "Layer", "Module", "Neuron", "Value", "linear_combination", "values"]
