"""Utilities under PyTorch's module paths: ``chainrule.utils.checkpoint``."""
