"""``Function``: an operation whose derivative the user writes, as ``torch.autograd.Function``.

Example (a cubic whose backward is written by hand, d/dx ½(5x³ - 3x) = 3/2 (5x² - 1)):

    >>> import chainrule as torch
    >>> class Cubic(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return 0.5 * (5 * x**3 - 3 * x)
    ...     @staticmethod
    ...     def backward(ctx, grad_output):
    ...         (x,) = ctx.saved_tensors
    ...         return grad_output * 1.5 * (5 * x**2 - 1)
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> Cubic.apply(x).sum().backward()
    >>> x.grad.tolist()
    [6.0, 28.5]

How it is built: each subclass gets one ``Primitive`` of the tensor engine (the public
registry API, ``defvjp_argnums``), so a Function is recorded, checked for in-place changes
of its inputs and freed exactly like the built-in operations. ``forward`` runs on Tensors
outside the graph (under ``no_grad``); ``backward`` gets the incoming gradient as a Tensor
and runs recorded when the pass has ``create_graph=True``, so a backward written with
differentiable operations can be differentiated again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from chainrule.tensor import grad_mode
from chainrule.tensor.primitive import Primitive, defvjp_argnums
from chainrule.tensor.tensor import Tensor


class FunctionCtx:
    """The ``ctx`` of one call: what ``forward`` keeps for ``backward``.

    Attributes:
        needs_input_grad: one bool per argument of ``forward``: does it need a gradient?
        saved_tensors: the tensors given to ``save_for_backward``; in a backward pass with
            ``create_graph=True``, the inputs among them are the recorded inputs.
    """

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self._saved: tuple[Any, ...] = ()
        self._inputs: list[Any] = []  # the forward pass's input tensors (outside the graph)
        self._current: Sequence[Any] | None = None  # the inputs as the backward pass sees them
        self.materialize_grads = True

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep ``tensors`` (or None) for ``backward``; read them as ``ctx.saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward: argument {i} is a {type(t).__name__}, not a Tensor; "
                    "keep other values as attributes of ctx (ctx.k = k)."
                )
        self._saved = tensors

    def mark_non_differentiable(self, *tensors: Any) -> None:
        """Accepted for compatibility: outputs of integer dtype carry no gradient anyway."""

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        current = self._current
        if current is None:
            return self._saved
        out = []
        for t in self._saved:
            # An input saved in forward is handed back as the backward pass's input: the
            # recorded tensor under create_graph, so second derivatives reach it.
            k = next((i for i, x in enumerate(self._inputs) if x is t), None)
            out.append(t if k is None else _tensor(current[k]))
        return tuple(out)


def _tensor(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor._wrap(x)
    return x


class Function:
    """Base class of operations with a hand-written backward (see the module doc).

    Subclasses define ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` as
    static methods and are called with ``MyFunction.apply(*args)``. ``backward`` returns
    one gradient per argument of ``forward`` (None for those without one).
    """

    _primitive: ClassVar[Primitive | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            f"{type(self).__name__}: a Function is not instantiated; call "
            f"{type(self).__name__}.apply(...) instead."
        )

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("Function.forward: a Function subclass must define forward().")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise TypeError("Function.backward: a Function subclass must define backward().")

    @classmethod
    def apply(cls, *args: Any) -> Any:
        """Run ``forward`` and record the call, so that backward calls ``backward``."""
        prim = cls.__dict__.get("_primitive")
        if prim is None:
            prim = Primitive(_forward, cls.__name__ + "Backward")
            # The user's backward may read any input (ctx.saved_tensors): all are kept.
            defvjp_argnums(prim, _backward, retain_output=False)
            cls._primitive = prim
        recording = grad_mode.is_grad_enabled()
        needs = tuple(recording and isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        out = prim(*args, _function=cls, _ctx=ctx)
        return _tensor(out)


def _forward(*raw: Any, _function: type[Function], _ctx: FunctionCtx) -> np.ndarray:
    """The primitive's forward: the user's forward on Tensors outside the graph."""
    inputs = [_tensor(a) for a in raw]
    _ctx._inputs = inputs
    with grad_mode.no_grad():
        out = _function.forward(_ctx, *inputs)
    if not isinstance(out, Tensor | np.ndarray | float | int):
        raise TypeError(
            f"{_function.__name__}.forward: returned a {type(out).__name__}; chainrule's "
            "Function supports one output, a Tensor. Return one tensor (or split the "
            "operation into one Function per output)."
        )
    return np.asarray(out._data if isinstance(out, Tensor) else out)


def _backward(
    argnums: Sequence[int], g: Any, ans: Any, *inputs: Any, _function: type[Function],
    _ctx: FunctionCtx,
) -> list[Any]:  # fmt: skip
    """The primitive's rule: the user's backward, one gradient per needed input."""
    on_arrays = not isinstance(g, Tensor)
    _ctx._current = inputs
    try:
        grads = _function.backward(_ctx, _tensor(g))
    finally:
        _ctx._current = None
    if not isinstance(grads, tuple | list):
        grads = (grads,)
    if len(grads) < len(inputs):
        raise TypeError(
            f"{_function.__name__}.backward: returned {len(grads)} gradient(s) but forward "
            f"took {len(inputs)} argument(s); return one per argument (None where there is "
            "none)."
        )
    out = []
    for i in argnums:
        gi = grads[i]
        if gi is None:  # None is a zero gradient, as in PyTorch
            gi = np.zeros(np.shape(getattr(inputs[i], "_data", inputs[i])), np.asarray(g).dtype)
            gi = gi if on_arrays else Tensor._wrap(gi)
        elif on_arrays:
            gi = np.asarray(gi._data if isinstance(gi, Tensor) else gi)
        elif not isinstance(gi, Tensor):
            gi = Tensor._wrap(np.asarray(gi))
        out.append(gi)
    return out
