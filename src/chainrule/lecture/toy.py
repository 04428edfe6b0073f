"""The lecture's scalar toy network, forward and backward, one quantity at a time.

The network has one input, one output and one hidden unit per layer::

    f[x, φ] = β3 + ω3·a[β2 + ω2·a[β1 + ω1·a[β0 + ω0·x]]],      ℓ = (f − y)²

**Forward pass** (store every intermediate quantity)::

    f0 = β0 + ω0·x     h1 = a[f0]
    f1 = β1 + ω1·h1    h2 = a[f1]
    f2 = β2 + ω2·h2    h3 = a[f2]
    f3 = β3 + ω3·h3    ℓ  = (f3 − y)²

**Backward pass** (reverse order, each from the one before by the chain rule)::

    ∂ℓ/∂f3 = 2(f3 − y)
    ∂ℓ/∂h3 = ω3·∂ℓ/∂f3        ∂ℓ/∂f2 = a'(f2)·∂ℓ/∂h3
    ∂ℓ/∂h2 = ω2·∂ℓ/∂f2        ∂ℓ/∂f1 = a'(f1)·∂ℓ/∂h2
    ∂ℓ/∂h1 = ω1·∂ℓ/∂f1        ∂ℓ/∂f0 = a'(f0)·∂ℓ/∂h1

**Parameter gradients**: ``∂ℓ/∂βk = ∂ℓ/∂fk`` and ``∂ℓ/∂ωk = hk·∂ℓ/∂fk`` (with h0 = x).

Here these formulas are written out by hand, each activation's derivative included
(``ACTIVATIONS``), and checked against two independent computations: the ``Value`` engine
(``toy_graph``) and central finite differences in float64 (``finite_differences``).
``toy_network`` does all three and reports the largest disagreement.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from chainrule.scalar.engine import Value

# -- activations: a and a', written out, independent of the engine -----------------------


@dataclass(frozen=True)
class Activation:
    """An activation ``a`` with its derivative ``a'`` as explicit formulas.

    ``formula`` and ``derivative`` are the same formulas as text, with ``{z}`` standing for
    the argument (``"cos({z})"``), so tables can show ``∂ℓ/∂f2 = cos(f2)·∂ℓ/∂h3``.
    """

    name: str
    fn: Callable[[float], float]
    grad: Callable[[float], float]
    formula: str
    derivative: str


def _exp(z: float) -> float:
    # math.exp raises OverflowError past ~709; IEEE arithmetic (and the engine) give inf.
    try:
        return math.exp(z)
    except OverflowError:
        return math.inf


def _sigmoid(z: float) -> float:
    # Two forms so that e^|z| is never formed (it would overflow for large |z|).
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _sin(z: float) -> float:
    return math.sin(z) if math.isfinite(z) else math.nan


def _cos(z: float) -> float:
    return math.cos(z) if math.isfinite(z) else math.nan


# The engine's unary ops that are defined on the whole real line. At the kinks of relu and
# abs the derivative is PyTorch's subgradient: relu'(0) = 0, abs'(0) = 0.
ACTIVATIONS: Mapping[str, Activation] = MappingProxyType(
    {
        a.name: a
        for a in (
            Activation(
                "relu", lambda z: z if z > 0 else 0.0, lambda z: 1.0 if z > 0 else 0.0,
                "max(0, {z})", "𝕀[{z} > 0]",
            ),
            Activation(
                "tanh", math.tanh, lambda z: 1.0 - math.tanh(z) ** 2,
                "tanh({z})", "(1 − tanh²({z}))",
            ),
            Activation(
                "sigmoid", _sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),
                "σ({z})", "σ({z})(1 − σ({z}))",
            ),
            Activation("sin", _sin, _cos, "sin({z})", "cos({z})"),
            Activation("cos", _cos, lambda z: -_sin(z), "cos({z})", "(−sin({z}))"),
            Activation("exp", _exp, _exp, "exp({z})", "exp({z})"),
            Activation(
                "abs", abs, lambda z: 1.0 if z > 0 else (-1.0 if z < 0 else 0.0),
                "|{z}|", "sign({z})",
            ),
        )
    }
)  # fmt: skip

#: The parameter names, in the lecture's order: β0..β3, then ω0..ω3.
PARAMETERS = ("beta0", "beta1", "beta2", "beta3", "omega0", "omega1", "omega2", "omega3")


def resolve_activations(activation: str | Sequence[str]) -> tuple[str, str, str]:
    """The activations of layers 1..3 (``h1 = a1[f0]``, ``h2 = a2[f1]``, ``h3 = a3[f2]``).

    Args:
        activation: one name for all layers (``"relu"``), or three, as a sequence
            (``["sin", "exp", "cos"]``) or comma-separated (``"sin,exp,cos"``).

    Raises:
        ValueError: an unknown name, or a count other than 1 or 3.
    """
    names = activation.split(",") if isinstance(activation, str) else list(activation)
    names = [str(n).strip().lower() for n in names]
    known = ", ".join(ACTIVATIONS)
    for n in names:
        if n not in ACTIVATIONS:
            raise ValueError(f"unknown activation {n!r}; choose from {known}")
    if len(names) == 1:
        return (names[0], names[0], names[0])
    if len(names) == 3:
        return (names[0], names[1], names[2])
    raise ValueError(
        f"give 1 activation (for all layers) or 3 (one per layer 1..3), got {len(names)}: "
        f"{','.join(names)!r}"
    )


Four = tuple[float, float, float, float]


def _check_params(beta: Sequence[float], omega: Sequence[float]) -> tuple[Four, Four]:
    """β and ω as four floats each, or a ValueError that says what was given."""
    out: list[Four] = []
    for name, seq in (("beta", beta), ("omega", omega)):
        if len(seq) != 4:
            raise ValueError(
                f"toy network: {name} needs 4 numbers ({name}0..{name}3), got {len(seq)}: "
                f"{list(seq)!r}"
            )
        out.append((float(seq[0]), float(seq[1]), float(seq[2]), float(seq[3])))
    return out[0], out[1]


# -- forward and backward by the lecture's formulas ----------------------------------------


@dataclass(frozen=True)
class Forward:
    """The forward pass's quantities, in the lecture's order."""

    f0: float
    h1: float
    f1: float
    h2: float
    f2: float
    h3: float
    f3: float
    loss: float


@dataclass(frozen=True)
class Backward:
    """∂ℓ/∂(quantity) for every forward quantity, in the order the backward pass finds them."""

    dl_df3: float
    dl_dh3: float
    dl_df2: float
    dl_dh2: float
    dl_df1: float
    dl_dh1: float
    dl_df0: float


def forward_pass(
    x: float,
    y: float,
    beta: Sequence[float],
    omega: Sequence[float],
    activation: str | Sequence[str] = "relu",
) -> Forward:
    """f0 = β0 + ω0·x, h1 = a[f0], ..., f3 = β3 + ω3·h3, ℓ = (f3 − y)², in plain floats."""
    _check_params(beta, omega)
    a1, a2, a3 = (ACTIVATIONS[n].fn for n in resolve_activations(activation))
    f0 = beta[0] + omega[0] * x
    h1 = a1(f0)
    f1 = beta[1] + omega[1] * h1
    h2 = a2(f1)
    f2 = beta[2] + omega[2] * h2
    h3 = a3(f2)
    f3 = beta[3] + omega[3] * h3
    # d * d, not d ** 2: Python's float ** raises OverflowError where IEEE gives inf.
    loss = (f3 - y) * (f3 - y)
    return Forward(f0, h1, f1, h2, f2, h3, f3, loss)


def backward_pass(
    fwd: Forward, y: float, omega: Sequence[float], activation: str | Sequence[str] = "relu"
) -> Backward:
    """∂ℓ/∂f3 = 2(f3 − y), then ∂ℓ/∂hk = ωk·∂ℓ/∂fk and ∂ℓ/∂f(k−1) = a'(f(k−1))·∂ℓ/∂hk."""
    d1, d2, d3 = (ACTIVATIONS[n].grad for n in resolve_activations(activation))
    dl_df3 = 2.0 * (fwd.f3 - y)
    dl_dh3 = omega[3] * dl_df3
    dl_df2 = d3(fwd.f2) * dl_dh3
    dl_dh2 = omega[2] * dl_df2
    dl_df1 = d2(fwd.f1) * dl_dh2
    dl_dh1 = omega[1] * dl_df1
    dl_df0 = d1(fwd.f0) * dl_dh1
    return Backward(dl_df3, dl_dh3, dl_df2, dl_dh2, dl_df1, dl_dh1, dl_df0)


def parameter_grads(x: float, fwd: Forward, bwd: Backward) -> dict[str, float]:
    """∂ℓ/∂βk = ∂ℓ/∂fk and ∂ℓ/∂ωk = hk·∂ℓ/∂fk (h0 = x), keyed ``beta0``..``omega3``."""
    dl_df = (bwd.dl_df0, bwd.dl_df1, bwd.dl_df2, bwd.dl_df3)
    h = (x, fwd.h1, fwd.h2, fwd.h3)
    grads = {f"beta{k}": dl_df[k] for k in range(4)}
    grads.update({f"omega{k}": h[k] * dl_df[k] for k in range(4)})
    return grads


# -- the two independent checks -------------------------------------------------------------


@dataclass(frozen=True)
class ToyGraph:
    """The toy network built from ``Value`` nodes, after ``loss.backward()``.

    Attributes:
        loss: the ``ℓ`` node; ``draw_dot(graph.loss)`` draws the whole network.
        nodes: every named node by its lecture name: ``x``, ``y``, ``β0``..``ω3``,
            ``f0``..``f3``, ``h1``..``h3``, ``ℓ``.
        params: the parameter leaves keyed ``beta0``..``omega3``; ``.grad`` holds ∂ℓ/∂p.
    """

    loss: Value
    nodes: Mapping[str, Value]
    params: Mapping[str, Value]


def toy_graph(
    x: float,
    y: float,
    beta: Sequence[float],
    omega: Sequence[float],
    activation: str | Sequence[str] = "relu",
) -> ToyGraph:
    """Build the network from ``chainrule.Value`` (labelled with the lecture's names) and
    backpropagate through it with the engine.

    Example:
        >>> g = toy_graph(2.3, 2.0, [1, 2, -3, 0.4], [0.1, -0.4, 2, 3], "sin,exp,cos")
        >>> g.nodes["h2"].label, g.params["omega0"].grad == g.nodes["ω0"].grad
        ('h2', True)
    """
    _check_params(beta, omega)
    names = resolve_activations(activation)
    nodes: dict[str, Value] = {"x": Value(float(x), label="x"), "y": Value(float(y), label="y")}
    for k in range(4):
        nodes[f"β{k}"] = Value(float(beta[k]), label=f"β{k}")
        nodes[f"ω{k}"] = Value(float(omega[k]), label=f"ω{k}")
    h = nodes["x"]
    for k in range(4):
        wh = nodes[f"ω{k}"] * h
        wh.label = f"ω{k}·{h.label}"
        f = nodes[f"β{k}"] + wh
        f.label = f"f{k}"
        nodes[f.label] = f
        if k < 3:
            # The engine's own method of that name (Value.relu, Value.sin, ...).
            h = getattr(f, names[k])()
            h.label = f"h{k + 1}"
            nodes[h.label] = h
    diff = nodes["f3"] - nodes["y"]
    diff.label = "f3 − y"
    loss = diff**2
    loss.label = "ℓ"
    nodes["ℓ"] = loss
    loss.backward()
    params = {f"beta{k}": nodes[f"β{k}"] for k in range(4)}
    params.update({f"omega{k}": nodes[f"ω{k}"] for k in range(4)})
    return ToyGraph(loss, MappingProxyType(nodes), MappingProxyType(params))


def finite_differences(
    x: float,
    y: float,
    beta: Sequence[float],
    omega: Sequence[float],
    activation: str | Sequence[str] = "relu",
    step: float = 1e-6,
) -> dict[str, float]:
    """Central differences of the loss, in float64: ∂ℓ/∂p ≈ (ℓ(p + h) − ℓ(p − h)) / 2h.

    ``h = step·max(1, |p|)``: the error is about h²·ℓ'''/6 (truncation) plus
    ε·|ℓ|/h (rounding, ε ≈ 1e-16), so ~1e-10·|ℓ| for the default step. Across a kink of
    relu or abs (some fk within h of 0) the difference averages the two sides instead.
    """
    _check_params(beta, omega)
    acts = resolve_activations(activation)

    def loss_with(name: str, delta: float) -> float:
        b, w = [float(v) for v in beta], [float(v) for v in omega]
        (b if name.startswith("beta") else w)[int(name[-1])] += delta
        return forward_pass(x, y, b, w, acts).loss

    grads: dict[str, float] = {}
    for name in PARAMETERS:
        p = (beta if name.startswith("beta") else omega)[int(name[-1])]
        h = step * max(1.0, abs(p))
        grads[name] = (loss_with(name, h) - loss_with(name, -h)) / (2.0 * h)
    return grads


# -- all three together ------------------------------------------------------------------------


def _max(*xs: float) -> float:
    # Python's max() skips a nan or not depending on where it sits; a nan (inf − inf after
    # an overflow) means "unknown", and must show.
    return math.nan if any(math.isnan(x) for x in xs) else max(xs)


@dataclass(frozen=True)
class GradCheck:
    """One parameter's gradient three ways."""

    formula: float
    autograd: float
    finite_difference: float

    @property
    def disagreement(self) -> float:
        """The largest absolute difference between any two of the three."""
        a, b, c = self.formula, self.autograd, self.finite_difference
        return _max(abs(a - b), abs(a - c), abs(b - c))


@dataclass(frozen=True)
class ToyResult:
    """Everything about one run of the toy network; see ``toy_network``."""

    x: float
    y: float
    beta: Four
    omega: Four
    activations: tuple[str, str, str]
    forward: Forward
    backward: Backward
    grads: Mapping[str, GradCheck]

    @property
    def max_disagreement(self) -> float:
        """The largest absolute difference between any two ways, over all parameters."""
        return _max(*(g.disagreement for g in self.grads.values()))

    @property
    def max_autograd_disagreement(self) -> float:
        """max over parameters of |formula − Value engine| (should be ~1e-16 relative)."""
        return _max(*(abs(g.formula - g.autograd) for g in self.grads.values()))

    @property
    def max_fd_disagreement(self) -> float:
        """max over parameters of |formula − finite difference| (~1e-9 is normal)."""
        return _max(*(abs(g.formula - g.finite_difference) for g in self.grads.values()))

    def graph(self) -> ToyGraph:
        """The same network as ``Value`` nodes after backward, e.g. for ``draw_dot``."""
        return toy_graph(self.x, self.y, self.beta, self.omega, self.activations)


def toy_network(
    x: float = 2.3,
    y: float = 2.0,
    beta: Sequence[float] = (1.0, 2.0, -3.0, 0.4),
    omega: Sequence[float] = (0.1, -0.4, 2.0, 3.0),
    activation: str | Sequence[str] = "relu",
) -> ToyResult:
    """Run the toy network forward and backward, and check the gradients three ways.

    Args:
        x: the input.  y: the target.
        beta: the biases β0..β3.  omega: the weights ω0..ω3.
        activation: ``"relu"`` for every layer, or one name per layer 1..3
            (``"sin,exp,cos"`` is the textbook's example); see ``ACTIVATIONS``.

    Returns:
        A ``ToyResult``: ``.forward`` (f0, h1, ..., loss), ``.backward`` (dl_df3, ...,
        dl_df0), ``.grads["omega0"]`` (``.formula``, ``.autograd``,
        ``.finite_difference``) and ``.max_disagreement``.

    Example:
        >>> r = toy_network(activation="sin,exp,cos")
        >>> round(r.forward.f0, 6), r.backward.dl_df3 == 2 * (r.forward.f3 - 2.0)
        (1.23, True)
        >>> r.grads["omega3"].formula == r.forward.h3 * r.backward.dl_df3
        True
        >>> r.max_disagreement < 1e-6
        True
    """
    b, w = _check_params(beta, omega)
    acts = resolve_activations(activation)
    fwd = forward_pass(x, y, b, w, acts)
    bwd = backward_pass(fwd, y, w, acts)
    formula = parameter_grads(x, fwd, bwd)
    graph = toy_graph(x, y, b, w, acts)
    fd = finite_differences(x, y, b, w, acts)
    grads = {p: GradCheck(formula[p], graph.params[p].grad, fd[p]) for p in PARAMETERS}
    return ToyResult(float(x), float(y), b, w, acts, fwd, bwd, MappingProxyType(grads))
