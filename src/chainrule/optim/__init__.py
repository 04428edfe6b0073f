"""Optimisers on the tensor engine, with PyTorch's names and update formulas.

``SGD`` (momentum, Nesterov, weight decay), ``Adam``, ``AdamW``, ``RMSprop``,
``Adagrad``; learning-rate schedules
in ``lr_scheduler`` (``StepLR``, ``LinearLR``, ``CosineAnnealingLR``).

Example:
    >>> import numpy as np
    >>> from chainrule import Tensor, nn, optim
    >>> model = nn.Linear(3, 1, dtype=np.float64, rng=0)
    >>> opt = optim.Adam(model.parameters(), lr=1e-2)
    >>> x, y = Tensor(np.ones((4, 3))), Tensor(np.zeros((4, 1)))
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     loss = nn.MSELoss()(model(x), y)
    ...     loss.backward()
    ...     opt.step()
"""

from chainrule.optim import lr_scheduler
from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.adaptive import Adagrad, RMSprop
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
