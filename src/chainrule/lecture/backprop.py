"""The lecture's matrix backward pass, checked three ways, layer by layer.

For a network of K hidden layers of width D (``chainrule.lecture.matrix``)::

    f_0 = β_0 + Ω_0 x,   h_{k+1} = ReLU[f_k],   f_k = β_k + Ω_k h_k,   ℓ = l[f_K, y]

the gradients ∂ℓ/∂f_k, ∂ℓ/∂Ω_k = ∂ℓ/∂f_k h_kᵀ and ∂ℓ/∂β_k = ∂ℓ/∂f_k (summed over the
batch) are computed

1. by the lecture's formulas (``matrix.backward``, plain NumPy, one input per column);
2. by the tensor engine, which knows none of the formulas: the same network built from
   ``Tensor`` s in float64 (one input per row), ∂ℓ/∂f_k caught by ``register_hook`` as it
   passes, ∂ℓ/∂Ω_k and ∂ℓ/∂β_k read from ``.grad``;
3. by central finite differences in float64, (ℓ(θ + ε) − ℓ(θ − ε)) / 2ε, one entry of Ω_k
   or β_k at a time, ε = 1e-5·max(1, |θ|).

Finite differences are wrong where a ReLU input crosses zero between θ − ε and θ + ε (the
slope changes inside the step). Each difference therefore compares the ReLU patterns at
θ ± ε with the one at θ; on a change it retries with ε/10 and ε/100, and an entry that
still straddles a kink is left out and counted (``LayerCheck.fd_kinks``).

Which entries: every entry of every Ω_k and β_k when the network has at most
``FD_ALL_LIMIT`` parameters; otherwise, for each Ω_k and β_k, ``FD_SUBSET`` entries (or all,
if fewer) drawn without replacement by ``numpy.random.default_rng([seed, 1])``.

Differences are reported as the largest absolute difference and relative to the scale of
the gradient, the largest |entry| of all the formulas' ∂ℓ/∂f_k, ∂ℓ/∂Ω_k, ∂ℓ/∂β_k.

Example:
    >>> problem = make_problem(layers=2, width=3, inputs=1, outputs=1, batch=4, seed=0)
    >>> result = check_backprop(problem)
    >>> [layer.dl_domega_shape for layer in result.layers]
    [(3, 1), (3, 3), (1, 3)]
    >>> result.max_engine_rel < 1e-12 and result.max_fd_rel < 1e-8
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from chainrule.lecture import matrix
from chainrule.tensor import ops
from chainrule.tensor.ops.loss import cross_entropy
from chainrule.tensor.tensor import Tensor

Array = np.ndarray

#: The losses, as the command line spells them.
LOSSES = ("least-squares", "cross-entropy")
#: Networks with at most this many parameters have every entry checked by finite differences.
FD_ALL_LIMIT = 2000
#: Otherwise, this many random entries of each Ω_k and each β_k.
FD_SUBSET = 32
#: The deepest network checked. Each finite difference of layer k reruns the forward pass
#: from layer k to the top (K - k layers), and every layer has up to 2 * FD_SUBSET checked
#: entries, so the check costs O(K^2) layer products: ~15 s at K = 200 on one core, 129 s
#: at 2,000. Deeper networks teach nothing more about the backward pass.
MAX_LAYERS = 200
#: The relative step of the central differences: ε = FD_STEP·max(1, |θ|).
FD_STEP = 1e-5


@dataclass(frozen=True)
class Problem:
    """One network, batch and loss: x is D_in × I (one input per column); y is D_out × I
    targets (least squares) or I class indices (cross-entropy); ``seed`` picks the finite
    difference subset of large networks."""

    net: matrix.Network
    x: Array
    y: Array
    loss: str
    seed: int = 0

    @property
    def batch(self) -> int:
        """I: the number of inputs (columns of x)."""
        return int(self.x.shape[1])


def make_problem(
    layers: int = 5,
    width: int = 6,
    inputs: int = 1,
    outputs: int = 1,
    batch: int = 1,
    seed: int = 0,
    loss: str = "least-squares",
) -> Problem:
    """A random network [inputs, width × layers, outputs], batch and targets from ``seed``.

    Weights are He-initialised (``matrix.init_network``); biases are drawn from N(0, 0.1²)
    rather than left at zero, so that every term of the equations matters; x ~ N(0, 1);
    targets y ~ N(0, 1) (least squares) or uniform class indices (cross-entropy).

    Raises:
        ValueError: a size is not positive, the loss is unknown, or cross-entropy is asked
            for with fewer than 2 outputs (one class has ℓ = 0 and no gradient to check).
    """
    sizes = {"layers": layers, "width": width, "inputs": inputs, "outputs": outputs}
    for name, value in {**sizes, "batch": batch}.items():
        if value < 1:
            raise ValueError(f"make_problem: {name} must be a positive integer, got {value}")
    if loss not in LOSSES:
        raise ValueError(f"make_problem: loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    if loss == "cross-entropy" and outputs < 2:
        raise ValueError(
            f"make_problem: cross-entropy needs at least 2 outputs (classes), got {outputs}; "
            "use outputs >= 2 or the least-squares loss"
        )
    rng = np.random.default_rng(seed)
    net = matrix.init_network([inputs] + [width] * layers + [outputs], rng)
    for b in net.biases:
        b[:] = rng.normal(0.0, 0.1, b.shape)
    x = rng.standard_normal((inputs, batch))
    y: Array
    if loss == "least-squares":
        y = rng.standard_normal((outputs, batch))
    else:
        y = rng.integers(0, outputs, batch)
    return Problem(net, x, y, loss, seed)


def loss_and_gradient(problem: Problem, f_out: Array) -> tuple[float, Array]:
    """ℓ and ∂ℓ/∂f_K by the lecture's loss formulas (the loss is summed over the batch)."""
    if problem.loss == "least-squares":
        return matrix.least_squares(f_out, problem.y)
    return matrix.cross_entropy(f_out, problem.y)


# -- 1. the formulas --------------------------------------------------------------------


@dataclass(frozen=True)
class FormulaResult:
    """The formulas' forward pass (every f_k, h_k), loss and gradients."""

    loss: float
    forward: matrix.ForwardPass
    grads: matrix.Gradients


def formula_gradients(problem: Problem) -> FormulaResult:
    """The lecture's forward pass, then its backward pass from ∂ℓ/∂f_K down to ∂ℓ/∂f_0."""
    fp = matrix.forward(problem.net, problem.x)
    loss, dl_df_out = loss_and_gradient(problem, fp.f[-1])
    return FormulaResult(loss, fp, matrix.backward(problem.net, fp, dl_df_out))


# -- 2. the tensor engine ---------------------------------------------------------------


@dataclass
class EngineGraph:
    """The network built from Tensors (rows are inputs), before ``backward``.

    ``dl_df`` fills in, in the lecture's layout (D × I), as the hooks on f_k fire.
    """

    loss: Tensor
    weights: list[Tensor]
    biases: list[Tensor]
    f: list[Tensor]
    dl_df: list[Array | None] = field(default_factory=list)


def engine_graph(problem: Problem) -> EngineGraph:
    """Record the forward pass with the tensor engine in float64, hooks on every f_k."""
    net = problem.net
    weights = [Tensor(w.astype(np.float64), requires_grad=True) for w in net.weights]
    biases = [Tensor(b.astype(np.float64).ravel(), requires_grad=True) for b in net.biases]
    graph = EngineGraph(Tensor(0.0), weights, biases, [], [None] * (net.depth + 1))

    def catch(k: int) -> Callable[[Tensor], None]:
        def hook(g: Tensor) -> None:
            graph.dl_df[k] = g.numpy().T.copy()  # back to one input per column

        return hook

    h = Tensor(problem.x.T.astype(np.float64))  # x is data: it does not require grad
    for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
        f = ops.linear(h, w, b)  # f_k = h_k Ω_kᵀ + β_k, one input per row
        f.register_hook(catch(k))
        graph.f.append(f)
        h = f.relu() if k < net.depth else f
    if problem.loss == "least-squares":
        diff = h - Tensor(problem.y.T.astype(np.float64))
        graph.loss = (diff * diff).sum()
    else:
        graph.loss = cross_entropy(h, problem.y, reduction="sum")
    return graph


@dataclass(frozen=True)
class EngineResult:
    """ℓ and the engine's ∂ℓ/∂Ω_k, ∂ℓ/∂β_k (as columns) and ∂ℓ/∂f_k, lecture layout."""

    loss: float
    weights: list[Array]
    biases: list[Array]
    f: list[Array]


def engine_gradients(problem: Problem) -> EngineResult:
    """Run the engine's backward pass and collect every gradient the lecture names."""
    graph = engine_graph(problem)
    graph.loss.backward()
    missing = [k for k, g in enumerate(graph.dl_df) if g is None]
    assert not missing, f"hooks on f_k did not fire for k = {missing}"
    return EngineResult(
        graph.loss.item(),
        [_grad(w) for w in graph.weights],
        [_grad(b)[:, None] for b in graph.biases],
        [g for g in graph.dl_df if g is not None],
    )


def _grad(t: Tensor) -> Array:
    assert t.grad is not None, "a parameter received no gradient"
    return t.grad.numpy()


# -- 3. central finite differences ------------------------------------------------------


@dataclass(frozen=True)
class FiniteDifferences:
    """Finite differences of one parameter tensor at the flat ``indices`` that were checked
    (entries at a ReLU kink are left out of ``indices`` and counted in ``kinks``)."""

    indices: Array
    values: Array
    total: int
    kinks: int


def _loss_from_layer(
    problem: Problem, fp: matrix.ForwardPass, k: int, w: Array, b: Array
) -> tuple[float, list[Array]]:
    """ℓ with Ω_k, β_k replaced by w, b; layers before k are unchanged, so start from h_k.
    Also returns the ReLU patterns of f_k .. f_{K-1}."""
    net = problem.net
    f = b + w @ fp.h[k]
    patterns = []
    for j in range(k + 1, net.depth + 1):
        patterns.append(f > 0)
        f = net.biases[j] + net.weights[j] @ np.maximum(f, 0)
    return loss_and_gradient(problem, f)[0], patterns


def _central_difference(
    problem: Problem, fp: matrix.ForwardPass, k: int, which: str, flat: int
) -> float | None:
    """∂ℓ/∂θ for one entry θ of Ω_k (``which="weight"``) or β_k; None at a ReLU kink."""
    base_w, base_b = problem.net.weights[k], problem.net.biases[k]
    param = base_w if which == "weight" else base_b
    index = np.unravel_index(flat, param.shape)
    base_pattern = [fk > 0 for fk in fp.f[k : problem.net.depth]]
    theta = float(param[index])
    for shrink in (1.0, 0.1, 0.01):
        eps = FD_STEP * max(1.0, abs(theta)) * shrink
        ends = []
        for sign in (1.0, -1.0):
            moved = param.copy()
            moved[index] = theta + sign * eps
            w, b = (moved, base_b) if which == "weight" else (base_w, moved)
            ends.append(_loss_from_layer(problem, fp, k, w, b))
        same = all(
            np.array_equal(p, q)
            for _, pats in ends
            for p, q in zip(pats, base_pattern, strict=True)
        )
        if same:
            # Divide by the step actually taken: (θ + ε) − (θ − ε) in floating point.
            return (ends[0][0] - ends[1][0]) / ((theta + eps) - (theta - eps))
    return None


def finite_differences(
    problem: Problem, fp: matrix.ForwardPass
) -> list[tuple[FiniteDifferences, FiniteDifferences]]:
    """(for Ω_k, for β_k) for k = 0..K; every entry or a random subset (see module doc)."""
    net = problem.net
    n_params = sum(w.size + b.size for w, b in zip(net.weights, net.biases, strict=True))
    rng = np.random.default_rng([problem.seed, 1])
    out = []
    for k in range(net.depth + 1):
        pair = []
        for which, param in (("weight", net.weights[k]), ("bias", net.biases[k])):
            if n_params <= FD_ALL_LIMIT or param.size <= FD_SUBSET:
                chosen = np.arange(param.size)
            else:
                chosen = np.sort(rng.choice(param.size, FD_SUBSET, replace=False))
            kept, values = [], []
            for flat in chosen:
                d = _central_difference(problem, fp, k, which, int(flat))
                if d is not None:
                    kept.append(int(flat))
                    values.append(d)
            pair.append(
                FiniteDifferences(
                    np.array(kept, dtype=np.int64),
                    np.array(values, dtype=np.float64),
                    param.size,
                    len(chosen) - len(kept),
                )
            )
        out.append((pair[0], pair[1]))
    return out


# -- the three together -----------------------------------------------------------------


@dataclass(frozen=True)
class LayerCheck:
    """Layer k (f_k = β_k + Ω_k h_k): shapes in the lecture's layout and the differences.

    ``engine_abs`` is the largest |formula − engine| over ∂ℓ/∂f_k, ∂ℓ/∂Ω_k and ∂ℓ/∂β_k;
    ``fd_abs`` the largest |formula − finite difference| over the checked entries of
    Ω_k and β_k. ``fd_checked`` of ``fd_total`` entries were checked, ``fd_kinks`` were
    left out because they sit at a ReLU kink.
    """

    k: int
    f_shape: tuple[int, ...]
    h_shape: tuple[int, ...]
    dl_df_shape: tuple[int, ...]
    dl_domega_shape: tuple[int, ...]
    dl_dbeta_shape: tuple[int, ...]
    engine_abs: float
    fd_abs: float
    fd_checked: int
    fd_total: int
    fd_kinks: int


@dataclass(frozen=True)
class BackpropCheck:
    """Everything ``check_backprop`` computed: the per-layer summary and the raw results."""

    problem: Problem
    formulas: FormulaResult
    engine: EngineResult
    fd: list[tuple[FiniteDifferences, FiniteDifferences]]
    layers: list[LayerCheck]
    scale: float  # max |entry| of the formulas' gradients: the unit of relative differences

    @property
    def max_engine_rel(self) -> float:
        """Largest |formula − engine| over all gradients, relative to ``scale``."""
        return max(layer.engine_abs for layer in self.layers) / self.scale

    @property
    def max_fd_rel(self) -> float:
        """Largest |formula − finite difference| over the checked entries, over ``scale``."""
        return max(layer.fd_abs for layer in self.layers) / self.scale

    @property
    def loss_rel(self) -> float:
        """|ℓ by the formulas − ℓ by the engine| / max(1, |ℓ|)."""
        return abs(self.formulas.loss - self.engine.loss) / max(1.0, abs(self.formulas.loss))


def _max_abs(a: Array, b: Array) -> float:
    assert a.shape == b.shape, f"shape mismatch {a.shape} vs {b.shape}"
    return float(np.max(np.abs(a - b), initial=0.0))


def check_backprop(problem: Problem) -> BackpropCheck:
    """Formulas, engine and finite differences for every layer of ``problem``'s network."""
    ref = formula_gradients(problem)
    eng = engine_gradients(problem)
    fd = finite_differences(problem, ref.forward)
    grads = ref.grads
    every = [*grads.f, *grads.weights, *grads.biases]
    scale = max(float(np.max(np.abs(g), initial=0.0)) for g in every)
    layers = []
    for k in range(problem.net.depth + 1):
        fd_w, fd_b = fd[k]
        engine_abs = max(
            _max_abs(eng.f[k], grads.f[k]),
            _max_abs(eng.weights[k], grads.weights[k]),
            _max_abs(eng.biases[k], grads.biases[k]),
        )
        fd_abs = max(
            _max_abs(fd_w.values, grads.weights[k].ravel()[fd_w.indices]),
            _max_abs(fd_b.values, grads.biases[k].ravel()[fd_b.indices]),
        )
        layers.append(
            LayerCheck(
                k,
                ref.forward.f[k].shape,
                ref.forward.h[k].shape,
                grads.f[k].shape,
                grads.weights[k].shape,
                grads.biases[k].shape,
                engine_abs,
                fd_abs,
                fd_w.indices.size + fd_b.indices.size,
                fd_w.total + fd_b.total,
                fd_w.kinks + fd_b.kinks,
            )
        )
    return BackpropCheck(problem, ref, eng, fd, layers, scale if scale > 0 else 1.0)
