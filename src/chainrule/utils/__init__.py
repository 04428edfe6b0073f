"""PyTorch's ``torch.utils`` paths: ``chainrule.utils.data`` (Dataset, DataLoader) and
``chainrule.utils.checkpoint`` (trading memory for recomputation)."""

from chainrule.utils import checkpoint, data

__all__ = ["checkpoint", "data"]
