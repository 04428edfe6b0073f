"""``grad``: gradients returned rather than accumulated; ``Variable``, ``backward``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.tensor.backward import run_backward
from chainrule.tensor.tensor import Tensor, _seed

Variable = Tensor  # PyTorch's legacy wrapper: a Tensor is its own Variable since 0.4


def _seq(x: Any) -> list[Any]:
    return [x] if isinstance(x, Tensor) or x is None else list(x)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """Σ_k grad_outputs[k] · d outputs[k] / d inputs, one tensor per input.

    Nothing is added to any ``.grad``. ``grad_outputs`` may be omitted for scalar outputs
    (ones). ``create_graph=True`` records the computation, so the result can be
    differentiated again; ``retain_graph`` defaults to ``create_graph``. An input the
    outputs do not depend on raises, unless ``allow_unused=True`` (then its entry is None,
    or zeros with ``materialize_grads=True``).

    Example:
        >>> import chainrule as torch
        >>> x = torch.tensor(3.0, requires_grad=True)
        >>> (dx,) = torch.autograd.grad(x**3, x, create_graph=True)   # 3x² = 27
        >>> (d2x,) = torch.autograd.grad(dx, x)                       # 6x = 18
        >>> dx.item(), d2x.item()
        (27.0, 18.0)
    """
    outs, xs = _seq(outputs), _seq(inputs)
    seeds = _seq(grad_outputs) if grad_outputs is not None else [None] * len(outs)
    if len(seeds) != len(outs):
        raise ValueError(
            f"autograd.grad: {len(outs)} outputs but {len(seeds)} grad_outputs; give one per "
            "output (None for a scalar output)."
        )
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise RuntimeError(
                f"autograd.grad: input {i} is not a tensor that requires grad; set "
                "requires_grad=True on it before computing the outputs."
            )
    retain = create_graph if retain_graph is None else retain_graph
    totals: list[Any] = [None] * len(xs)
    for k, (out, seed) in enumerate(zip(outs, seeds, strict=True)):
        if not isinstance(out, Tensor) or not out.requires_grad:
            raise RuntimeError(
                f"autograd.grad: output {k} does not require grad (it has no graph); compute "
                "it from inputs with requires_grad=True, outside no_grad()."
            )
        g = _seed(out, seed, "autograd.grad")
        last = k == len(outs) - 1
        found = run_backward(
            out,
            Tensor._wrap(g) if create_graph else g,
            retain_graph=retain or not last,  # later outputs may share this graph
            create_graph=create_graph,
            inputs=xs,
        )
        for i, gi in enumerate(found):
            if gi is not None:
                totals[i] = gi if totals[i] is None else totals[i] + gi
    result: list[Tensor | None] = []
    for i, (x, gi) in enumerate(zip(xs, totals, strict=True)):
        if gi is None:
            if not (allow_unused or materialize_grads):
                raise RuntimeError(
                    f"autograd.grad: input {i} (shape {x.shape}) was not used to compute the "
                    "outputs; pass allow_unused=True to get None for it."
                )
            result.append(Tensor._wrap(np.zeros_like(x._data)) if materialize_grads else None)
        else:
            result.append(gi if isinstance(gi, Tensor) else Tensor._wrap(np.asarray(gi)))
    return tuple(result)


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """``t.backward(g)`` for each tensor (gradients accumulate in the leaves' ``.grad``)."""
    ts: Sequence[Any] = _seq(tensors)
    gs = _seq(grad_tensors) if grad_tensors is not None else [None] * len(ts)
    for k, (t, g) in enumerate(zip(ts, gs, strict=True)):
        last = k == len(ts) - 1
        keep = create_graph if retain_graph is None else retain_graph
        t.backward(g, retain_graph=keep or not last, create_graph=create_graph)
