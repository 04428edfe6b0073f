"""Which segment boundaries to keep under a memory budget: Chen et al.'s greedy plan.

A chain of n layers is cut into segments S_0 .. S_m; all but the last run under
``checkpoint``. Each layer k has two sizes (``LayerSize``): ``activation_bytes``, what its
recorded graph keeps for backward (its output included), and ``output_bytes``, what a
boundary after it keeps. The estimated peak of activation memory of a plan is the larger
of

- the end of the forward pass: every boundary plus the last segment's activations;
- the recomputation of segment S_s during backward: the boundaries up to and including
  its own output, plus S_s's activations (and its recomputed output, when no rule keeps
  it: ``output_counted``);

plus the gradients in flight (``TRANSIENT`` arrays of the largest output's size).
Parameters and their gradients are not counted: they are the same for every plan.

The greedy plan (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost",
their memory planning with a budget): walk the layers, adding each one's activation
bytes to the current segment, and close the segment before the layer that would take it
over a threshold b. Each threshold gives a plan; ``plan`` tries one threshold per segment
length (the largest sum of that many consecutive layers) and keeps the plan that fits
the budget with the least recomputation.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chainrule.tensor import grad_mode
from chainrule.tensor.inspect import saved_by_id
from chainrule.tensor.tensor import Tensor

#: Activation-sized gradient arrays in flight while a segment is recomputed and
#: backpropagated: the gradient at the segment's output (held by the outer pass), and in
#: the rule's own pass the gradient arriving at a layer and the one it passes on.
TRANSIENT = 3


@dataclass(frozen=True)
class LayerSize:
    """The bytes one layer's graph keeps for backward, and the bytes of its output."""

    activation_bytes: int
    output_bytes: int
    # Whether activation_bytes holds the output (a rule keeps it). When not, recomputing a
    # segment that ends with this layer still holds it, as the root of the fresh graph.
    output_counted: bool = True


@dataclass(frozen=True)
class Plan:
    """Segments ``(start, end)`` of layer positions; all but the last are checkpointed."""

    segments: tuple[tuple[int, int], ...]
    peak_bytes: int  # the estimated peak of activation memory (module docstring)

    @property
    def recomputed_layers(self) -> int:
        """Layers run twice: all but those of the last segment."""
        return self.segments[-1][0]


def peak_bytes(sizes: Sequence[LayerSize], segments: Sequence[tuple[int, int]]) -> int:
    """The estimated peak of activation memory of a plan (see the module docstring)."""
    acts = [sum(s.activation_bytes for s in sizes[a:b]) for a, b in segments]
    outs = [sizes[b - 1].output_bytes for a, b in segments]
    kept = 0
    peak = sum(outs[:-1]) + acts[-1]  # the end of the forward pass
    for s in range(len(segments) - 1):
        kept += outs[s]
        root = 0 if sizes[segments[s][1] - 1].output_counted else outs[s]
        peak = max(peak, kept + acts[s] + root)
    return peak + TRANSIENT * max(s.output_bytes for s in sizes)


def greedy(sizes: Sequence[LayerSize], threshold: int) -> tuple[tuple[int, int], ...]:
    """Chen's greedy cut: close a segment before the layer that takes it over ``threshold``."""
    segments: list[tuple[int, int]] = []
    start, total = 0, 0
    for k, s in enumerate(sizes):
        if k > start and total + s.activation_bytes > threshold:
            segments.append((start, k))
            start, total = k, 0
        total += s.activation_bytes
    segments.append((start, len(sizes)))
    return tuple(segments)


def candidates(sizes: Sequence[LayerSize]) -> list[Plan]:
    """The greedy plan for one threshold per segment length, each plan once."""
    acts = [s.activation_bytes for s in sizes]
    plans: dict[tuple[tuple[int, int], ...], Plan] = {}
    for length in range(1, len(acts) + 1):
        window = sum(acts[:length])
        best = window
        for k in range(length, len(acts)):  # the largest sum of `length` consecutive layers
            window += acts[k] - acts[k - length]
            best = max(best, window)
        segments = greedy(sizes, best)
        if segments not in plans:
            plans[segments] = Plan(segments, peak_bytes(sizes, segments))
    return list(plans.values())


def plan(sizes: Sequence[LayerSize], budget_bytes: int) -> Plan:
    """The plan with the least recomputation whose estimated peak is within the budget.

    Raises:
        ValueError: no plan fits; the message names the smallest budget that does.
    """
    if not sizes:
        raise ValueError("checkpoint_sequential: there are no layers to plan for.")
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes <= 0:
        raise ValueError(
            f"checkpoint_sequential: budget_bytes must be a positive int (bytes of "
            f"activation memory), got {budget_bytes!r}."
        )
    plans = candidates(sizes)
    fits = [p for p in plans if p.peak_bytes <= budget_bytes]
    if not fits:
        smallest = min(plans, key=lambda p: p.peak_bytes)
        everything = peak_bytes(sizes, [(0, len(sizes))])
        raise ValueError(
            f"checkpoint_sequential: no plan keeps the activation memory of these "
            f"{len(sizes)} layers within budget_bytes={budget_bytes:,}; the smallest "
            f"feasible budget is {smallest.peak_bytes:,} bytes ({len(smallest.segments)} "
            f"segments; without checkpointing: {everything:,}). Raise budget_bytes to at "
            "least that, or use a smaller batch."
        )
    return min(fits, key=lambda p: (p.recomputed_layers, p.peak_bytes))


# Measured sizes per model and input shape; weak, so a dropped model takes its entry along.
_measured: weakref.WeakKeyDictionary[Any, dict[Any, list[LayerSize]]] = weakref.WeakKeyDictionary()


def measure(layers: Sequence[Any], input: Any) -> list[LayerSize]:
    """Run the layers once, one at a time, and measure what each one's graph keeps.

    Each layer runs on a fresh leaf holding the previous output, so ``saved_tensors``
    separates that layer's own arrays from its input and parameters (leaves). A layer's
    output counts as its activation when a rule keeps it: its own (ReLU's reads its output)
    or the next layer's (Linear's reads its input). Random draws are undone afterwards
    (dropout masks of the real run stay the same).
    """
    from chainrule.nn import rng as nn_rng

    state = nn_rng.get_rng_state()
    inner: list[int] = []  # bytes kept inside each layer, its output not counted
    out_kept: list[bool] = []  # the layer's graph keeps its output
    in_kept: list[bool] = []  # the layer's graph keeps its input
    outputs: list[int] = []
    x = input
    try:
        with grad_mode.enable_grad():
            for layer in layers:
                data = x._data if isinstance(x, Tensor) else x
                y = layer(Tensor._wrap(data).requires_grad_(True))
                saved = saved_by_id(y) if y.requires_grad else {}
                own = id(y._data)
                inner.append(sum(v.nbytes for k, v in saved.items() if not v.is_leaf and k != own))
                out_kept.append(own in saved)
                in_kept.append(id(data) in saved)
                outputs.append(int(y._data.nbytes))
                x = y._data
    finally:
        nn_rng.set_rng_state(state)
    n = len(outputs)
    counted = [out_kept[k] or (k + 1 < n and in_kept[k + 1]) for k in range(n)]
    return [
        LayerSize(inner[k] + (outputs[k] if counted[k] else 0), outputs[k], counted[k])
        for k in range(n)
    ]


def layer_sizes(functions: Any, layers: Sequence[Any], input: Any) -> list[LayerSize]:
    """``measure``, once per model (when ``functions`` is a Module) and input shape."""
    data = input._data if isinstance(input, Tensor) else input
    key = (data.shape, str(data.dtype), tuple(id(f) for f in layers))
    try:
        cache = _measured.setdefault(functions, {})
    except TypeError:  # a plain list cannot be referenced weakly: measure every time
        return measure(layers, input)
    if key not in cache:
        cache[key] = measure(layers, input)
    return cache[key]
