"""PyTorch's ``torch.utils`` paths: ``chainrule.utils.data`` (Dataset, DataLoader)."""

from chainrule.utils import data

__all__ = ["data"]
