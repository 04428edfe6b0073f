"""How one transform call sees its inputs and hands back its results.

Shared by every transform in ``chainrule.func.transforms``: the differentiated arguments
become the call's own graph nodes (fresh leaves, or identity nodes linked to an outer
graph), the call decides whether its results must carry a graph, and it exports results
as NumPy arrays or Tensors (the rules are in ``chainrule.func``'s docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.tensor import grad_mode
from chainrule.tensor.backward import edge_of, run_backward
from chainrule.tensor.primitive import defvjp, primitive
from chainrule.tensor.tensor import Tensor

Argnums = int | tuple[int, ...]
Fn = Callable[..., Any]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


# The link between an argument that carries a graph and the copy a transform differentiates.
_input = primitive(_identity, "input", lambda xp, x: x)
defvjp(_input, lambda g, ans, x: g, retain_inputs=(), retain_output=False)


def check_argnums(op: str, argnums: Argnums) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if (
        not isinstance(nums, tuple)
        or not nums
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in nums)
    ):
        raise TypeError(
            f"{op}: argnums must be an int or a non-empty tuple of ints (the positions of "
            f"the arguments to differentiate), got {argnums!r}."
        )
    return nums


def resolve(op: str, argnums: Argnums, n: int) -> tuple[int, ...]:
    """``argnums`` as non-negative positions into ``n`` positional arguments."""
    out: list[int] = []
    for i in check_argnums(op, argnums):
        if not -n <= i < n:
            valid = f"0..{n - 1} (or {-n}..-1)" if n else "none: pass the inputs positionally"
            raise ValueError(
                f"{op}: argnums={argnums!r} is out of range: f was called with {n} "
                f"positional argument(s), so valid positions are {valid}."
            )
        if i % n in out:
            raise ValueError(f"{op}: argnums={argnums!r} names argument {i % n} twice.")
        out.append(i % n)
    return tuple(out)


def array(op: str, a: Any, what: str) -> np.ndarray:
    """A differentiable input as an array: float Tensor, float NumPy array or Python float."""
    if isinstance(a, Tensor):
        arr = a._data
    elif isinstance(a, np.ndarray | np.generic):
        arr = np.asarray(a)
    elif isinstance(a, float | int) and not isinstance(a, bool):
        arr = Tensor(a)._data  # the engine's dtype policy for Python numbers
    else:
        raise TypeError(
            f"{op}: {what} is a {type(a).__name__}; differentiable inputs must be Tensors, "
            "NumPy arrays or Python floats (wrap lists with np.array([...]))."
        )
    if arr.dtype.kind != "f":
        example = f"{a!r}.0 instead of {a!r}" if isinstance(a, int) else "x.astype(np.float64)"
        raise TypeError(
            f"{op}: {what} has dtype {arr.dtype}; gradients need floating-point inputs (an "
            f"integer-valued function is piecewise constant). Pass {example}, or leave it "
            "out of argnums."
        )
    return arr


class Call:
    """One application of a transform: its inputs as graph nodes, and how to export results."""

    def __init__(self, op: str, args: Sequence[Any], nums: tuple[int, ...]) -> None:
        self.op = op
        self.grad_on = grad_mode.is_grad_enabled()
        self.tensors_in = any(isinstance(a, Tensor) for a in args)
        self.linked = False  # an input is an identity node linked to an outer graph
        self.leaves: set[Tensor] = set()
        # Arrays among the other arguments become constant Tensors, so that f may use Tensor
        # methods on any argument whichever argnums is chosen (no copy: f must not write).
        self.args = [Tensor._wrap(a) if isinstance(a, np.ndarray) else a for a in args]
        self.xs: list[Tensor] = []
        for i in nums:
            a = args[i]
            data = array(op, a, f"argument {i}")
            if isinstance(a, Tensor) and a._requires_grad and self.grad_on:
                with grad_mode.enable_grad():
                    x = _input(a)
                self.linked = True
            else:
                x = Tensor._wrap(data)
                x._requires_grad = True
                self.leaves.add(x)
            self.args[i] = x
            self.xs.append(x)
        self.outside = self.linked
        self.create_graph = False

    def run(self, f: Fn) -> Any:
        """Call ``f`` with recording on (a transform records even inside ``no_grad``)."""
        with grad_mode.enable_grad():
            return f(*self.args)

    def output(self, result: Any, scalar: bool = False, what: str = "f's output") -> Tensor:
        """Check one output of ``f``, and decide whether results must carry a graph."""
        if isinstance(result, Tensor):
            value = result
        else:
            if isinstance(result, tuple | list):
                raise TypeError(
                    f"{self.op}: f returned a {type(result).__name__}; it must return one "
                    "Tensor. Differentiate each output separately, or join them with "
                    "ops.concatenate / ops.stack."
                )
            value = Tensor._wrap(np.asarray(result))  # a constant: its derivatives are 0
        if value.dtype.kind != "f":
            raise TypeError(
                f"{self.op}: {what} has dtype {value.dtype}; only floating-point outputs "
                "have derivatives. Return a float tensor (e.g. out.double())."
            )
        if scalar and value.numel() != 1:
            raise ValueError(
                f"{self.op}: f must return a scalar (one element) but returned shape "
                f"{value.shape}. Reduce it (e.g. .sum() or .mean()), or use "
                f"vjp(f, x) with a cotangent of shape {value.shape}, or jacobian(f)(x) for "
                "every partial derivative."
            )
        if not self.outside:
            self.outside = reaches_outside(value, self.leaves)
        self.create_graph = self.grad_on and self.outside
        return value

    def backward(
        self,
        root: Tensor,
        seed: Any,
        *,
        create_graph: bool,
        xs: Sequence[Tensor] | None = None,
        retain: bool = True,
    ) -> list[Any]:
        """d root / d xs, with zeros (never None) for inputs the root does not depend on."""
        xs = self.xs if xs is None else xs
        if not root._requires_grad:
            grads: list[Any] = [None] * len(xs)
        else:
            if create_graph and not isinstance(seed, Tensor):
                seed = Tensor._wrap(np.asarray(seed))
            elif not create_graph and isinstance(seed, Tensor):
                seed = seed._data
            grads = run_backward(
                root,
                seed,
                retain_graph=retain or create_graph,
                create_graph=create_graph,
                inputs=list(xs),
            )
        return [np.zeros_like(x._data) if g is None else g for g, x in zip(grads, xs, strict=True)]

    def export(self, value: Any) -> Any:
        """A result as the user receives it (see the module docstring)."""
        if self.create_graph and isinstance(value, Tensor) and value._requires_grad:
            return value
        data = value._data if isinstance(value, Tensor) else np.asarray(value)
        data = data.copy()  # results never alias the graph's buffers or each other
        if self.tensors_in or self.create_graph:
            return Tensor._wrap(data)
        return data[()] if data.ndim == 0 else data


def reaches_outside(root: Tensor, mine: set[Tensor]) -> bool:
    """True when ``root``'s graph reaches a tensor that requires grad and is not in ``mine``."""
    if not root._requires_grad:
        return False
    own = {edge_of(t) for t in mine}
    stack: list[Any] = [edge_of(root)]
    seen: set[Any] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if not node._prev and node not in own:
            return True  # a leaf (or a freed node) of somebody else's graph
        stack.extend(node._prev)
    return False


def seed_like(out: Tensor, value: Any, op: str, what: str) -> Any:
    """A cotangent or tangent as an array (or a Tensor, kept for differentiation)."""
    data = array(op, value, what)
    if data.shape != out.shape:
        raise ValueError(
            f"{op}: {what} has shape {data.shape} but must have the shape {out.shape} of "
            "the value it pairs with."
        )
    if isinstance(value, Tensor) and value._requires_grad and grad_mode.is_grad_enabled():
        return value if value.dtype == out.dtype else value.astype(out.dtype)
    return data.astype(out.dtype, copy=False)


def tracked(v: Any) -> bool:
    return isinstance(v, Tensor) and v._requires_grad


def pairing(gs: Sequence[Any], vs: Sequence[Any]) -> tuple[Tensor | None, Any]:
    """A root and seed whose backward gives d/d(·) Σ_i <g_i, v_i> (None: identically 0)."""
    pairs = [(g, v) for g, v in zip(gs, vs, strict=True) if getattr(g, "_requires_grad", False)]
    if not pairs:
        return None, None
    if len(pairs) == 1:  # seeding g with v is the same, and records nothing extra
        return pairs[0]
    total = sum((g * v).sum() for g, v in pairs[1:]) + (pairs[0][0] * pairs[0][1]).sum()
    return total, np.ones((), total.dtype)


def pack(values: list[Any], argnums: Argnums) -> Any:
    return values[0] if isinstance(argnums, int) else tuple(values)


def with_tangents(
    op: str, f: Fn, primals: Any, tangents: Any, scalar: bool
) -> tuple[Call, Tensor, list[Any]]:
    """The call, output and checked tangents of ``jvp`` / ``hvp``."""
    for what, values in (("primals", primals), ("tangents", tangents)):
        if not isinstance(values, tuple | list):
            raise TypeError(
                f"{op}: {what} must be a tuple with one entry per argument of f, e.g. "
                f"{op}(f, (x,), (v,)); got a {type(values).__name__}."
            )
    if len(tangents) != len(primals):
        raise ValueError(f"{op}: got {len(primals)} primals but {len(tangents)} tangents.")
    call = Call(op, primals, tuple(range(len(primals))))
    vs = [
        seed_like(x, v, op, f"tangent {i}")
        for i, (x, v) in enumerate(zip(call.xs, tangents, strict=True))
    ]
    out = call.output(call.run(f), scalar=scalar)
    call.create_graph = call.grad_on and (call.outside or any(map(tracked, vs)))
    return call, out, vs
