"""The backward pass of the tensor engine: the chain rule in reverse topological order.

The walk is the one both engines share (``chainrule.graph.toposort``), over the graph's
nodes (``chainrule.tensor.node.Node``; a leaf tensor is its own node). Each node's
gradient is popped from a dict when the node is visited, so it is freed as soon as it has
been passed on, and each node is popped from the order list and releases what it saved,
so that activations nobody else holds are freed as the pass goes (the lecture's point:
backprop is memory hungry because it must keep every intermediate quantity until the
backward pass reaches it).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np

from chainrule.graph import toposort
from chainrule.tensor import anomaly, backend, grad_mode
from chainrule.tensor.node import Node
from chainrule.tensor.ops.shape import _sum_to, sum_to, sum_to_any
from chainrule.tensor.tensor import RemovableHandle, Tensor
from chainrule.tensor.versions import _clock, fingerprint


def describe(t: Tensor) -> str:
    """A tensor as error messages name it: its name if it has one, else shape and dtype."""
    name = f"'{t.name}' " if t.name else ""
    return f"tensor {name}of shape {t.shape} ({t.dtype})"


def _describe_edge(edge: Node | Tensor) -> str:
    if type(edge) is Node:
        t = edge.retained() if edge.retained is not None else None
        if t is not None:
            return describe(t)
        return f"the output of '{edge.prim.name}', of shape {edge.shape} ({edge.dtype})"
    assert isinstance(edge, Tensor)
    return describe(edge)


def _check_saved(node: Node) -> None:
    """Raise if an input or output saved for this node's backward was changed in place since.

    Called only when the modification clock has moved since the node was saved.
    """
    saved_at = node.stamp if node.stamp >= 0 else ~node.stamp
    for a in node.args:
        if not isinstance(a, Tensor):
            continue
        raw_write = a._fp is not None and not backend.same_fingerprint(fingerprint(a._data), a._fp)
        if a._version[1] > saved_at or raw_write:
            _modified(node, describe(a), a._version[0], raw_write)
    version = getattr(node, "out_version", None)  # set when the output is retained
    if version is not None and node.ans is not None:
        fp = getattr(node, "out_fp", None)
        raw_write = fp is not None and not backend.same_fingerprint(fingerprint(node.ans), fp)
        if version[1] > saved_at or raw_write:
            what = f"output (of shape {node.shape}, {node.dtype})"
            _modified(node, what, version[0], raw_write)


def _modified(node: Node, what: str, changes: int, raw_write: bool) -> None:
    how = (
        "written through .data or a NumPy view"
        if raw_write
        else f"it has had {changes} in-place change(s) in all"
    )
    raise RuntimeError(
        f"backward: the {what} that '{node.prim.name}' saved for its backward "
        f"pass was modified in place after the forward pass ({how}). Its gradient "
        "would be wrong. Compute a new tensor instead (x = x * 2, not x *= 2), or "
        "update parameters only after backward()."
    )


def _check_grad(node: Node, argnum: int, gi: Any) -> None:
    data = gi._data if isinstance(gi, Tensor) else gi
    xp = backend.array_namespace(data)
    if backend.is_floating(data.dtype) and not bool(xp.all(xp.isfinite(data))):
        bad = "nan" if bool(xp.any(xp.isnan(data))) else "inf"
        stack = getattr(node, "where", None)
        where = "".join(stack[-3:]) if stack else ""
        raise anomaly.AnomalyError(
            f"detect_anomaly: backward of '{node.prim.name}' produced {bad} in the gradient of "
            f"its input {argnum} (shape {data.shape}). The operation was created at:\n{where}"
        )


def _freed(node: Node) -> RuntimeError:
    return RuntimeError(
        f"backward: the graph through '{node.prim.name}' ({_describe_edge(node)}) was freed "
        "by an earlier backward(). Pass retain_graph=True to the first backward() to "
        "backpropagate through it again, or recompute the forward pass."
    )


def edge_of(t: Tensor) -> Node | Tensor:
    """Where ``t`` is in the graph: its node, or the leaf itself."""
    return t if t._node is None else t._node


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
    wanted: dict[Any, list[int]] | None = None
    if inputs is not None:
        wanted = {}
        for i, t in enumerate(inputs):
            wanted.setdefault(edge_of(t), []).append(i)
    callbacks: list[Callable[[], None]] = []
    token = _callbacks.set(callbacks)
    try:
        found = _walk(edge_of(root), seed, retain_graph, create_graph, wanted)
    finally:
        _callbacks.reset(token)
    if wanted is not None:
        assert inputs is not None
        results: list[Any] = [None] * len(inputs)
        for edge, g in found:
            for i in wanted[edge]:
                results[i] = g
        return results
    if create_graph:
        _store_graph_grads(found)
    else:
        _store_array_grads(found)
    for fn in callbacks:  # queued by hooks during the pass: run once its results are stored
        fn()
    return []


def _walk(
    root: Node | Tensor,
    seed: Any,
    retain_graph: bool,
    create_graph: bool,
    wanted: dict[Any, list[int]] | None,
) -> list[tuple[Any, Any]]:
    """The backward pass: the one per-node core of the engine.

    Visits the graph's nodes in reverse topological order (a leaf tensor is its own node,
    where its gradient ends); at each it runs the hooks, keeps the gradient if it is asked
    for (a leaf's or a retained one; with ``wanted``, those of the requested inputs),
    checks that nothing saved was changed in place, asks the rule (``Primitive.dispatch``)
    for the gradients of the inputs that need one, fits each to its input (``_fit``), adds
    it to what that input's node has received, and releases what the node saved. Returns
    the (tensor, gradient) pairs kept (with ``wanted``: (edge, gradient)).

    What the common case (``loss.backward()`` on arrays) does not need costs it one test
    each: requested inputs (``wanted``), a recorded backward pass (``create_graph``), the
    anomaly checks.
    """
    order: list[Any] = toposort(root)
    grads: dict[Any, Any] = {root: seed}
    # The nodes whose gradient is a sum this pass allocated: safe to add into in place.
    # (Keyed by node, not by the array's id: a node gets no more gradient once visited.)
    owned: set[Any] = set()
    found: list[tuple[Any, Any]] = []
    anomaly_on = anomaly._enabled.get()
    relevant: set[Any] | None = None
    if wanted is not None:
        # Only the part of the graph on a path from root to an input: nothing below the
        # inputs is computed, hooked or freed (as torch.autograd.grad).
        relevant = set()
        for node in order:  # parents before children
            if node in wanted or any(p in relevant for p in node._prev):
                relevant.add(node)
    # Hooks and rules see the gradients unrecorded, unless the pass itself is recorded. The
    # switch is this thread's (a ContextVar): other threads keep recording.
    mode = grad_mode._enabled.set(create_graph)
    # IEEE results without warnings, as PyTorch: sqrt's rule at 0 gives inf, and so on
    # (detect_anomaly() is the tool that reports them). Entered at the first op whose rules
    # can divide by zero (Primitive.quiet): ~1 µs a pass saved on relu/linear-only graphs.
    quiet: Any = None
    node_type, ndarray = Node, np.ndarray
    pop, grads_pop, grads_get = order.pop, grads.pop, grads.get
    try:
        while order:
            node = pop()  # drop the list's reference: the node can be freed after
            g = grads_pop(node, None)
            if g is None or (relevant is not None and node not in relevant):
                continue
            if node._hooks:
                g = _run_hooks(node, g, create_graph)
            if type(node) is not node_type:  # a leaf: its gradient ends here
                if wanted is None or node in wanted:
                    found.append((node, g))
                continue
            if wanted is not None:
                if node in wanted:
                    found.append((node, g))
            elif node.retained is not None:
                t = node.retained()
                if t is not None:
                    found.append((t, g))
            saved = node.saved
            if saved is None:
                raise _freed(node)
            # Read at each node, not once: a hook may change a tensor in place during the pass.
            if node.stamp != _clock[0]:  # something was changed in place since: was it saved?
                _check_saved(node)
            prim = node.prim
            if quiet is None and (prim.quiet or create_graph):
                # (NumPy's warnings switch; other libraries do not warn)
                quiet = np.errstate(divide="ignore", invalid="ignore")
                quiet.__enter__()
            needed = node.parents
            edges = node._prev
            if relevant is not None:  # only inputs that lead to a requested one: no work
                pairs = [(i, e) for i, e in zip(needed, edges, strict=True) if e in relevant]
                needed = [i for i, _ in pairs]
                edges = [e for _, e in pairs]
            kwargs = node.kwargs
            if prim.residual:  # the rules take what the forward pass kept for them
                kwargs = {**kwargs, "residual": None if create_graph else node.residual}
            if create_graph:  # the rules run on Tensors: the backward pass is recorded
                gis = prim.dispatch(needed, _as_tensor(g), _output(node), *node.args, **kwargs)
            else:  # on the arrays the forward pass saw
                ans: Any = node.ans
                if ans is None:
                    ans = node  # (it stands for the output it did not keep)
                rules = prim.rules
                if len(needed) == 1 and rules:
                    # One input needs a gradient and the rules are per input (defvjp): its
                    # rule directly, as Primitive._per_input would (a frame and a list less).
                    i = needed[0]
                    rule = rules[i] if i < len(rules) else None
                    if rule is None:
                        gis = prim.dispatch(needed, g, ans, *saved, **kwargs)  # (it raises)
                    else:
                        gis = (rule(g, ans, *saved, **kwargs),)
                else:
                    gis = prim.dispatch(needed, g, ans, *saved, **kwargs)
            k = 0
            for parent in edges:
                gi = gis[k]
                target = parent if type(parent) is node_type else parent._data  # (shape, dtype)
                # (Tested here, not only in _fit: most gradients already fit; saves a call.)
                if gi.shape != target.shape or gi.dtype is not target.dtype:
                    gi = _fit(gi, target, create_graph)
                if anomaly_on:
                    _check_grad(node, needed[k], gi)
                k += 1  # noqa: SIM113 (no tuple per edge)
                prev = grads_get(parent)
                if prev is None:
                    grads[parent] = gi
                elif parent in owned:
                    prev += gi  # our own buffer: no temporary
                else:
                    total = grads[parent] = prev + gi
                    if type(total) is ndarray:  # (0-d sums are NumPy scalars)
                        owned.add(parent)
            if not retain_graph:
                # What the forward pass saved goes now (Node.release, inline: a call less
                # per node). Shape and dtype stay: a retained child still fits to them.
                node.saved = node.ans = None
                node.args = node._prev = ()
                if prim.residual:
                    node.residual = None
    finally:
        if quiet is not None:
            quiet.__exit__(None, None, None)
        grad_mode._enabled.reset(mode)
    return found


def _output(node: Node) -> Any:
    """The output as the rules get it in a recorded pass: a Tensor on the saved array whose
    node is this one (so that a rule reading it, exp's ``g * ans``, is differentiable
    through it), or the node itself when the output was not kept (it stands for it)."""
    ans = node.ans
    if ans is None:
        return node
    t = Tensor._wrap(ans)
    t._requires_grad = True
    t._node = node
    t._version = node.out_version
    return t


def _fit(gi: Any, target: Any, create_graph: bool) -> Any:
    """Fit a rule's gradient to its input, for every rule, here: sum a broadcast gradient
    back to the input's shape and cast it to the input's dtype."""
    if not create_graph and not isinstance(gi, np.ndarray | np.generic):  # another library's
        # (a parent node is only its output's shape and dtype: the gradient's library alone)
        xp = backend.array_namespace(
            gi, *(() if type(target) is Node else (target,)), op="backward"
        )
        if gi.shape != target.shape:
            gi = sum_to_any(xp, gi, target.shape)
        return gi if gi.dtype == target.dtype else xp.astype(gi, target.dtype)
    if gi.shape != target.shape:
        gi = sum_to(gi, target.shape) if create_graph else _sum_to(gi, target.shape)
    if gi.dtype is not target.dtype and gi.dtype != target.dtype:  # (`is` first: fast)
        gi = gi.astype(target.dtype)
    return gi


def _as_tensor(g: Any) -> Tensor:
    return g if isinstance(g, Tensor) else Tensor._wrap(g)


# The callbacks queued during the backward pass running in this thread (None outside one).
_callbacks: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "chainrule.backward_callbacks", default=None
)


def queue_callback(fn: Callable[[], None]) -> None:
    """Run ``fn()`` once the backward pass now running has stored its gradients.

    Call it from a hook during a pass (PyTorch's ``Variable._execution_engine.queue_callback``):
    data-parallel training starts an all-reduce from each gradient hook and waits for them
    all here, after the pass has finished. Callbacks run in the order they were queued,
    only if the pass succeeds, and in the thread that ran it.
    """
    callbacks = _callbacks.get()
    if callbacks is None:
        raise RuntimeError(
            "queue_callback: no backward pass is running in this thread; call it from a "
            "hook (register_hook) while backward() runs."
        )
    callbacks.append(fn)


def _run_hooks(node: Node | Tensor, g: Any, create_graph: bool) -> Any:
    assert node._hooks is not None
    shape = node.shape
    for hook in list(node._hooks.values()):
        as_tensor = g if isinstance(g, Tensor) else Tensor._wrap(g)
        new = hook(as_tensor)
        if new is not None:
            new_data = new._data if isinstance(new, Tensor) else _hook_array(new, g)
            if new_data.shape != shape:
                raise ValueError(
                    f"register_hook: a hook on {_describe_edge(node)} returned a gradient of "
                    f"shape {new_data.shape}; it must keep the tensor's shape {shape}."
                )
            flags = getattr(new_data, "flags", None)  # (NumPy's; other libraries: writable)
            if flags is not None and not flags.writeable:
                new_data = new_data.copy()  # it may become a .grad, which must be writable
            g = new if create_graph and isinstance(new, Tensor) else new_data
    return g


def _hook_array(new: Any, g: Any) -> Any:
    """A hook's returned array, in the array library of the gradient it replaces."""
    like = g._data if isinstance(g, Tensor) else g
    numpy = isinstance(like, np.ndarray | np.generic)
    if numpy or backend.is_library_array(new):
        return np.asarray(new) if numpy else new
    return backend.array_namespace(like).asarray(new)


def _own(g: Any) -> Any:
    """A copy of ``g`` in its own library."""
    if isinstance(g, np.ndarray | np.generic):
        return g.copy()
    return backend.array_namespace(g).asarray(g, copy=True)


def _store_array_grads(found: list[tuple[Tensor, np.ndarray]]) -> None:
    """Add the gradients of a normal backward pass (arrays) to the tensors' ``.grad``."""
    stored: set[int] = set()
    for t, g in found:
        if _grad_stores:
            store = _grad_stores.get(id(t))
            if store is not None:  # .grad lives in memory its owner manages (DDP's buckets)
                store(t, g)
                continue
        # A gradient array may be a view, or be shared with another tensor (the rule of
        # `+` passes g on unchanged): give .grad its own memory before anyone updates it.
        # (Read-only arrays come only from hooks, which copy them: no flags check here.)
        # (An array without .base, of another library: copied, as it may be a view.)
        numpy = type(g) is np.ndarray or isinstance(g, np.ndarray)
        if not numpy or g.base is not None or id(g) in stored:
            g = _own(g)
        stored.add(id(g))
        if t.grad is None:
            t.grad = Tensor._wrap(g)
        else:  # a new array, as `+` gives (the old .grad may be held elsewhere)
            t.grad = Tensor._wrap(t.grad._data + g)
    if _post_accumulate_hooks:
        _run_post_accumulate_hooks(found)


def _store_graph_grads(found: list[tuple[Tensor, Any]]) -> None:
    """Add the gradients of a recorded backward pass (create_graph) to ``.grad``."""
    for t, g in found:
        # Recorded gradients are kept as they are (they can be differentiated again); an
        # array a hook returned gets its own memory.
        gt = g if isinstance(g, Tensor) else Tensor._wrap(_own(g))
        if t.grad is None:
            t.grad = gt
        else:
            with grad_mode.enable_grad():
                t.grad = t.grad + gt
    if _post_accumulate_hooks:
        _run_post_accumulate_hooks(found)


# Leaves whose .grad another component stores itself: ``store(t, g)`` replaces the add to
# ``.grad`` of a normal (array) backward pass. DistributedDataParallel keeps each .grad as a
# view into a flat all-reduce buffer, so the gradient must be written into that memory, not
# bound to a new array. Keyed by id, as the post-accumulate hooks below; one per tensor.
_grad_stores: dict[int, Callable[[Tensor, np.ndarray], None]] = {}


def register_grad_store(t: Tensor, store: Callable[[Tensor, np.ndarray], None]) -> RemovableHandle:
    """Let ``store(t, g)`` put the leaf ``t``'s gradient ``g`` of each array backward pass
    into ``t.grad`` (instead of ``t.grad = t.grad + g``). ``g`` may be shared with other
    tensors: read it, never keep or change it. A recorded pass (``create_graph``) still
    binds a new ``.grad``."""
    if t._node is not None or not t._requires_grad:
        raise RuntimeError(
            "register_grad_store: only a leaf tensor that requires grad has its .grad "
            "accumulated by backward()."
        )
    if id(t) in _grad_stores:
        raise RuntimeError(
            f"register_grad_store: the {describe(t)} already has a gradient store (one "
            "DistributedDataParallel per parameter); remove the first one's handle."
        )
    _grad_stores[id(t)] = store
    weakref.finalize(t, _grad_stores.pop, id(t), None)
    return RemovableHandle(_grad_stores, id(t))


# Hooks that run after a leaf's .grad was updated (register_post_accumulate_grad_hook),
# kept beside the tensors rather than in a slot of each: most tensors never have one, and
# the table costs the hot path one truth test. Keyed by id (a Tensor's == is elementwise,
# so it cannot be a dict key by value); an entry goes when its tensor does.
_post_accumulate_hooks: dict[int, dict[int, Callable[[Tensor], None]]] = {}
_post_hook_keys = itertools.count()


def register_post_accumulate_grad_hook(
    t: Tensor, hook: Callable[[Tensor], None]
) -> RemovableHandle:
    """``hook(t)`` after a backward pass has added to the ``.grad`` of the leaf ``t``."""
    if t._node is not None or not t._requires_grad:
        raise RuntimeError(
            "register_post_accumulate_grad_hook: only a leaf tensor that requires grad has "
            "its .grad accumulated; register_hook watches the gradient of any tensor."
        )
    hooks = _post_accumulate_hooks.get(id(t))
    if hooks is None:
        hooks = _post_accumulate_hooks[id(t)] = {}
        weakref.finalize(t, _post_accumulate_hooks.pop, id(t), None)
    key = next(_post_hook_keys)
    hooks[key] = hook
    return RemovableHandle(hooks, key)


def _run_post_accumulate_hooks(found: list[tuple[Tensor, Any]]) -> None:
    for t, _ in found:
        hooks = _post_accumulate_hooks.get(id(t))
        if hooks:
            for hook in list(hooks.values()):
                hook(t)
