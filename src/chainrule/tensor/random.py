"""The default random generator: one seeded stream behind every draw that is not given one.

``chainrule.manual_seed(seed)`` (also ``chainrule.nn.manual_seed``) resets it, as
``torch.manual_seed`` does. It serves ``chainrule.randn`` / ``rand`` / ``randint`` /
``randperm``, ``nn.init``, ``Linear``'s initial weights, ``Dropout``'s masks and
``DataLoader``'s shuffling, so one seed at the top of a program fixes all of them::

    chainrule.manual_seed(0)
    model = chainrule.nn.Linear(2, 1)       # the same weights on every run

Pass ``rng=`` (a NumPy Generator or an int seed) to a layer or an init function for a
stream of its own.

Threads: like PyTorch's default generator, this one is process-wide (a seed set in one
thread is seen by all). A NumPy Generator is not safe to share between threads, so every
draw takes a lock: draws from several threads at once are each valid draws of the one
stream (their order between threads is the scheduler's). For reproducible numbers per
thread, give each thread its own ``rng=``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from chainrule.tensor import device as devices


def _fresh_seed() -> int:
    """A seed from the OS's entropy (63 bits, as PyTorch's seeds fit an int64)."""
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) >> 1


class DefaultGenerator:
    """The process-wide generator: the draws of a NumPy Generator, each under a lock."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._seed = _fresh_seed() if seed is None else seed
        self._gen = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> DefaultGenerator:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"manual_seed: the seed must be an int, got {seed!r}.")
        with self._lock:
            self._seed = int(seed)
            self._gen = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The generator's state (restore it with ``set_state``)."""
        with self._lock:
            return dict(self._gen.bit_generator.state)

    def set_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._gen.bit_generator.state = state

    def random(self, size: Any = None) -> Any:
        with self._lock:
            return self._gen.random(size)

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> Any:
        with self._lock:
            return self._gen.normal(loc, scale, size)

    def standard_normal(self, size: Any = None) -> Any:
        with self._lock:
            return self._gen.standard_normal(size)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any:
        with self._lock:
            return self._gen.uniform(low, high, size)

    def integers(self, low: int, high: int | None = None, size: Any = None) -> Any:
        with self._lock:
            return self._gen.integers(low, high, size)

    def permutation(self, n: int) -> Any:
        with self._lock:
            return self._gen.permutation(n)


Generator = np.random.Generator | DefaultGenerator
RNG = np.random.Generator | DefaultGenerator | int | None

_default = DefaultGenerator()


def manual_seed(seed: int) -> DefaultGenerator:
    """Reset the default generator to ``seed`` (as ``torch.manual_seed`` does); returns it.

    Also seeds the generators of the device libraries in use (CuPy's on every GPU), as
    ``torch.manual_seed`` seeds CUDA's."""
    gen = _default.manual_seed(seed)
    devices.seed_devices(int(seed))
    return gen


def seed() -> int:
    """Reseed the default generator from the OS's entropy; returns the new seed."""
    new = _fresh_seed()
    _default.manual_seed(new)
    return new


def initial_seed() -> int:
    """The seed the default generator was last set with."""
    return _default.initial_seed()


def get_rng_state() -> dict[str, Any]:
    return _default.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    _default.set_state(state)


def default_generator() -> DefaultGenerator:
    """The generator used when no ``rng`` is given."""
    return _default


def as_generator(rng: Any) -> Generator:
    """A generator from ``rng``: itself, a new one seeded with an int, or the default."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator | DefaultGenerator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng: expected a numpy.random.Generator, an int seed or None, got "
        f"{type(rng).__name__}; e.g. rng=np.random.default_rng(0) or rng=0."
    )
