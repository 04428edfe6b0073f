"""Each built-in primitive's declaration of what its rules read (retain_inputs=,
retain_output=) is honest: its rules give the same gradients when everything it does not
declare is replaced by a ``NotSaved`` (shape and dtype only; any other use raises).

A declaration that omits an input or the output a rule reads makes the rule touch a
``NotSaved``, which raises a TypeError, so the comparison below fails. Every differentiable
primitive registered by the package must have a case here (test_every_primitive_has_a_case).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule.func.call as func_call
import chainrule.nn.functional as nn_functional
import chainrule.utils.checkpoint as checkpoint_module
from chainrule.tensor import Tensor, grad_mode, torch_methods
from chainrule.tensor.node import NotSaved
from chainrule.tensor.ops import elementwise, linalg, loss, reduce, shape
from chainrule.tensor.primitive import Primitive, defvjp, primitive

rng = np.random.default_rng(7)


def normal(*s: int) -> np.ndarray:
    return rng.standard_normal(s)


def positive(*s: int) -> np.ndarray:
    return rng.uniform(0.5, 2.0, s)


def away(*s: int) -> np.ndarray:
    return rng.choice([-1.0, 1.0], s) * rng.uniform(0.5, 2.0, s)


ew, la, rd, sh = elementwise, linalg, reduce, shape

# (primitive, positional arguments, keyword arguments). Every ndarray argument is passed as
# a tensor input (the strictest reading: integer indices and labels included).
CASES: list[tuple[Primitive, tuple[Any, ...], dict[str, Any]]] = [
    (ew.add, (normal(2, 3), normal(3)), {}),
    (ew.subtract, (normal(2, 3), normal(2, 3)), {}),
    (ew.multiply, (normal(2, 3), normal(1, 3)), {}),
    (ew.divide, (normal(2, 3), away(2, 3)), {}),
    (ew.negative, (normal(4),), {}),
    (ew.power, (positive(2, 3), normal(2, 3)), {}),
    (ew.power, (positive(2, 3), 3.0), {}),
    (ew.exp, (normal(3, 2),), {}),
    (ew.log, (positive(3),), {}),
    (ew.sqrt, (positive(3),), {}),
    (ew.tanh, (normal(3),), {}),
    (ew.sigmoid, (normal(3),), {}),
    (ew.relu, (away(3, 4),), {}),
    (ew.leaky_relu, (away(3, 4),), {"negative_slope": 0.1}),
    (ew.absolute, (away(5),), {}),
    (ew.sin, (normal(3),), {}),
    (ew.cos, (normal(3),), {}),
    (ew.where, (normal(2, 3) > 0, normal(2, 3), normal(3)), {}),
    (ew.maximum, (normal(2, 3), normal(2, 3)), {}),
    (ew.minimum, (normal(2, 3), normal(2, 3)), {}),
    (ew.clip, (normal(6),), {"min": -0.5, "max": 0.5}),
    (ew.clip, (normal(6), np.full(6, -0.5), np.full(6, 0.5)), {}),
    (la.matmul, (normal(2, 3), normal(3, 4)), {}),
    (la.matmul, (normal(3), normal(2, 3, 4)), {}),
    (la.matmul, (normal(2, 3), normal(3)), {}),
    (la.linear, (normal(5, 3), normal(4, 3), normal(4)), {}),
    (la.linear, (normal(2, 5, 3), normal(4, 3), normal(4)), {}),
    (rd.sum, (normal(2, 3),), {"axis": 1}),
    (rd.mean, (normal(2, 3),), {"axis": 0, "keepdims": True}),
    (rd.max, (normal(2, 3),), {"axis": 1}),
    (rd.min, (normal(2, 3),), {}),
    (rd.var, (normal(2, 3),), {"axis": 1, "ddof": 1}),
    (rd.logsumexp, (normal(2, 3),), {"axis": 1}),
    (rd.softmax, (normal(2, 3),), {"axis": 1}),
    (rd.log_softmax, (normal(2, 3),), {}),
    (sh.sum_to, (normal(2, 3), (1, 3)), {}),
    (sh.broadcast_to, (normal(3), (2, 3)), {}),
    (sh.reshape, (normal(2, 3), (3, 2)), {}),
    (sh.transpose, (normal(2, 3, 4), (2, 0, 1)), {}),
    (sh.squeeze, (normal(2, 1, 3),), {"axis": 1}),
    (sh.expand_dims, (normal(2, 3), 1), {}),
    (sh.astype, (normal(2, 3), np.float32), {}),
    (sh.getitem, (normal(4, 3), np.array([0, 2, 2])), {}),
    (sh.getitem, (normal(4, 3), (slice(1, 3), 0)), {}),
    (sh.index_add, (normal(3, 3), (4, 3), np.array([0, 2, 2])), {}),
    (sh.concatenate, (normal(2, 3), normal(2, 1)), {"axis": 1}),
    (sh.stack, (normal(2, 3), normal(2, 3)), {"axis": 0}),
    (loss.cross_entropy, (normal(4, 3), np.array([0, 2, 1, 2])), {}),
    (loss.cross_entropy, (normal(4, 3), np.array([0, 2, 1, 2])), {"reduction": "none"}),
    (nn_functional.erf, (normal(3),), {}),
    (nn_functional.erfc, (normal(3),), {}),
    (nn_functional._gelu_primitive, (normal(3),), {}),
    (nn_functional.bce_with_logits, (normal(3), rng.uniform(0, 1, 3)), {}),
    (torch_methods.clone, (normal(3),), {}),
    (func_call._input, (normal(3),), {}),
    (checkpoint_module._input, (normal(3),), {}),
]


def _registered() -> set[Primitive]:
    """Every differentiable primitive the package registers at module level."""
    modules: list[types.ModuleType] = [
        elementwise,
        linalg,
        reduce,
        shape,
        loss,
        nn_functional,
        torch_methods,
        func_call,
        checkpoint_module,
    ]
    found = set()
    for module in modules:
        for value in vars(module).values():
            has_rules = isinstance(value, Primitive) and (
                value.rules or value.argnum_rule or value.argnums_rule
            )
            if has_rules and value.differentiable:
                found.add(value)
    return found


def test_every_primitive_has_a_case() -> None:
    missing = {p.name for p in _registered()} - {p.name for p, _, _ in CASES}
    assert not missing, f"add a case for {sorted(missing)}"


def _strip(prim: Primitive, args: list[Any], ans: Any) -> tuple[list[Any], Any]:
    """What the engine hands the rules: placeholders for what the declaration leaves out."""
    keep = prim.retain_inputs
    out = list(args)
    for i, a in enumerate(args):
        value = a._data if isinstance(a, Tensor) else a
        if isinstance(value, np.ndarray) and keep is not None and i not in keep:
            out[i] = NotSaved.make(value.shape, value.dtype, prim, i)
    if not prim.retain_output:
        value = ans._data if isinstance(ans, Tensor) else ans
        ans = NotSaved.make(value.shape, value.dtype, prim, -1)
    return out, ans


def _grads(prim: Primitive, args: list[Any], kwargs: dict[str, Any], strip: bool) -> list[Any]:
    raw = [a._data if isinstance(a, Tensor) else a for a in args]
    out = prim.fn(*raw, **kwargs)
    residual = None
    if prim.residual:
        out, residual = out
    out = np.asarray(out)
    rules = prim.rules
    needed = [
        i
        for i, a in enumerate(raw)
        if isinstance(a, np.ndarray)
        and a.dtype.kind == "f"
        and (not rules or (i < len(rules) and rules[i] is not None))
    ]
    g = np.random.default_rng(1).standard_normal(out.shape)
    on_tensors = isinstance(args[needed[0]], Tensor)
    ans: Any = out
    if on_tensors:  # as create_graph gives them: the rules record on Tensors
        ans, g = prim(*args, **kwargs), Tensor(g)
        residual = None
    if strip:
        args, ans = _strip(prim, args, ans)
    with grad_mode.enable_grad() if on_tensors else grad_mode.no_grad():
        grads = prim.input_grads(needed, g, ans, args, kwargs, residual)
    return [np.asarray(gi._data if isinstance(gi, Tensor) else gi) for gi in grads]


@pytest.mark.parametrize("on_tensors", [False, True], ids=["arrays", "create_graph"])
@pytest.mark.parametrize(
    ("prim", "args", "kwargs"), CASES, ids=[f"{p.name}-{i}" for i, (p, _, _) in enumerate(CASES)]
)
def test_rules_read_only_what_the_primitive_declares(
    prim: Primitive, args: tuple[Any, ...], kwargs: dict[str, Any], on_tensors: bool
) -> None:
    def make(a: Any) -> Any:
        if on_tensors and isinstance(a, np.ndarray):
            return Tensor(a, requires_grad=a.dtype.kind == "f")
        return a

    full = _grads(prim, [make(a) for a in args], kwargs, strip=False)
    kept = _grads(prim, [make(a) for a in args], kwargs, strip=True)
    assert len(full) == len(kept)
    for a, b in zip(full, kept, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_declaration_that_omits_a_read_input_is_caught_with_the_op_named() -> None:
    wrong = primitive(np.multiply, "wrong_mul")
    defvjp(wrong, lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x, retain_inputs=(0,))
    with pytest.raises(TypeError, match=r"wrong_mul.*input 1.*declaration.*retain_inputs=\(0, 1\)"):
        _grads(wrong, [normal(3), normal(3)], {}, strip=True)


def test_a_declaration_that_omits_the_read_output_is_caught() -> None:
    wrong = primitive(np.exp, "wrong_exp")
    defvjp(wrong, lambda g, ans, x: g * ans, retain_inputs=(), retain_output=False)
    with pytest.raises(TypeError, match=r"wrong_exp.*its output.*retain_output=True"):
        _grads(wrong, [normal(3)], {}, strip=True)


@pytest.mark.parametrize(
    "use",
    [
        lambda p: p + 1,
        lambda p: 1 * p,
        lambda p: np.ones(2) * p,
        lambda p: p > 0,
        lambda p: p == 0,
        lambda p: np.asarray(p),
        lambda p: p.T,
        lambda p: p.sum(),
        lambda p: p[0],
        lambda p: bool(p),
        lambda p: np.exp(p),
    ],
)
def test_not_saved_allows_shape_dtype_ndim_and_nothing_else(use: Callable[[Any], Any]) -> None:
    p = NotSaved.make((2,), np.dtype(np.float64), elementwise.relu, 0)
    assert (p.shape, p.dtype, p.ndim, np.shape(p), np.ndim(p), len(p)) == (
        (2,),
        np.float64,
        1,
        (2,),
        1,
        2,
    )
    with pytest.raises(TypeError, match="relu: its backward rule used its input 0"):
        use(p)


def test_user_primitives_keep_everything_by_default() -> None:
    mine = primitive(np.sin, "mine")
    defvjp(mine, lambda g, ans, x: g * np.cos(x))
    assert mine.retain_inputs is None and mine.retain_output is True
    with pytest.raises(ValueError, match="retain_inputs must hold input positions"):
        defvjp(mine, lambda g, ans, x: g, retain_inputs=(-1,))


@pytest.mark.parametrize("create_graph", [False, True], ids=["arrays", "create_graph"])
@pytest.mark.parametrize(
    ("prim", "args", "kwargs"), CASES, ids=[f"{p.name}-{i}" for i, (p, _, _) in enumerate(CASES)]
)
def test_the_engine_hands_the_rules_only_what_is_declared_and_gets_the_same_gradients(
    prim: Primitive, args: tuple[Any, ...], kwargs: dict[str, Any], create_graph: bool
) -> None:
    """Through backward(): the engine's own placeholders (NotSaved inputs, the node as the
    output), against the rules run on every value and fitted to the inputs' shapes."""
    rules = prim.rules
    needed = [
        i
        for i, a in enumerate(args)
        if isinstance(a, np.ndarray)
        and a.dtype.kind == "f"
        and (not rules or (i < len(rules) and rules[i] is not None))
    ]
    tensors = [
        Tensor(a, requires_grad=i in needed) if isinstance(a, np.ndarray) else a
        for i, a in enumerate(args)
    ]
    out = prim(*tensors, **kwargs)
    node = out.grad_fn
    assert node is not None
    kept = {i for i, a in enumerate(node.args) if isinstance(a, Tensor)}
    declared = prim.retain_inputs
    tensor_positions = {i for i, a in enumerate(tensors) if isinstance(a, Tensor)}
    assert kept == (tensor_positions if declared is None else tensor_positions & set(declared))
    assert (node.ans is not None) == prim.retain_output
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(Tensor(g) if create_graph else g, create_graph=create_graph)
    expected = _grads(prim, list(args), kwargs, strip=False)
    rtol = 1e-12 if out.dtype == np.float64 else 1e-6  # (astype's float32 output)
    for i, e in zip(needed, expected, strict=True):
        t = tensors[i]
        assert t.grad is not None
        want = shape._sum_to(e, t.shape).astype(t.dtype)
        np.testing.assert_allclose(t.grad.numpy(), want, rtol=rtol, atol=1e-14)
