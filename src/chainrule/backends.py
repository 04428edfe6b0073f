"""``chainrule.backends``: PyTorch's ``torch.backends.mps/cuda`` queries.

``cuda.is_built()`` says whether CuPy (the GPU library, ``pip install 'chainrule[cuda]'``)
is installed; there is no MPS backend.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace


def _false() -> bool:
    return False


def _cupy_installed() -> bool:
    return importlib.util.find_spec("cupy") is not None


mps = SimpleNamespace(is_available=_false, is_built=_false)
cuda = SimpleNamespace(is_built=_cupy_installed)
