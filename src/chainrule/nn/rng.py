"""The random numbers of ``chainrule.nn`` (weight initialisation, dropout masks).

They come from the process-wide default generator of ``chainrule.tensor.random`` (see
there for seeding and threads), or from the ``rng=`` a layer or init function is given.
"""

from chainrule.tensor.random import (
    RNG,
    DefaultGenerator,
    Generator,
    as_generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

__all__ = [
    "RNG",
    "DefaultGenerator",
    "Generator",
    "as_generator",
    "default_generator",
    "get_rng_state",
    "initial_seed",
    "manual_seed",
    "seed",
    "set_rng_state",
]
