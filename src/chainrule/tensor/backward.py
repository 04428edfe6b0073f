"""The backward pass of the tensor engine: the chain rule in reverse topological order.

The walk is the one both engines share (``chainrule.graph.toposort``). Each node's
gradient is popped from a dict when the node is visited, so it is freed as soon as it has
been passed on, and each node is popped from the order list, so that activations nobody
else holds are freed as the pass goes (the lecture's point: backprop is memory hungry
because it must keep every intermediate quantity until the backward pass reaches it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from chainrule.graph import toposort
from chainrule.tensor import anomaly, grad_mode
from chainrule.tensor.ops.shape import _sum_to, sum_to
from chainrule.tensor.primitive import Context, _clock, fingerprint
from chainrule.tensor.tensor import Tensor


def describe(t: Tensor) -> str:
    """A tensor as error messages name it: its name if it has one, else shape and dtype."""
    name = f"'{t.name}' " if t.name else ""
    return f"tensor {name}of shape {t.shape} ({t.dtype})"


def _check_saved(ctx: Context) -> None:
    """Raise if an input saved for this node's backward was changed in place since.

    Called only when the modification clock has moved since the node was saved.
    """
    saved_at = ctx.stamp if ctx.stamp >= 0 else ~ctx.stamp
    for a in ctx.args:
        if not isinstance(a, Tensor):
            continue
        raw_write = a._fp is not None and fingerprint(a._data) != a._fp
        if a._version[1] > saved_at or raw_write:
            how = (
                "written through .data or a NumPy view"
                if raw_write
                else f"it has had {a._version[0]} in-place change(s) in all"
            )
            raise RuntimeError(
                f"backward: the {describe(a)} that '{ctx.prim.name}' saved for its backward "
                f"pass was modified in place after the forward pass ({how}). Its gradient "
                "would be wrong. Compute a new tensor instead (x = x * 2, not x *= 2), or "
                "update parameters only after backward()."
            )


def _check_grad(ctx: Context, argnum: int, gi: Any) -> None:
    data = gi._data if not isinstance(gi, np.ndarray) else gi
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        bad = "nan" if np.isnan(data).any() else "inf"
        where = "".join(ctx.where[-3:]) if ctx.where else ""
        raise anomaly.AnomalyError(
            f"detect_anomaly: backward of '{ctx.prim.name}' produced {bad} in the gradient of "
            f"its input {argnum} (shape {data.shape}). The operation was created at:\n{where}"
        )


def _freed(ctx: Context, node: Tensor) -> RuntimeError:
    return RuntimeError(
        f"backward: the graph through '{ctx.prim.name}' ({describe(node)}) was freed by an "
        "earlier backward(). Pass retain_graph=True to the first backward() to "
        "backpropagate through it again, or recompute the forward pass."
    )


def run_backward(
    root: Tensor,
    seed: Any,
    *,
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
) -> list[Any]:
    """Backpropagate ``seed`` (d out / d root) from ``root``.

    With ``inputs=None`` the gradients are *added* to the ``.grad`` of the leaves (and of
    tensors that called ``retain_grad()``), only after the whole pass has succeeded: a
    pass that raises leaves every ``.grad`` as it was. With ``inputs``, nothing is
    accumulated and the gradients of those tensors are returned (None where unused).
    """
    if inputs is None and not create_graph and not anomaly._State.enabled:
        with _callbacks_after_pass():
            _store_array_grads(_backward_arrays(root, seed, retain_graph))
        return []
    with _callbacks_after_pass():
        return _run_backward_general(root, seed, retain_graph, create_graph, inputs)


def _run_backward_general(
    root: Tensor,
    seed: Any,
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None,
) -> list[Any]:
    order = toposort(root)
    grads: dict[Tensor, Any] = {root: seed}
    owned: set[int] = set()  # ids of sums this pass allocated: safe to add into in place
    done: list[tuple[Tensor, Any]] = []  # (tensor, grad) to store in .grad at the end
    wanted = {t: i for i, t in enumerate(inputs)} if inputs is not None else None
    results: list[Any] = [None] * (len(inputs) if inputs is not None else 0)
    relevant: set[Tensor] | None = None
    if wanted is not None:
        # Only the part of the graph on a path from root to an input: nothing below the
        # inputs is computed, hooked or freed (as torch.autograd.grad).
        relevant = set()
        for node in order:  # parents before children
            if node in wanted or any(p in relevant for p in node._prev):
                relevant.add(node)

    anomaly_on = anomaly._State.enabled
    # IEEE results without warnings, as PyTorch: sqrt's rule at 0 gives inf, and so on.
    # detect_anomaly() is the tool that reports them.
    with grad_mode.set_grad_enabled(create_graph), np.errstate(divide="ignore", invalid="ignore"):
        while order:
            node = order.pop()  # drop the list's reference: the node can be freed after
            g = grads.pop(node, None)
            if g is None or (relevant is not None and node not in relevant):
                continue
            owned.discard(id(g))
            if node._hooks:
                g = _run_hooks(node, g, create_graph)
            ctx = node._ctx
            if wanted is not None:
                if node in wanted:
                    results[wanted[node]] = g
            elif ctx is None or node._retains_grad:
                done.append((node, g))
            if ctx is None:
                continue
            if ctx.raw is None:
                raise _freed(ctx, node)
            if ctx.stamp != _clock[0]:
                _check_saved(ctx)
            prim, args, kwargs = ctx.prim, ctx.args, ctx.kwargs
            if create_graph:
                call_args: Sequence[Any] = args
                ans: Any = node
                if not isinstance(g, Tensor):
                    g = Tensor._wrap(g)
            else:
                call_args = ctx.raw  # the inputs' arrays, as the forward pass saw them
                ans = node._data
            if prim.residual:  # the rules take what the forward pass kept for them
                kwargs = {**kwargs, "residual": None if create_graph else ctx.residual}
            rules = prim.rules
            needed = ctx.parents
            if relevant is not None:  # only inputs that lead to a requested one: no work
                needed = [i for i in needed if args[i] in relevant]
            joint = prim.argnums_rule
            gis = joint(needed, g, ans, *call_args, **kwargs) if joint is not None else None
            for k, i in enumerate(needed):
                parent = args[i]
                rule = rules[i] if i < len(rules) else None
                if gis is not None:
                    gi = gis[k]
                elif rule is not None:
                    gi = rule(g, ans, *call_args, **kwargs)
                else:  # one rule for every input, or an input that has none (an error)
                    gi = prim.vjp(i, g, ans, call_args, kwargs)
                # Fit the gradient to its input, for every rule, here: sum a broadcast
                # gradient back to the input's shape and cast it to the input's dtype.
                target = parent._data
                if gi.shape != target.shape:
                    gi = sum_to(gi, target.shape) if create_graph else _sum_to(gi, target.shape)
                if gi.dtype != target.dtype:
                    gi = gi.astype(target.dtype)
                if anomaly_on:
                    _check_grad(ctx, i, gi)
                prev = grads.get(parent)
                if prev is None:
                    grads[parent] = gi
                elif id(prev) in owned:
                    prev += gi  # our own buffer: no temporary
                else:
                    total = prev + gi
                    if isinstance(total, np.ndarray):
                        owned.add(id(total))
                    grads[parent] = total
            if not retain_graph:
                ctx.release()  # what the forward pass saved: its memory can go now
                node._prev = ()

    if wanted is not None:
        return results
    _store_grads(done, create_graph)
    return []


def _backward_arrays(root: Tensor, seed: np.ndarray, retain_graph: bool) -> list[Any]:
    """``run_backward`` for the common case, on arrays: ``loss.backward()``.

    The same walk and the same steps as the general loop above, without what that case
    never needs (requested inputs, a recorded backward pass, anomaly checks): this loop
    runs once per graph node of every training step. Returns the (tensor, gradient)
    pairs to store in ``.grad``.
    """
    order = toposort(root)
    grads: dict[Tensor, Any] = {root: seed}
    owned: set[int] = set()  # ids of sums this pass allocated: safe to add into in place
    done: list[tuple[Tensor, Any]] = []
    mode = grad_mode._State
    recording, mode.enabled = mode.enabled, False  # hooks see the gradients unrecorded
    quiet: Any = None  # np.errstate, entered at the first op whose rules need it
    try:
        while order:
            node = order.pop()  # drop the list's reference: it can be freed after
            g = grads.pop(node, None)
            if g is None:
                continue
            if owned:
                owned.discard(id(g))
            if node._hooks:
                g = _run_hooks(node, g, False)
            ctx = node._ctx
            if ctx is None:
                done.append((node, g))
                continue
            if node._retains_grad:
                done.append((node, g))
            raw = ctx.raw
            if raw is None:
                raise _freed(ctx, node)
            # Read now, not once: a hook may change a tensor in place during this pass.
            if ctx.stamp != _clock[0]:  # something was changed in place since: was it saved?
                _check_saved(ctx)
            prim, args, kwargs = ctx.prim, ctx.args, ctx.kwargs
            if prim.quiet and quiet is None:
                quiet = np.errstate(divide="ignore", invalid="ignore")
                quiet.__enter__()
            ans = node._data
            if prim.residual:
                kwargs = {**kwargs, "residual": ctx.residual}
            parents = ctx.parents
            joint = prim.argnums_rule
            gis = joint(parents, g, ans, *raw, **kwargs) if joint is not None else None
            rules = prim.rules
            n_rules = len(rules)
            k = -1
            for i in parents:
                k += 1
                if gis is not None:
                    gi = gis[k]
                elif i >= n_rules or (rule := rules[i]) is None:
                    gi = prim.vjp(i, g, ans, raw, kwargs)
                elif kwargs:
                    gi = rule(g, ans, *raw, **kwargs)
                else:
                    gi = rule(g, ans, *raw)
                parent = args[i]
                target = parent._data
                if gi.shape != target.shape:
                    gi = _sum_to(gi, target.shape)
                if gi.dtype is not target.dtype and gi.dtype != target.dtype:  # (`is`: fast)
                    gi = gi.astype(target.dtype)
                prev = grads.get(parent)
                if prev is None:
                    grads[parent] = gi
                elif id(prev) in owned:
                    prev += gi
                else:
                    total = prev + gi
                    if type(total) is np.ndarray:  # (0-d sums are NumPy scalars)
                        owned.add(id(total))
                    grads[parent] = total
            if not retain_graph:  # (ctx.release(), inline)
                ctx.raw = ctx.residual = None
                ctx.args = ()
                node._prev = ()
    finally:
        if quiet is not None:
            quiet.__exit__(None, None, None)
        mode.enabled = recording
    return done


def _run_hooks(node: Tensor, g: Any, create_graph: bool) -> Any:
    assert node._hooks is not None
    for hook in list(node._hooks.values()):
        as_tensor = g if isinstance(g, Tensor) else Tensor._wrap(g)
        new = hook(as_tensor)
        if new is not None:
            new_data = new._data if isinstance(new, Tensor) else np.asarray(new)
            if new_data.shape != node._data.shape:
                raise ValueError(
                    f"register_hook: a hook on {describe(node)} returned a gradient of shape "
                    f"{new_data.shape}; it must keep the tensor's shape {node._data.shape}."
                )
            if not new_data.flags.writeable:
                new_data = new_data.copy()  # it may become a .grad, which must be writable
            g = new if create_graph and isinstance(new, Tensor) else new_data
    return g


def _store_array_grads(done: list[tuple[Tensor, np.ndarray]]) -> None:
    """``_store_grads`` for the arrays of a normal backward pass (the hot path)."""
    stored: set[int] = set()
    for t, g in done:
        # A gradient array may be a view, or be shared with another tensor (the rule of
        # `+` passes g on unchanged): give .grad its own memory before anyone updates it.
        # (Read-only arrays come only from hooks, which copy them: no flags check here.)
        if g.base is not None or id(g) in stored:
            g = g.copy()
        stored.add(id(g))
        if t.grad is None:
            t.grad = Tensor._wrap(g)
        else:
            with grad_mode.no_grad():
                t.grad = t.grad + Tensor._wrap(g)


def _store_grads(done: list[tuple[Tensor, Any]], create_graph: bool) -> None:
    if not create_graph:  # rules and hooks ran on arrays: every gradient is an array
        _store_array_grads(done)
        return
    for t, g in done:
        # Recorded gradients are kept as they are (they can be differentiated again); an
        # array a hook returned gets its own memory.
        gt = g if isinstance(g, Tensor) else Tensor._wrap(np.array(g))
        if t.grad is None:
            t.grad = gt
        else:
            with grad_mode.enable_grad():
                t.grad = t.grad + gt


# -- callbacks after the pass (queue_callback) -------------------------------------------
# Kept apart from the core above: the pass only opens and closes a scope around itself.


class _Queued(threading.local):
    """Per thread: the callbacks queued during the backward pass now running."""

    depth = 0
    fns: list[Callable[[], None]]

    def __init__(self) -> None:
        self.fns = []


_queued = _Queued()


def queue_callback(fn: Callable[[], None]) -> None:
    """Run ``fn()`` once, after the current backward pass has stored its gradients.

    Called from a hook during ``backward()`` (as PyTorch's
    ``Variable._execution_engine.queue_callback``): data-parallel training waits for its
    gradient all-reduces there, before ``optimizer.step()`` can read ``.grad``. Callbacks
    run in the order they were queued; a pass that raises drops them.
    """
    if _queued.depth == 0:
        raise RuntimeError(
            "queue_callback: no backward pass is running; call it from a hook during "
            "backward() (e.g. one registered with register_hook)."
        )
    _queued.fns.append(fn)


@contextlib.contextmanager
def _callbacks_after_pass() -> Iterator[None]:
    outer = _queued.depth == 0
    _queued.depth += 1
    try:
        yield
    except BaseException:
        if outer:
            _queued.fns.clear()
        raise
    finally:
        _queued.depth -= 1
    if outer:
        try:
            while _queued.fns:
                _queued.fns.pop(0)()
        finally:
            _queued.fns.clear()  # a callback that raised drops the rest
