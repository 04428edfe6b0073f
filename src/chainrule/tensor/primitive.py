"""Primitives and their vector-Jacobian products: the one registry of the tensor engine.

A *primitive* is a NumPy function that the engine records. Its VJP rules say how a
gradient ``g`` of the output flows back to each input::

    exp = primitive(np.exp, "exp")
    defvjp(exp, lambda g, ans, x: g * ans)          # d/dx e^x = e^x: reuse the output

A rule receives the incoming gradient ``g``, the forward output ``ans`` and the forward
inputs, and returns the gradient for *one* input, in the shape of the output's broadcast:
the engine sums it back to the input's shape (``sum_to``) and casts it to the input's dtype,
once, for every rule. A rule is only called for inputs that require a gradient.

Where the gradients of several inputs are best read (or computed) together, one rule can
give them all: ``defvjp_argnums(linear, rule)`` with ``rule(argnums, g, ans, *inputs)``
returning ∂ℓ/∂h, ∂ℓ/∂Ω and ∂ℓ/∂β of the lecture's layer for the inputs in ``argnums``.

Rules are written with operators and array methods that NumPy arrays and Tensors share
(``*``, ``@``, ``.T``, ``.sum(axis, keepdims)``, ``.reshape``) and with primitives such as
``where``. A normal backward pass calls them on NumPy arrays (fast); with
``create_graph=True`` it calls them on Tensors, so the backward pass is itself recorded and
can be differentiated again.
"""

from __future__ import annotations

import dis
import functools
import inspect
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.tensor import anomaly, backend, grad_mode
from chainrule.tensor.node import UNREAD, Node, NotSaved
from chainrule.tensor.op_errors import _check_forward, _explain
from chainrule.tensor.versions import _clock, fingerprint

# Re-exported: the engine's modules import them from here.
from chainrule.tensor.versions import mark_handed_out as mark_handed_out
from chainrule.tensor.versions import mark_modified as mark_modified

if TYPE_CHECKING:
    from chainrule.tensor.tensor import Tensor

VJPRule = Callable[..., Any]
ArgnumRule = Callable[[int, Any, Any, Sequence[Any], dict[str, Any]], Any]
ArgnumsRule = Callable[..., Sequence[Any]]


class Primitive:
    """A recorded operation: a NumPy function plus the VJP rule of each of its inputs.

    ``fn`` computes on NumPy arrays; ``any_fn(xp, *args, **kwargs)`` computes on the arrays
    of any other array API library ``xp`` (CuPy, array-api-strict), which the inputs choose
    (``chainrule.tensor.backend``). An operation without ``any_fn`` runs on NumPy only.
    """

    __slots__ = (
        "any_fn",
        "argnum_rule",
        "argnums_rule",
        "blank",
        "differentiable",
        "dispatch",
        "fn",
        "name",
        "quiet",
        "residual",
        "retain_inputs",
        "retain_output",
        "rules",
        "unread",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        differentiable: bool = True,
        residual: bool = False,
        any_fn: Callable[..., Any] | None = None,
    ) -> None:
        self.fn = fn
        self.any_fn = any_fn
        self.name = name
        self.differentiable = differentiable  # False: results never require a gradient
        # True: fn returns (output, residual), an array its rules reuse (passed to them as
        # ``residual=`` in a normal backward pass), e.g. the softmax of a cross-entropy.
        self.residual = residual
        self.rules: tuple[VJPRule | None, ...] = ()
        self.argnum_rule: ArgnumRule | None = None
        self.argnums_rule: ArgnumsRule | None = None
        # What backward calls: ``dispatch(needed, g, ans, *inputs, **kwargs)`` gives the
        # gradients of the inputs at positions ``needed``. Set with the rules (defvjp...):
        # a joint rule is called directly, one frame less per node in every backward pass.
        self.dispatch: Callable[..., Sequence[Any]] = self._per_input
        # True: the rules may divide by zero or meet inf - inf on finite inputs (sqrt's at
        # 0, log's, division's), so a normal backward pass runs them under
        # np.errstate(divide="ignore", invalid="ignore"): IEEE results without warnings, as
        # PyTorch. False for rules that only multiply, add and select (linear, relu,
        # cross-entropy): they skip that context (~1 µs a pass) and can only warn when a
        # gradient or saved input is already inf or nan.
        self.quiet = True
        # What the rules read (see defvjp): the positions of the input tensors whose arrays
        # are kept for backward (None: all of them), and whether the output's is. Every
        # other tensor is kept as its shape and dtype only (chainrule.tensor.node.NotSaved).
        self.retain_inputs: tuple[int, ...] | None = None
        self.retain_output = True
        # The input positions that no rule reads at all, not even as a shape (add's, exp's:
        # found in the rules' code by defvjp, see _unread_inputs): kept as UNREAD, no
        # NotSaved made. ``blank``: when that is every input of a call of the rules' arity,
        # the row of UNREADs itself, shared by all the nodes (one store per operation).
        self.unread: frozenset[int] = frozenset()
        self.blank: tuple[Any, ...] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the inputs' arrays; record it when an input requires a gradient.

        With no Tensor among the inputs, this is the plain NumPy function: VJP rules call
        primitives on arrays during a normal backward pass and must pay nothing for it.
        This runs for every operation, so it is written for speed: one pass over the
        inputs (lists made only when a Tensor is met), the result tensor and its node
        filled in place (no __init__ frames), the context built from what that pass
        collected.
        """
        tensor_type = _Tensor
        raw: list[Any] | None = None  # args with each Tensor replaced by its array
        parents: list[int] | None = None  # positions of the inputs that require a gradient
        prev: list[Any] | None = None  # and their edges: each one's node, or the leaf itself
        stamp = 0
        foreign = False  # an array of another library than NumPy among the inputs
        data: Any  # a NumPy array, or another array library's
        i = 0
        for a in args:
            if isinstance(a, tensor_type):  # type: ignore[arg-type]
                data = a._data
                if raw is None:
                    raw = list(args)
                    stamp = _clock[0]
                raw[i] = data
                # (one exact type test for NumPy's arrays: other libraries, subclasses and
                # NumPy scalars take the isinstance)
                if type(data) is not _ndarray and not isinstance(data, _NUMPY):
                    foreign = True
                if a._requires_grad:
                    edge = a._node
                    if parents is None:
                        parents, prev = [i], [a if edge is None else edge]
                    else:
                        parents.append(i)
                        prev.append(a if edge is None else edge)  # type: ignore[union-attr]
                if a._fp is not None:
                    # Its array was handed out (.data, .numpy(), from_numpy): sample it as
                    # saved, so that backward can tell if it was written through it since.
                    a._fp = fingerprint(data)
                    stamp = ~_clock[0]
            elif type(a) is not _ndarray and type(a) not in _PLAIN and _foreign_array(a):
                foreign = True
            i += 1  # noqa: SIM113 (no tuple per input)
        if kwargs:
            for value in kwargs.values():
                if isinstance(value, tensor_type):  # type: ignore[arg-type]
                    # A Tensor by keyword: record it as the positional input it binds to.
                    return self(*_positional(self, args, kwargs))
        fn = self._on(raw or args) if foreign else self.fn
        if raw is None:
            # Arrays only (VJP rules in a normal backward pass): just compute, record nothing.
            return fn(*args, **kwargs)[0] if self.residual else fn(*args, **kwargs)
        try:
            out = fn(*raw, **kwargs)
        except (ValueError, TypeError, IndexError) as exc:
            raise _explain(self, raw, exc) from None
        residual = None
        if self.residual:
            out, residual = out
        if type(out) is not _ndarray and isinstance(out, _HOST_RESULTS):
            # NumPy returns scalars from 0-d computations (arrays of other libraries stay:
            # a move's output lives on its device even when its input was NumPy's)
            out = np.asarray(out)
        # Tensor._wrap(out), inline (a frame less per operation): keep the two alike.
        t = _new(tensor_type)  # type: ignore[arg-type]
        t._data = out
        t._node = t._hooks = t._fp = t.grad = None
        t._version = [0, 0]
        t.name = ""
        checking = _anomaly_enabled()
        if checking:
            _check_forward(self, out, raw)
        if (
            prev is None
            or not _grad_enabled()
            or not self.differentiable
            or (
                out.dtype.kind != "f"
                if type(out) is _ndarray
                else not backend.is_floating(out.dtype)
            )
        ):
            t._requires_grad = False
            return t
        t._requires_grad = True
        node = t._node = _new(Node)
        node._prev = prev
        node.prim = self
        node.parents = parents  # type: ignore[assignment]
        # (An empty kwargs dict is not kept: a shared one lets it go back to the free list.)
        node.kwargs = kwargs or _NO_KWARGS
        node.stamp = stamp
        node._hooks = node.retained = None
        keep = self.retain_inputs
        blank = self.blank
        if blank is not None and len(blank) == len(args):  # no rule reads any input
            node.args = node.saved = blank
        elif keep is None:  # the rules may read every input (the default)
            node.args = args
            node.saved = raw
        else:  # keep only the declared inputs; the others as shape and dtype, or nothing
            kept = list(args)
            unread = self.unread
            i = 0
            for a in args:
                if i in unread:
                    raw[i] = kept[i] = UNREAD
                elif isinstance(a, tensor_type) and i not in keep:  # type: ignore[arg-type]
                    data = raw[i]
                    p = raw[i] = kept[i] = _new(NotSaved)
                    p.shape = data.shape
                    p.dtype = data.dtype
                    p.prim = self
                    p.role = i
                i += 1  # noqa: SIM113 (no tuple per input)
            node.args = kept
            node.saved = raw
        node.shape = out.shape
        node.dtype = out.dtype
        if self.retain_output:
            node.ans = out
            node.out_version = t._version
        else:
            node.ans = None  # the node itself stands for it (Node is a NotSaved)
        if self.residual:
            node.residual = residual
        if checking:
            node.where = traceback.format_stack()[:-1]
        return t

    def _on(self, arrays: Sequence[Any]) -> Callable[..., Any]:
        """``fn`` for arrays of a library other than NumPy: ``any_fn`` bound to it."""
        xp = backend.array_namespace(*arrays, op=self.name)
        if xp is np:  # (NumPy arrays only inside a container argument)
            return self.fn
        any_fn = self.any_fn
        if any_fn is None:
            raise TypeError(
                f"{self.name}: this operation computes on NumPy arrays only, and was given "
                f"{backend.library_name(xp)} arrays; convert them with .cpu() or np.asarray."
            )
        return functools.partial(any_fn, xp)

    def input_grads(
        self,
        needed: Sequence[int],
        g: Any,
        ans: Any,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        residual: Any = None,
    ) -> Sequence[Any]:
        """The gradients for the inputs at positions ``needed``, before they are fitted to
        the inputs' shapes.

        ``args`` are the inputs as the rules get them (arrays in a normal backward pass,
        Tensors when it is recorded); ``residual`` is what a primitive_with_residual kept
        (None when the rules must recompute it). The rules are reached through
        ``self.dispatch``, the one place where they are dispatched.
        """
        if self.residual:
            kwargs = {**kwargs, "residual": residual}
        return self.dispatch(needed, g, ans, *args, **kwargs)

    def _per_input(self, needed: Sequence[int], g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
        """``dispatch`` for rules registered one per input (``defvjp``)."""
        rules = self.rules
        grads = []
        for i in needed:
            rule = rules[i] if i < len(rules) else None
            if rule is None:
                raise TypeError(
                    f"{self.name}: input {i} is not differentiable; pass it as a constant "
                    "(a NumPy array or a tensor with requires_grad=False)."
                )
            grads.append(rule(g, ans, *args, **kwargs) if kwargs else rule(g, ans, *args))
        return grads

    def _one_rule(self, needed: Sequence[int], g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
        """``dispatch`` for one rule of every input (``defvjp_argnum``)."""
        one = self.argnum_rule
        assert one is not None
        return [one(i, g, ans, args, kwargs) for i in needed]

    def vjp(
        self, argnum: int, g: Any, ans: Any, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Any:
        """The gradient for input ``argnum``, before it is fitted to the input's shape."""
        return self.input_grads((argnum,), g, ans, args, kwargs)[0]

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def primitive(
    fn: Callable[..., Any], name: str | None = None, any_fn: Callable[..., Any] | None = None
) -> Primitive:
    """Make ``fn`` (a function of NumPy arrays) a recorded operation; ``any_fn(xp, ...)``
    computes it on another array library ``xp`` (see ``standard`` for the common case)."""
    return Primitive(fn, name or fn.__name__, any_fn=any_fn)


def standard(name: str) -> Callable[..., Any]:
    """``any_fn`` for an operation the array API standard has under ``name``:
    ``xp.<name>(*args, **kwargs)``."""

    def call(xp: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(xp, name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = f"xp.{name}"
    return call


def primitive_with_residual(
    fn: Callable[..., Any], name: str | None = None, any_fn: Callable[..., Any] | None = None
) -> Primitive:
    """Like ``primitive``, for an ``fn`` returning ``(output, residual)``: the residual is
    kept for the backward pass and handed to the rules as ``residual=`` (None when the
    rules run on Tensors, with create_graph, where they must recompute it differentiably)."""
    return Primitive(fn, name or fn.__name__, residual=True, any_fn=any_fn)


def nondifferentiable(
    fn: Callable[..., Any], name: str | None = None, any_fn: Callable[..., Any] | None = None
) -> Primitive:
    """An operation whose result carries no gradient (comparisons, sign, argmax)."""
    return Primitive(fn, name or fn.__name__, differentiable=False, any_fn=any_fn)


def defvjp(
    prim: Primitive,
    *rules: VJPRule | None,
    retain_inputs: Sequence[int] | None = None,
    retain_output: bool = True,
) -> None:
    """Register one VJP rule per input: ``rule(g, ans, *inputs, **kwargs)``; None = no grad.

    ``retain_inputs`` and ``retain_output`` say what the rules read (Chainer's
    ``retain_inputs``/``retain_outputs``): the positions of the input tensors whose values
    they use, and whether they use the output ``ans``. The engine keeps only those for the
    backward pass; every other tensor is passed to the rules as a ``NotSaved`` with its
    ``shape``, ``dtype`` and ``ndim`` (enough for ``g.reshape(x.shape)``), and its memory
    goes as soon as the user drops it. The defaults keep everything, which is always
    correct. Arguments that are not tensors (numbers, shapes, axes, indices) are always
    kept. Example: ``defvjp(exp, lambda g, ans, x: g * ans, retain_inputs=())``.
    """
    prim.rules = rules
    prim.argnum_rule = prim.argnums_rule = None
    prim.dispatch = prim._per_input
    _declare(prim, retain_inputs, retain_output)
    if prim.retain_inputs is not None:  # (the default keeps every input, read or not)
        arity, unread = _unread_inputs(rules)
        prim.unread = frozenset(unread) - set(prim.retain_inputs)
        full = arity > 0 and prim.unread == set(range(arity))
        prim.blank = (UNREAD,) * arity if full else None


def defvjp_argnum(
    prim: Primitive,
    rule: ArgnumRule,
    retain_inputs: Sequence[int] | None = None,
    retain_output: bool = True,
) -> None:
    """Register one rule for all inputs: ``rule(argnum, g, ans, inputs, kwargs)``.

    ``retain_inputs``, ``retain_output``: what the rule reads, as for ``defvjp``.
    """
    prim.argnum_rule = rule
    prim.rules = ()
    prim.argnums_rule = None
    prim.dispatch = prim._one_rule
    _declare(prim, retain_inputs, retain_output)


def defvjp_argnums(
    prim: Primitive,
    rule: ArgnumsRule,
    retain_inputs: Sequence[int] | None = None,
    retain_output: bool = True,
) -> None:
    """Register one rule that returns the gradients of several inputs at once:
    ``rule(argnums, g, ans, *inputs, **kwargs)`` gives one gradient per position in
    ``argnums`` (the inputs that need one), in that order.

    For operations whose input gradients share work or are best read together, as the
    lecture's layer f = β + Ω h: one call gives ∂ℓ/∂h, ∂ℓ/∂Ω and ∂ℓ/∂β.
    ``retain_inputs``, ``retain_output``: what the rule reads, as for ``defvjp``.
    """
    prim.argnums_rule = rule
    prim.rules = ()
    prim.argnum_rule = None
    prim.dispatch = rule
    _declare(prim, retain_inputs, retain_output)


def _unread_inputs(rules: Sequence[VJPRule | None]) -> tuple[int, set[int]]:
    """The inputs that no rule reads at all: ``(arity, unread positions)``.

    A rule ``lambda g, ans, x, y: g`` never loads ``x`` or ``y``: nothing of them need be
    kept, not even a NotSaved with their shape (the engine fits a gradient to its input
    from the graph's edge). Read from each rule's code: a parameter that no instruction
    loads (and no inner function captures) is unread. Anything this cannot see through (a
    rule without Python code, ``*args``, ``locals()``, ``eval``) counts as reading all.
    The arity is the number of inputs the rules take (0 when they do not agree).
    """
    arity = -1
    unread: set[int] | None = None
    for rule in rules:
        if rule is None:
            continue
        code = getattr(rule, "__code__", None)
        if (
            code is None
            or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
            or getattr(rule, "__self__", None) is not None  # (a bound method)
            or _SEES_LOCALS & set(code.co_names)
        ):
            return 0, set()
        inputs = code.co_argcount - 2  # (after g and ans)
        if arity not in (-1, inputs):
            return 0, set()
        arity = inputs
        loaded = set(code.co_cellvars)
        for op in dis.get_instructions(code):
            if op.opname.startswith("LOAD"):  # (3.13's LOAD_FAST_LOAD_FAST: two names)
                names = op.argval if isinstance(op.argval, tuple) else (op.argval,)
                loaded.update(name for name in names if isinstance(name, str))
        mine = {i for i, name in enumerate(code.co_varnames[2 : 2 + inputs]) if name not in loaded}
        unread = mine if unread is None else unread & mine
    return max(arity, 0), unread or set()


# Names through which a rule could read its parameters without loading them.
_SEES_LOCALS = frozenset({"locals", "vars", "eval", "exec", "_getframe", "currentframe"})


def _declare(prim: Primitive, retain_inputs: Sequence[int] | None, retain_output: bool) -> None:
    if retain_inputs is not None:
        bad = [i for i in retain_inputs if not isinstance(i, int) or i < 0]
        if bad:
            raise ValueError(
                f"defvjp({prim.name}): retain_inputs must hold input positions (ints >= 0), "
                f"got {tuple(retain_inputs)!r}."
            )
        retain_inputs = tuple(sorted(set(retain_inputs)))
    prim.retain_inputs = retain_inputs
    prim.retain_output = bool(retain_output)
    prim.unread, prim.blank = frozenset(), None  # (defvjp finds them for per-input rules)


_ndarray = np.ndarray
_NUMPY = (np.ndarray, np.generic)  # NumPy's arrays (and their subclasses) and scalars
# Argument types that are never another library's array: one set lookup per argument.
_PLAIN = frozenset({_ndarray, float, int, bool, tuple, list, slice, type(None), str, np.dtype})


def _foreign_array(a: Any) -> bool:
    # (a class, such as the dtype np.float32, has the methods of its arrays: not an array)
    return not isinstance(a, (*_NUMPY, np.dtype, type)) and backend.is_library_array(a)


_grad_enabled = grad_mode._enabled.get  # (bound once: read by every operation)
_anomaly_enabled = anomaly._enabled.get
_NO_KWARGS: dict[str, Any] = {}  # never written to
# Results that Primitive.__call__ makes an ndarray of (NumPy's 0-d scalars, subclasses).
_HOST_RESULTS = (np.ndarray, np.generic, float, int)


def _positional(prim: Primitive, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """All of a call's arguments as positional ones, so that a Tensor given by keyword
    (``linear(x, w, bias=b)``, ``clip(x, min=t)``) is an input like any other: recorded,
    and given its gradient by the rule of its position."""
    try:
        params = list(inspect.signature(prim.fn).parameters.values())
    except (TypeError, ValueError):  # a NumPy ufunc or builtin: no signature to bind to
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in positional]
    for key in kwargs:
        if key not in names[len(args) :]:
            raise TypeError(
                f"{prim.name}: the argument {key!r} cannot take a tensor by keyword here; "
                f"pass it by position: {prim.name}({', '.join(names) or '...'})."
            )
    last = max(names.index(key) for key in kwargs)
    out = list(args)
    for p in positional[len(args) : last + 1]:
        if p.name in kwargs:
            out.append(kwargs[p.name])
        elif p.default is not p.empty:
            out.append(p.default)
        else:
            raise TypeError(f"{prim.name}: the argument {p.name!r} is missing.")
    return out


_new = object.__new__
_Tensor: type[Tensor] | None = None  # set by chainrule.tensor.tensor (import cycle)
