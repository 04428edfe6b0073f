"""Gradient checkpointing: keep a function's inputs, recompute its inside during backward.

Backprop is memory hungry because every intermediate quantity is kept until the backward
pass reaches it. ``checkpoint(function, *args)`` keeps only ``function``'s inputs and
output; when the backward pass reaches it, it runs ``function`` again (recording this
time) and backpropagates through the fresh graph. Memory for compute: Chen et al. (2016),
"Training Deep Nets with Sublinear Memory Cost". The semantics are PyTorch's
*non-reentrant* ``torch.utils.checkpoint``:

- parameters the function reads from a closure (Modules it calls) get their gradients,
  even when no argument requires one;
- ``create_graph=True`` works through a checkpoint (second derivatives, gradcheck order 2);
- checkpoints nest; an output the loss does not use is fine;
- ``preserve_rng_state=True`` replays the random draws (dropout masks), so the gradients
  equal those without checkpointing.

Tensors that the function reads from outside and that need a gradient must be leaves
(parameters) or arguments. An intermediate result read from a closure is supported only
when nothing else uses it; otherwise the engine reports that its graph was freed (pass
it as an argument instead).

How it is built, on the engine's public pieces only: the first run records ``function``
as usual and walks the recorded graph once to find the leaves that require a gradient
(the parameters it touched); then that graph is dropped. What is recorded instead is one
operation, ``checkpoint``, whose inputs are the function's tensor arguments plus those
leaves, whose output is the function's output, and whose rule recomputes the function
under ``enable_grad()`` and returns the gradients with ``run_backward(..., inputs=...)``.
The engine then accumulates them into ``.grad`` like any rule's result, so a failing
backward leaves ``.grad`` as it was, and an input changed in place between forward and
backward is reported by the engine's own check of saved inputs.

``checkpoint_sequential(functions, segments, input)`` applies it to a chain of modules
(√n segments of n layers: O(√n) memory for about one extra forward pass);
``segments="log"`` bisects recursively (O(log n) memory, O(n log n) compute), and
``budget_bytes=`` lets Chen's greedy planner (``chainrule.utils.checkpoint_plan``) choose
the boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

from chainrule.graph import toposort
from chainrule.nn import rng as nn_rng
from chainrule.nn.module import Module
from chainrule.tensor import grad_mode
from chainrule.tensor.backward import edge_of, run_backward
from chainrule.tensor.join import concatenate
from chainrule.tensor.primitive import Primitive, defvjp, defvjp_argnums, primitive
from chainrule.tensor.tensor import Tensor
from chainrule.utils import checkpoint_plan

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint(
    function: Callable[..., Any], *args: Any, preserve_rng_state: bool = True, **kwargs: Any
) -> Any:
    """Run ``function(*args, **kwargs)`` keeping only its inputs; recompute it in backward.

    Args:
        function: a function of Tensors (and other values) returning a Tensor or a tuple
            or list whose float Tensors carry gradients. It must compute the same thing
            when called again (it is, once more, during backward) and must not change its
            inputs in place.
        *args: its positional arguments; Tensors among them are kept for backward.
        preserve_rng_state: replay the random draws of the first run in the recomputation
            (``chainrule.nn``'s default generator and the generators of Modules
            ``function`` holds), so dropout masks are the same.
        **kwargs: keyword arguments for ``function``, passed again when recomputing.

    Returns:
        What ``function`` returned, its Tensors now outputs of one recorded ``checkpoint``
        operation.

    Example:
        >>> import numpy as np
        >>> from chainrule import Tensor, nn
        >>> from chainrule.utils.checkpoint import checkpoint
        >>> layer = nn.Sequential(nn.Linear(3, 3, rng=0), nn.ReLU())
        >>> x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
        >>> checkpoint(layer, x).sum().backward()    # layer's inside is recomputed here
        >>> layer[0].weight.grad.shape
        (3, 3)
    """
    if not grad_mode.is_grad_enabled():  # nothing will be recorded: nothing to save
        return function(*args, **kwargs)
    rng = _RngState(function) if preserve_rng_state else None
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    template = [None if isinstance(a, Tensor) else a for a in args]  # no Tensor kept here
    first = list(args)
    for i in positions:
        first[i] = _leaf(args[i]._data, args[i].requires_grad)
    result = function(*first, **kwargs)
    outs = _differentiable(result)
    if not outs:  # nothing requires a gradient: a plain call, nothing to keep
        return result
    own = {id(first[i]) for i in positions}
    leaves = [t for t in _leaves(outs) if id(t) not in own]
    arrays = [o._data for o in outs]
    shapes = [a.shape for a in arrays]
    dtypes = [a.dtype for a in arrays]
    # One output of the recorded operation: the function's output, or all of its outputs
    # raveled into one vector (split again below by recorded getitem/reshape).
    joined = arrays[0] if len(arrays) == 1 else np.concatenate([a.reshape(-1) for a in arrays])
    n_args = len(positions)
    # The first run's graph goes once ``result`` is rebuilt around the new outputs below.
    del first, outs, arrays

    def recompute(argnums: Sequence[int], g: Any, ans: Any, *inputs: Any) -> list[Any]:
        create_graph = isinstance(g, Tensor)
        call = list(template)
        wanted: list[Tensor] = []
        handles: list[Any] = []
        for k, i in enumerate(positions):
            x = _link(inputs[k], handles) if create_graph else _leaf(inputs[k], k in argnums)
            call[i] = x
            wanted.append(x)
        wanted.extend(inputs[n_args:] if create_graph else leaves)
        with rng.replay() if rng is not None else nullcontext(), grad_mode.enable_grad():
            again = _differentiable(function(*call, **kwargs))
            if [o.shape for o in again] != shapes:
                raise RuntimeError(
                    "checkpoint: recomputing the function during backward gave outputs of "
                    f"shapes {[o.shape for o in again]}, but the first run gave {shapes}; "
                    "the function must compute the same thing each time it is called."
                )
            root = again[0] if len(again) == 1 else concatenate([o.reshape(-1) for o in again])
        picked = [wanted[i] for i in argnums]
        del call, again  # (the root keeps what the pass needs)
        if not create_graph:
            grads = _backward_into_own_grads(root, g, wanted, picked)
        else:
            try:
                with _hooks_set_aside(wanted):
                    grads = run_backward(
                        root, g, retain_graph=True, create_graph=True, inputs=picked
                    )
            finally:
                for handle in handles:
                    handle.remove()
        return [
            np.zeros_like(x._data) if gi is None else gi
            for gi, x in zip(grads, picked, strict=True)
        ]

    op = Primitive(lambda *raw: joined, "checkpoint")
    op.quiet = False  # the rule runs its own backward pass, which sets up NumPy's errstate
    # It reruns the function on its inputs (all kept); the output it never reads.
    defvjp_argnums(op, recompute, retain_output=False)
    out = op(*(args[i] for i in positions), *leaves)
    if len(shapes) == 1:
        return _rebuild(result, [out])
    pieces, start = [], 0
    for shape, dtype in zip(shapes, dtypes, strict=True):
        size = int(np.prod(shape))
        piece = out[start : start + size].reshape(shape)
        pieces.append(piece if piece.dtype == dtype else piece.astype(dtype))
        start += size
    return _rebuild(result, pieces)


def checkpoint_sequential(
    functions: Module | Sequence[Callable[[Any], Any]],
    segments: int | str | None,
    input: Any,
    budget_bytes: int | None = None,
    *,
    preserve_rng_state: bool = True,
) -> Any:
    """Run a chain of layers in segments, checkpointing all but the last (PyTorch's split).

    With ``segments=s`` the n layers are cut into s segments of ``n // s`` layers (the last
    takes the rest) and each but the last runs under ``checkpoint``: the backward pass
    keeps s - 1 segment boundaries plus one segment's activations, O(√n) for s = √n, and
    recomputes each checkpointed layer once.

    Args:
        functions: a ``Sequential`` or a list of modules (or functions of one input).
        segments: the number of segments (1..n); ``"log"`` for recursive bisection, which
            keeps O(log n) boundaries and recomputes each layer O(log n) times; None with
            ``budget_bytes``.
        input: the input of the first layer.
        budget_bytes: let Chen's greedy planner choose the boundaries so that the
            estimated peak of activation memory (what the graph keeps plus the gradients in
            flight, parameters and their gradients not counted) stays at most this many
            bytes, from the layers' activation sizes measured once on this input's shape.
            Raises ValueError naming the smallest budget the planner can meet.
        preserve_rng_state: as for ``checkpoint``.

    Example:
        >>> import numpy as np
        >>> from chainrule import Tensor, nn
        >>> from chainrule.utils.checkpoint import checkpoint_sequential
        >>> net = nn.Sequential(*[nn.Linear(4, 4, rng=i) for i in range(9)])
        >>> x = Tensor(np.ones((2, 4), np.float32), requires_grad=True)
        >>> checkpoint_sequential(net, 3, x).sum().backward()
        >>> x.grad.shape
        (2, 4)
    """
    layers = _as_layers(functions)
    n = len(layers)
    if budget_bytes is not None:
        if segments is not None:
            raise ValueError(
                f"checkpoint_sequential: got segments={segments!r} and budget_bytes="
                f"{budget_bytes!r}; pass one of them (segments=None lets the planner choose)."
            )
        sizes = checkpoint_plan.layer_sizes(functions, layers, input)
        plan = checkpoint_plan.plan(sizes, budget_bytes)
        bounds = list(plan.segments)
    elif segments == "log":
        return _Segment(layers, recursive=True, preserve=preserve_rng_state)(input)
    elif isinstance(segments, int) and not isinstance(segments, bool) and 1 <= segments <= n:
        size = n // segments
        starts = list(range(0, size * (segments - 1), size))
        bounds = [(s, s + size) for s in starts] + [(size * (segments - 1), n)]
    else:
        raise ValueError(
            f"checkpoint_sequential: segments must be an int from 1 to the number of layers "
            f"({n}), or 'log' for recursive bisection, got {segments!r}."
        )
    x = input
    for start, end in bounds[:-1]:
        segment = _Segment(layers[start:end], recursive=False, preserve=preserve_rng_state)
        x = checkpoint(segment, x, preserve_rng_state=preserve_rng_state)
    start, end = bounds[-1]
    return _Segment(layers[start:end], recursive=False, preserve=preserve_rng_state)(x)


class _Segment:
    """Layers applied in order; recursive: bisected, the first half under a checkpoint."""

    def __init__(self, layers: Sequence[Any], recursive: bool, preserve: bool) -> None:
        self.layers, self.recursive, self.preserve = list(layers), recursive, preserve

    def __call__(self, x: Any) -> Any:
        layers = self.layers
        # Recursive (Chen et al.'s log-n scheme): checkpoint the first half, go on with the
        # second; each half does the same, so O(log n) boundaries are alive at any time.
        while self.recursive and len(layers) > 1:
            half = _Segment(layers[: len(layers) // 2], recursive=True, preserve=self.preserve)
            x = checkpoint(half, x, preserve_rng_state=self.preserve)
            layers = layers[len(layers) // 2 :]
        for layer in layers:
            x = layer(x)
        return x


def _backward_into_own_grads(
    root: Tensor, g: np.ndarray, leaves: list[Tensor], picked: list[Tensor]
) -> list[Any]:
    """The gradients of ``picked`` by a normal backward pass, ``.grad`` left as it was.

    ``run_backward(..., inputs=...)`` would also return them, but it keeps every node of
    the graph alive until it ends (to know which lead to an input), so the recomputed
    segment would not be freed as the pass goes, and nested checkpoints (the recursive
    mode) would hold O(log² n) boundaries instead of O(log n). A normal pass frees each
    node when it has passed it on; its leaves' ``.grad`` are set aside for it and put
    back after, whether it succeeds or fails.
    """
    saved = [(t, t.grad) for t in leaves]
    for t in leaves:
        t.grad = None
    try:
        with _hooks_set_aside(leaves):
            run_backward(root, g, retain_graph=False, create_graph=False)
        return [None if t.grad is None else t.grad._data for t in picked]
    finally:
        for t, grad in saved:
            t.grad = grad


@contextmanager
def _hooks_set_aside(leaves: Sequence[Tensor]) -> Iterator[None]:
    """The leaves' gradient hooks off during the rule's own pass: the outer pass, which
    receives the gradients the rule returns, runs them once, as without checkpointing."""
    edges = [edge_of(t) for t in leaves]  # (a non-leaf's hooks are on its node)
    saved = [(e, e._hooks) for e in edges]
    for e in edges:
        e._hooks = None
    try:
        yield
    finally:
        for e, hooks in saved:
            e._hooks = hooks


def _as_layers(functions: Any) -> list[Any]:
    from chainrule.nn.containers import ModuleList

    layers = list(functions) if isinstance(functions, ModuleList | list | tuple) else None
    if not layers or not all(callable(f) for f in layers):
        raise TypeError(
            "checkpoint_sequential: functions must be a non-empty Sequential or list of "
            f"modules (callables of one input), got {type(functions).__name__}."
        )
    return layers


# -- the first run's graph --------------------------------------------------------------


def _leaf(data: np.ndarray, requires_grad: bool) -> Tensor:
    """A new leaf on ``data`` (no copy): the graph of a (re)run starts here, not below."""
    t = Tensor._wrap(data)
    return t.requires_grad_(True) if requires_grad and data.dtype.kind == "f" else t


def _identity(x: np.ndarray) -> np.ndarray:
    return x


# With create_graph the rule runs on Tensors and must stay linked to the original inputs,
# so that the gradients it returns can be differentiated again. Two identity links with a
# zeroing hook between them: the rule's backward pass reads the gradient at the outer link
# and does not go on below it (into the graph that made the input: a parameter shared with
# that graph would otherwise get this segment's gradient twice).
_input = primitive(_identity, "checkpoint_input", lambda xp, x: x)
defvjp(_input, lambda g, ans, x: g, retain_inputs=(), retain_output=False)


def _link(x: Tensor, handles: list[Any]) -> Tensor:
    with grad_mode.enable_grad():
        if not x.requires_grad:
            return _leaf(x._data, False)
        inner = _input(x)
        # Only for the rule's own backward pass (removed after it): a later pass that
        # differentiates the returned gradients must go through.
        handles.append(inner.register_hook(lambda g: g * 0))
        return _input(inner)  # type: ignore[no-any-return]


def _differentiable(result: Any) -> list[Tensor]:
    items = result if isinstance(result, tuple | list) else (result,)
    return [t for t in items if isinstance(t, Tensor) and t.requires_grad]


def _rebuild(result: Any, outs: list[Tensor]) -> Any:
    """``result`` with its differentiable Tensors replaced, in order, by ``outs``."""
    it = iter(outs)
    if not isinstance(result, tuple | list):
        return next(it)
    items = [next(it) if isinstance(t, Tensor) and t.requires_grad else t for t in result]
    return type(result)(items)


class _Root:
    """A graph node whose parents are the outputs' nodes: one walk finds the leaves of all."""

    def __init__(self, outs: Sequence[Tensor]) -> None:
        self._prev = tuple(edge_of(t) for t in outs)

    __hash__ = object.__hash__


def _leaves(outs: Sequence[Tensor]) -> list[Tensor]:
    """The leaves requiring a gradient that the first run's graph reaches, in order."""
    root: Any = _Root(outs)
    order: list[Any] = toposort(root)
    # (A leaf is its own edge in the graph; the root is last.)
    return [t for t in order[:-1] if isinstance(t, Tensor) and t.requires_grad]


# -- random numbers -----------------------------------------------------------------------


def _generators(function: Any) -> Iterator[np.random.Generator]:
    """The NumPy generators the Modules in ``function`` hold (a Dropout's own ``rng``)."""
    parts = function.layers if isinstance(function, _Segment) else [function]
    seen: set[int] = set()
    for part in parts:
        for m in part.modules() if isinstance(part, Module) else ():
            for value in vars(m).values():
                if isinstance(value, np.random.Generator) and id(value) not in seen:
                    seen.add(id(value))
                    yield value


class _RngState:
    """The generators' states before the first run, replayed for the recomputation."""

    def __init__(self, function: Any) -> None:
        self.default = nn_rng.get_rng_state()
        self.own = [(g, g.bit_generator.state) for g in _generators(function)]

    @contextmanager
    def replay(self) -> Iterator[None]:
        now_default = nn_rng.get_rng_state()
        now_own = [g.bit_generator.state for g, _ in self.own]
        nn_rng.set_rng_state(self.default)
        for g, state in self.own:
            g.bit_generator.state = state
        try:
            yield
        finally:  # the caller's streams go on as if nothing had been drawn
            nn_rng.set_rng_state(now_default)
            for (g, _), state in zip(self.own, now_own, strict=True):
                g.bit_generator.state = state
