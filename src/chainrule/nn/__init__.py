"""Neural-network layers on the tensor engine, with PyTorch's names.

- ``Module``, ``Parameter``: the base class finds parameters and submodules by itself.
- Layers: ``Linear`` (the lecture's Ω_k, β_k), ``MLP``, ``Sequential``, ``ModuleList``,
  ``Dropout``, ``Flatten``, ``Identity``; activations ``ReLU``, ``LeakyReLU``, ``Tanh``,
  ``Sigmoid``, ``GELU``, ``Softmax``, ``LogSoftmax``.
- Losses: ``MSELoss``, ``CrossEntropyLoss``, ``NLLLoss``, ``BCEWithLogitsLoss``,
  ``HingeLoss``.
- ``functional`` (the same as functions), ``init`` (He and Glorot initialisation),
  ``manual_seed`` (the default random generator).

Example:
    >>> import numpy as np
    >>> from chainrule import Tensor, nn
    >>> _ = nn.manual_seed(0)  # returns the generator, as torch.manual_seed
    >>> model = nn.MLP(2, [16, 16], 3)
    >>> logits = model(Tensor(np.zeros((8, 2), dtype=np.float32)))
    >>> loss = nn.CrossEntropyLoss()(logits, np.zeros(8, dtype=np.int64))
    >>> loss.backward()
    >>> model.layers[0].weight.grad.shape
    (16, 2)
"""

from chainrule.nn import functional, init
from chainrule.nn.activation import (
    GELU,
    Flatten,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.nn.containers import ModuleList, Sequential
from chainrule.nn.dropout import Dropout
from chainrule.nn.linear import MLP, Linear
from chainrule.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, MSELoss, NLLLoss
from chainrule.nn.module import IncompatibleKeys, Module, Parameter
from chainrule.nn.rng import default_generator, manual_seed

__all__ = [
    "GELU",
    "MLP",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "HingeLoss",
    "Identity",
    "IncompatibleKeys",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "default_generator",
    "functional",
    "init",
    "manual_seed",
]
