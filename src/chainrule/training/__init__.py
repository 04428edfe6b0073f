"""Training MLPs on the built-in data sets: the library behind ``chainrule train``.

- ``TrainConfig``, ``default_config(dataset)``: hyperparameters, with measured defaults
  per data set (``DEFAULTS``).
- ``build_model``, ``fit``, ``evaluate``, ``confusion_matrix``: the loop itself.
- ``RunWriter``, ``load_trained``: run folders (config, metrics per epoch, model file).
- ``chainrule.training.plots``: learning curves and decision boundaries (matplotlib).

Example:
    >>> from chainrule.data import load_dataset
    >>> from chainrule.training import build_model, default_config, evaluate, fit
    >>> splits = load_dataset("circles")
    >>> config = default_config("circles", epochs=2)
    >>> model = build_model(config, splits.info)
    >>> history = fit(model, splits, config)
    >>> [m.epoch for m in history]
    [1, 2]
"""

from chainrule.training.config import DEFAULTS, TrainConfig, check_config, default_config
from chainrule.training.loop import (
    EpochMetrics,
    Evaluation,
    Reporter,
    TrainingDiverged,
    build_model,
    build_optimizer,
    confusion_matrix,
    evaluate,
    fit,
)
from chainrule.training.runs import RunWriter, TrainedModel, load_trained, read_metrics

__all__ = [
    "DEFAULTS",
    "EpochMetrics",
    "Evaluation",
    "Reporter",
    "RunWriter",
    "TrainConfig",
    "TrainedModel",
    "TrainingDiverged",
    "build_model",
    "build_optimizer",
    "check_config",
    "confusion_matrix",
    "default_config",
    "evaluate",
    "fit",
    "load_trained",
    "read_metrics",
]
