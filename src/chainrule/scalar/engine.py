"""The scalar engine: a ``Value`` records the graph of every operation and backpropagates.

Each operation computes its result *and* its local derivatives (the partial derivative of
the result with respect to each operand) on the spot, and stores them as plain floats in
``_local``, beside the operands in ``_prev``. The backward pass then needs no rule at all:
``parent.grad += local * out.grad`` for every edge, in reverse topological order.

Storing numbers instead of a closure (micrograd stores ``out._backward = lambda: ...``
which captures ``out`` itself) means no node refers to itself: a dropped graph has no
reference cycles, so CPython frees it at once by reference counting, and the cyclic
garbage collector never has to trace it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Union

from chainrule.graph import toposort

Operand = Union["Value", float, int]


def _check_real(x: object, op: str) -> float:
    """Return ``x`` as a float, or raise a TypeError that names ``op`` and ``x``'s type."""
    if type(x) is float:  # the common case first: an ABC isinstance check costs ~10x more
        return x
    if isinstance(x, Real):
        return float(x)
    hint = " (use its .data)" if isinstance(x, Value) else ""
    raise TypeError(
        f"{op}: expected a Value or a real number (int or float), got {type(x).__name__}"
        f"{hint}. Convert the operand first, e.g. Value(float(x))."
    )


def _exp(x: float) -> float:
    # math.exp raises OverflowError past ~709; IEEE arithmetic (and PyTorch) gives inf.
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _power(base: float, exponent: float, op: str) -> float:
    """base ** exponent for reals, with the errors a learner can act on."""
    if base == 0.0 and exponent < 0:
        raise ZeroDivisionError(
            f"{op}: 0.0 ** {exponent!r} divides by zero; keep the base away from 0 "
            "(e.g. add a small epsilon) or use a non-negative exponent."
        )
    if base < 0 and not float(exponent).is_integer():
        raise ValueError(
            f"{op}: ({base!r}) ** {exponent!r} is not a real number (negative base, "
            "fractional exponent); use abs(base) ** exponent or an integer exponent."
        )
    try:
        return float(base**exponent)
    except OverflowError:
        # Python raises on overflow; IEEE arithmetic (and PyTorch) gives +-inf.
        odd = float(exponent).is_integer() and int(exponent) % 2 == 1
        return -math.inf if base < 0 and odd else math.inf


class Value:
    """A scalar that remembers how it was computed, so that it can backpropagate.

    ``Value(data, label='')`` makes a leaf. Arithmetic on Values (and on plain numbers on
    either side) makes new Values that record their operands (``_prev``), the operation
    (``_op``) and the local derivative of the result with respect to each operand
    (``_local``). ``backward()`` then applies the chain rule from this Value back to every
    Value it depends on.

    ``.grad`` **accumulates**: each call of ``backward()`` *adds* d(root)/d(node) to every
    node's ``.grad``, as in micrograd and PyTorch. Reset the gradients between steps::

        for p in model.parameters():   # or model.zero_grad()
            p.grad = 0.0

    Example:
        >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
        >>> loss = (a * b + a * a).relu()   # relu(-6 + 4) = 0: the kink's flat side
        >>> loss.backward()
        >>> a.grad, b.grad
        (0.0, 0.0)
        >>> loss = a * b + b.exp()
        >>> loss.backward()
        >>> a.grad, round(b.grad, 6)         # dL/da = b,  dL/db = a + e^b
        (-3.0, 2.049787)
        >>> x = Value(3.0)
        >>> y = x * x          # dy/dx = 2x = 6
        >>> y.backward(); y.backward()
        >>> x.grad             # accumulated over two calls
        12.0
    """

    __slots__ = ("__weakref__", "_g", "_local", "_op", "_prev", "data", "grad", "label")

    data: float
    grad: float
    label: str
    _prev: tuple[Value, ...]
    _local: tuple[float, ...]
    _op: str
    _g: float

    def __init__(
        self,
        data: float,
        _children: Iterable[Value] | str = (),
        _op: str = "",
        label: str = "",
        *,
        _context: str = "Value()",
    ) -> None:
        self.data = _check_real(data, _context)
        self.grad = 0.0
        children: Iterable[Value] = ()
        if isinstance(_children, str):  # Value(data, label): chainrule's older signature
            label = _children
        else:
            children = _children
        self.label = label
        # micrograd's constructor: a node made by hand from children has no local
        # derivatives here; its _backward (micrograd's closure, or ours) says how.
        self._prev = tuple(children)
        self._local = ()
        self._op = _op
        self._g = 0.0  # gradient of the backward pass in progress (0 between passes)
        if self._prev:
            _custom[0] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        # A subclass may set micrograd-style _backward closures on its nodes: from now on,
        # backward() looks for them (see _backward).
        super().__init_subclass__(**kwargs)
        _custom[0] = True

    def _backward(self) -> None:
        """micrograd's per-node step: ``child.grad += local · self.grad`` for each child.

        For stepping through backpropagation by hand, as micrograd's lecture does::

            o.grad = 1.0
            o._backward(); n._backward(); ...

        chainrule keeps the local derivatives as numbers (``_local``), not a closure, so
        this is a method and the graph has no reference cycles. A subclass may still
        assign ``out._backward = closure`` on its own nodes; ``backward()`` then runs
        micrograd's algorithm for the whole pass.
        """
        g = self.grad
        for child, local in zip(self._prev, self._local, strict=False):
            child.grad += local * g

    def _node(self, data: float, prev: tuple[Value, ...], local: tuple[float, ...], op: str
              ) -> Value:  # fmt: skip
        """Make a result node without the checks of ``__init__`` (operands are checked).

        Of this Value's own class, so that ops on a subclass return the subclass.
        """
        out = _new_value(type(self))
        out.data = data
        out.grad = 0.0
        out.label = ""
        out._prev = prev
        out._local = local
        out._op = op
        out._g = 0.0
        return out

    # -- binary arithmetic: result, operands, local derivatives, op symbol ----------------

    def __add__(self, other: Operand) -> Value:
        """a + b;  d/da = 1, d/db = 1."""
        o = other if isinstance(other, Value) else Value(other, _context="Value + (add)")
        return self._node(self.data + o.data, (self, o), (1.0, 1.0), "+")

    def __mul__(self, other: Operand) -> Value:
        """a * b;  d/da = b, d/db = a."""
        o = other if isinstance(other, Value) else Value(other, _context="Value * (mul)")
        return self._node(self.data * o.data, (self, o), (o.data, self.data), "*")

    def __sub__(self, other: Operand) -> Value:
        """a - b;  d/da = 1, d/db = -1."""
        o = other if isinstance(other, Value) else Value(other, _context="Value - (sub)")
        return self._node(self.data - o.data, (self, o), (1.0, -1.0), "-")

    def __truediv__(self, other: Operand) -> Value:
        """a / b;  d/da = 1/b, d/db = -a/b^2."""
        o = other if isinstance(other, Value) else Value(other, _context="Value / (div)")
        if o.data == 0.0:
            raise ZeroDivisionError(
                f"Value / (div): division by zero: {self.data!r} / {o.data!r}; "
                "keep the denominator away from 0 (e.g. add a small epsilon)."
            )
        inv = 1.0 / o.data
        return self._node(self.data / o.data, (self, o), (inv, -self.data * inv * inv), "/")

    def __pow__(self, other: Operand) -> Value:
        """a ** n (number n): d/da = n a^(n-1).  a ** b (Value b): also d/db = a^b ln a.

        At a = 0 with n = 0 the derivative is 0 (as PyTorch). For a Value exponent and
        a = 0 with b >= 0, d/db = 0 (PyTorch's choice); for a < 0 (integer b), d/db = nan,
        because a^b is not defined for the b nearby.
        """
        if isinstance(other, Value):
            op = "Value ** Value (pow)"
            a, b = self.data, other.data
            out = _power(a, b, op)
            if a > 0:
                db = out * math.log(a)
            elif a == 0:
                db = 0.0  # b >= 0 here (b < 0 raised above)
            else:
                db = math.nan
            return self._node(out, (self, other), (_pow_local(a, b, op), db), "**")
        n = _check_real(other, "Value ** (pow)")
        out = _power(self.data, n, "Value ** (pow)")
        local = _pow_local(self.data, n, "Value ** (pow)")
        return self._node(out, (self,), (local,), f"**{_fmt(n)}")

    def _lift(self, x: float, op: str) -> Value:
        """A constant as a leaf of this Value's class (ops on a subclass stay in it)."""
        return self._node(_check_real(x, op), (), (), "")

    # Numbers on the left: the operation is the same node with the constant lifted.
    def __radd__(self, other: float) -> Value:
        return self._lift(other, "+ Value (add)") + self

    def __rmul__(self, other: float) -> Value:
        return self._lift(other, "* Value (mul)") * self

    def __rsub__(self, other: float) -> Value:
        return self._lift(other, "- Value (sub)") - self

    def __rtruediv__(self, other: float) -> Value:
        return self._lift(other, "/ Value (div)") / self

    def __rpow__(self, other: float) -> Value:
        return self._lift(other, "** Value (pow)") ** self

    def __neg__(self) -> Value:
        """-a;  d/da = -1."""
        return self._node(-self.data, (self,), (-1.0,), "neg")

    def __pos__(self) -> Value:
        return self

    # -- unary functions ------------------------------------------------------------------

    def exp(self) -> Value:
        """e^a;  d/da e^a = e^a."""
        out = _exp(self.data)
        return self._node(out, (self,), (out,), "exp")

    def log(self) -> Value:
        """ln a (natural log);  d/da ln a = 1/a.  Defined for a > 0 only."""
        if self.data <= 0.0:
            raise ValueError(
                f"Value.log: log of a non-positive number ({self.data!r}) is undefined; "
                "log needs a > 0: clamp the input (e.g. log(x + 1e-12)) or use log(abs(x))."
            )
        return self._node(math.log(self.data), (self,), (1.0 / self.data,), "log")

    def sqrt(self) -> Value:
        """√a;  d/da √a = 1/(2√a) (inf at a = 0, as PyTorch).  Defined for a >= 0 only."""
        if self.data < 0.0:
            raise ValueError(
                f"Value.sqrt: square root of a negative number ({self.data!r}) is not "
                "real; use sqrt(abs(x)) or keep the input non-negative."
            )
        out = math.sqrt(self.data)
        return self._node(out, (self,), (0.5 / out if out else math.inf,), "sqrt")

    def tanh(self) -> Value:
        """tanh a;  d/da tanh a = 1 - tanh(a)^2."""
        t = math.tanh(self.data)
        return self._node(t, (self,), (1.0 - t * t,), "tanh")

    def sigmoid(self) -> Value:
        """σ(a) = 1/(1 + e^-a);  d/da σ(a) = σ(a)(1 - σ(a))."""
        x = self.data
        # Two forms so that e^(|x|) never overflows for large |x|.
        if x >= 0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return self._node(s, (self,), (s * (1.0 - s),), "sigmoid")

    def relu(self) -> Value:
        """max(0, a);  d/da = 1 if a > 0 else 0 (the subgradient 0 at a = 0, as PyTorch)."""
        x = self.data
        return self._node(x if x > 0 else 0.0, (self,), (1.0 if x > 0 else 0.0,), "ReLU")

    def sin(self) -> Value:
        """sin a;  d/da sin a = cos a."""
        x = self.data
        if not math.isfinite(x):
            return self._node(math.nan, (self,), (math.nan,), "sin")
        return self._node(math.sin(x), (self,), (math.cos(x),), "sin")

    def cos(self) -> Value:
        """cos a;  d/da cos a = -sin a."""
        x = self.data
        if not math.isfinite(x):
            return self._node(math.nan, (self,), (math.nan,), "cos")
        return self._node(math.cos(x), (self,), (-math.sin(x),), "cos")

    def abs(self) -> Value:
        """|a|;  d/da |a| = sign(a) (the subgradient 0 at a = 0, as PyTorch)."""
        x = self.data
        sign = 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)
        return self._node(abs(x), (self,), (sign,), "abs")

    __abs__ = abs

    # -- backpropagation --------------------------------------------------------------------

    def backward(self) -> None:
        """Add d(self)/d(node) to ``node.grad`` for every node this Value depends on.

        The chain rule in reverse topological order: when a node is reached, every use of
        it has already sent its share, so its gradient g is complete; it then sends
        ``local * g`` to each parent. Iterative, so arbitrarily deep graphs work.

        Gradients accumulate (``+=``) into ``.grad`` across calls; set them to 0 between
        training steps (``Module.zero_grad()``).
        """
        order = toposort(self)
        if _custom[0] and any(_hand_made(n) for n in order):
            # micrograd's algorithm, for graphs with micrograd-style nodes: .grad of the
            # root is set to 1, each node's _backward adds to its children's .grad.
            self.grad = 1.0
            for node in reversed(order):
                node._backward()
            return
        self._g = 1.0
        try:
            for node in reversed(order):
                g = node._g
                node._g = 0.0
                node.grad += g
                for parent, local in zip(node._prev, node._local, strict=False):
                    parent._g += local * g
        except BaseException:
            for node in order:  # leave no half-finished pass behind
                node._g = 0.0
            raise

    # -- presentation -----------------------------------------------------------------------

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data}, grad={self.grad}{label})"


_new_value = object.__new__
# Set once a Value subclass exists or a node is made by hand (Value(data, children, op)):
# only then does backward() check for micrograd-style nodes (the common case pays nothing).
_custom = [False]


def _hand_made(node: Value) -> bool:
    """A node whose gradient rule is micrograd's: its own _backward, or no local numbers."""
    own = getattr(node, "__dict__", None)
    return bool(own and "_backward" in own) or len(node._local) != len(node._prev)


def _pow_local(a: float, n: float, op: str) -> float:
    """d/da a^n = n a^(n-1), with PyTorch's values where the formula breaks down."""
    if n == 0:
        return 0.0
    if a == 0.0 and n < 1:
        return math.inf  # n a^(n-1) -> inf as a -> 0 for 0 < n < 1
    # The same expression as micrograd, so that a drop-in gives the same bits.
    return n * _power(a, n - 1, op)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def linear_combination(w: Sequence[Value], x: Sequence[Operand], b: Value) -> Value:
    """``b + w[0]*x[0] + w[1]*x[1] + ...`` as one node (a neuron's pre-activation).

    The sum is formed left to right, exactly as ``sum((wi*xi for ...), b)`` does, so the
    value and every gradient are bit-for-bit those of the 2n-node graph of ``*`` and ``+``
    that it replaces:  d/dw_i = x_i,  d/dx_i = w_i,  d/db = 1.
    """
    if len(w) != len(x):
        raise ValueError(
            f"linear_combination (neuron): {len(w)} weights but {len(x)} inputs; "
            "give the neuron as many inputs as it has weights (nin)."
        )
    acc = b.data
    prev: list[Value] = [b]
    local: list[float] = [1.0]
    for wi, xi in zip(w, x, strict=True):
        if not isinstance(xi, Value):
            xi = Value(xi, _context="neuron input")
        acc = acc + wi.data * xi.data
        prev += (wi, xi)
        local += (xi.data, wi.data)
    return b._node(acc, tuple(prev), tuple(local), "w·x+b")


def values(xs: Iterable[float]) -> list[Value]:
    """Wrap plain numbers as leaf Values: ``values([1.0, 2.0])``."""
    return [Value(x) for x in xs]
