"""chainrule.func against torch.func / torch.autograd.functional, in float64.

Each test function is written once with operators and methods that chainrule Tensors and
torch tensors share, and run by both libraries; constants are converted per library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from chainrule import Tensor, func, no_grad

RNG = np.random.default_rng(7)
W0 = RNG.standard_normal((4, 3))
B0 = RNG.standard_normal(4)
M0 = RNG.standard_normal((3, 3))
X0 = RNG.standard_normal(3)
Y0 = RNG.standard_normal(3)
V0 = RNG.standard_normal(3)
U4 = RNG.standard_normal(4)

Fn = Callable[..., Any]


def as_np(a: Any) -> np.ndarray:
    return np.asarray(a.detach().numpy() if isinstance(a, torch.Tensor) else a, dtype=np.float64)


def close(ours: Any, theirs: Any) -> None:
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            close(a, b)
        return
    np.testing.assert_allclose(as_np(ours), as_np(theirs), rtol=1e-10, atol=1e-12)


def vector_fns(to: Fn) -> dict[str, Fn]:
    """Functions of one vector x (3,) with non-scalar outputs."""
    W, b, M = to(W0), to(B0), to(M0)
    return {
        "tanh_affine": lambda x: (W @ x + b).tanh(),
        "softmax": lambda x: (M @ x * x).softmax(-1),
        "logsumexp_outer": lambda x: (x.reshape(3, 1) * (M @ x).reshape(1, 3)).logsumexp(1),
        "broadcast_sigmoid": lambda x: (x[:, None] * M + x[None, :] ** 2).sigmoid(),
    }


def scalar_fns(to: Fn) -> dict[str, Fn]:
    """Scalar functions of two vectors x, y (3,)."""
    W, M = to(W0), to(M0)
    return {
        "lse_tanh": lambda x, y: (W @ (x * y)).tanh().logsumexp(0),
        "quadratic_exp": lambda x, y: (x @ M @ y) * (x * x).sum() + (y.exp() * x).sum(),
        "softmax_entropy": lambda x, y: -((x + y).softmax(-1) * (x - y).log_softmax(-1)).sum(),
    }


OURS_V, THEIRS_V = vector_fns(lambda a: a), vector_fns(torch.from_numpy)
OURS_S, THEIRS_S = scalar_fns(lambda a: a), scalar_fns(torch.from_numpy)
t = torch.from_numpy


@pytest.mark.parametrize("name", list(OURS_V))
def test_jacobian_matches_torch(name: str) -> None:
    theirs = torch.autograd.functional.jacobian(THEIRS_V[name], t(X0))
    close(func.jacobian(OURS_V[name])(X0), theirs)
    close(func.jacobian(OURS_V[name])(X0), torch.func.jacrev(THEIRS_V[name])(t(X0)))


@pytest.mark.parametrize("name", list(OURS_V))
def test_vjp_matches_torch(name: str) -> None:
    out, vjp_fn = func.vjp(OURS_V[name], X0)
    tout, tvjp_fn = torch.func.vjp(THEIRS_V[name], t(X0))
    u = RNG.standard_normal(tout.shape)
    close(out, tout)
    close(vjp_fn(u), tvjp_fn(t(u)))
    close(vjp_fn(u), tvjp_fn(t(u)))  # a second call gives the same (the graph is kept)


@pytest.mark.parametrize("name", list(OURS_V))
def test_jvp_matches_torch(name: str) -> None:
    out, jv = func.jvp(OURS_V[name], (X0,), (V0,))
    tout, tjv = torch.func.jvp(THEIRS_V[name], (t(X0),), (t(V0),))
    close(out, tout)
    close(jv, tjv)


@pytest.mark.parametrize("name", list(OURS_S))
def test_grad_value_and_grad_with_every_argnums(name: str) -> None:
    for argnums in (0, 1, -1, (0, 1), (1, 0)):
        tg, tval = torch.func.grad_and_value(THEIRS_S[name], argnums=argnums)(t(X0), t(Y0))
        val, g = func.value_and_grad(OURS_S[name], argnums=argnums)(X0, Y0)
        close(val, tval)
        close(g, tg)
        close(func.grad(OURS_S[name], argnums=argnums)(X0, Y0), tg)


@pytest.mark.parametrize("name", list(OURS_S))
def test_hessian_matches_torch(name: str) -> None:
    close(func.hessian(OURS_S[name])(X0, Y0), torch.func.hessian(THEIRS_S[name])(t(X0), t(Y0)))
    blocks = torch.func.hessian(THEIRS_S[name], argnums=(0, 1))(t(X0), t(Y0))
    close(func.hessian(OURS_S[name], argnums=(0, 1))(X0, Y0), blocks)


@pytest.mark.parametrize("name", list(OURS_S))
def test_hvp_matches_torch(name: str) -> None:
    w = RNG.standard_normal(3)
    value, hv = func.hvp(OURS_S[name], (X0, Y0), (V0, w))
    tvalue, thv = torch.autograd.functional.hvp(THEIRS_S[name], (t(X0), t(Y0)), (t(V0), t(w)))
    close(value, tvalue)
    close(hv, thv)


def test_jvp_and_vjp_with_two_primals_match_torch() -> None:
    f, tf = OURS_S["quadratic_exp"], THEIRS_S["quadratic_exp"]
    g = lambda x, y: (x[:, None] * y).tanh() @ y  # noqa: E731  (vector output)
    w = RNG.standard_normal(3)
    close(func.jvp(g, (X0, Y0), (V0, w)), torch.func.jvp(g, (t(X0), t(Y0)), (t(V0), t(w))))
    close(func.jvp(f, (X0, Y0), (V0, w)), torch.func.jvp(tf, (t(X0), t(Y0)), (t(V0), t(w))))
    _, vjp_fn = func.vjp(g, X0, Y0)
    _, tvjp_fn = torch.func.vjp(g, t(X0), t(Y0))
    close(vjp_fn(w), tvjp_fn(t(w)))


def test_jacobian_with_tuple_argnums_and_tuple_outputs() -> None:
    def f(x: Any, W: Any) -> Any:
        return (W @ x).tanh(), (x * x).sum()

    ours = func.jacobian(f, argnums=(0, 1))(X0, W0)
    theirs = torch.func.jacrev(f, argnums=(0, 1))(t(X0), t(W0))
    close(ours, theirs)
    assert ours[0][1].shape == (4, 4, 3)  # out.shape + W.shape


def test_jacobian_layout_is_rows_outputs_columns_inputs() -> None:
    # f = Ω h: ∂f_i/∂h_j = Ω_ij, so jacobian returns Ω (the lecture's ∂f/∂h = Ωᵀ is its transpose)
    np.testing.assert_array_equal(func.jacobian(lambda h: W0 @ h)(X0), W0)


def test_grad_of_grad_matches_torch_and_the_formula() -> None:
    f = lambda x: (x * x.sin()).tanh()  # noqa: E731
    x0 = np.float64(0.7)
    ours = func.grad(func.grad(f))(x0)
    theirs = torch.func.grad(torch.func.grad(f))(torch.tensor(0.7, dtype=torch.float64))
    close(ours, theirs)
    # third order by nesting: d³/dx³ x⁴ = 24x
    assert func.grad(func.grad(func.grad(lambda x: x**4)))(np.float64(1.5)) == pytest.approx(36.0)


def test_grad_of_grad_of_vector_function_matches_torch() -> None:
    f, tf = OURS_S["lse_tanh"], THEIRS_S["lse_tanh"]
    ours = func.grad(lambda x: (func.grad(f)(x, Y0) ** 2).sum())(X0)
    theirs = torch.func.grad(lambda x: (torch.func.grad(tf)(x, t(Y0)) ** 2).sum())(t(X0))
    close(ours, theirs)
    close(func.jacobian(func.grad(f))(X0, Y0), func.hessian(f)(X0, Y0))


def test_nested_grad_through_a_closure_matches_torch() -> None:
    # the outer transform differentiates W, which the inner one only closes over
    def outer(lib_grad: Fn, x: Any) -> Fn:
        return lambda W: (lib_grad(lambda x: (W @ x).tanh().sum())(x) ** 2).sum()

    ours = func.grad(outer(func.grad, X0))(W0)
    theirs = torch.func.grad(outer(torch.func.grad, t(X0)))(t(W0))
    close(ours, theirs)


def test_no_perturbation_confusion() -> None:
    # d/dx [x · d/dy (x + y)] = d/dx [x · 1] = 1 (2 if the inner call also saw x's path)
    assert func.grad(lambda x: x * func.grad(lambda y: x + y)(x))(np.float64(1.0)) == 1.0


def test_gradient_penalty_reaches_parameters_via_backward() -> None:
    W = Tensor(W0, requires_grad=True)
    gx = func.grad(lambda x: (W @ x).tanh().sum())(X0)
    assert isinstance(gx, Tensor) and gx.requires_grad  # carries a graph back to W
    (gx**2).sum().backward()

    tW, tx = t(W0).clone().requires_grad_(), t(X0).clone().requires_grad_()
    (tgx,) = torch.autograd.grad((tW @ tx).tanh().sum(), tx, create_graph=True)
    (tgx**2).sum().backward()
    assert W.grad is not None
    close(gx, tgx)
    close(W.grad, tW.grad)


def test_result_types_follow_the_inputs() -> None:
    f = lambda x: (x**2).sum()  # noqa: E731
    g = func.grad(f)(X0)
    assert type(g) is np.ndarray and g.base is None and g is not X0
    value, _ = func.value_and_grad(f)(X0)
    assert isinstance(value, np.float64)
    tg = func.grad(f)(Tensor(X0))
    assert isinstance(tg, Tensor) and not tg.requires_grad
    np.testing.assert_array_equal(tg.numpy(), 2 * X0)
    with no_grad():  # no graph is kept inside no_grad, even for a tensor that requires grad
        ng = func.grad(f)(Tensor(X0, requires_grad=True))
    assert isinstance(ng, Tensor) and not ng.requires_grad


def test_python_floats_follow_the_engine_dtype() -> None:
    assert func.grad(lambda x: x * x)(3.0) == pytest.approx(6.0)
    assert func.grad(lambda x: x * x)(3.0).dtype == Tensor(3.0).dtype


def test_inputs_are_not_modified_and_results_do_not_alias() -> None:
    x = X0.copy()
    a, b = func.grad(lambda x, y: (x + y).sum(), argnums=(0, 1))(x, Y0)
    np.testing.assert_array_equal(x, X0)
    a[0] = 123.0  # writable, and its own memory
    assert b[0] == 1.0


def test_output_independent_of_an_input_gives_zeros() -> None:
    g = func.grad(lambda x, y: (x**2).sum(), argnums=(0, 1))(X0, Y0)
    np.testing.assert_array_equal(g[1], np.zeros(3))
    np.testing.assert_array_equal(func.jacobian(lambda x: W0 @ Y0)(X0), np.zeros((4, 3)))
    _, jv = func.jvp(lambda x: Tensor(Y0), (X0,), (V0,))
    np.testing.assert_array_equal(jv, np.zeros(3))


def test_jvp_is_differentiable_inside_an_outer_transform() -> None:
    # d/dx <J(x) v, u> through the double-VJP trick vs torch.func
    f = OURS_V["tanh_affine"]
    ours = func.grad(lambda x: (func.jvp(f, (x,), (V0,))[1] * U4).sum())(X0)
    tf = THEIRS_V["tanh_affine"]
    theirs = torch.func.grad(lambda x: (torch.func.jvp(tf, (x,), (t(V0),))[1] * t(U4)).sum())(t(X0))
    close(ours, theirs)


# -- errors ---------------------------------------------------------------------------------


def test_grad_of_non_scalar_names_the_shape_and_the_alternatives() -> None:
    with pytest.raises(ValueError, match=r"grad: .*shape \(4,\).*vjp.*jacobian"):
        func.grad(OURS_V["tanh_affine"])(X0)
    with pytest.raises(ValueError, match=r"hessian: .*shape \(4,\)"):
        func.hessian(OURS_V["tanh_affine"])(X0)


def test_argnums_errors() -> None:
    f = OURS_S["lse_tanh"]
    with pytest.raises(ValueError, match=r"argnums=2 is out of range.*2 positional.*0\.\.1"):
        func.grad(f, argnums=2)(X0, Y0)
    with pytest.raises(ValueError, match=r"argnums=\(0, -2\) names argument 0 twice"):
        func.grad(f, argnums=(0, -2))(X0, Y0)
    with pytest.raises(TypeError, match="argnums must be an int or a non-empty tuple"):
        func.grad(f, argnums=[0, 1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="argnums must be"):
        func.jacobian(f, argnums=())


def test_integer_inputs_are_rejected_with_a_fix() -> None:
    with pytest.raises(TypeError, match=r"argument 0 has dtype int64.*3\.0 instead of 3"):
        func.grad(lambda x: x * x)(3)
    with pytest.raises(TypeError, match=r"argument 1 has dtype int64.*astype"):
        func.grad(lambda x, y: (x * y).sum(), argnums=1)(X0, np.arange(3))
    # an integer argument outside argnums is passed through untouched
    assert func.grad(lambda x, k: (x**k).sum())(X0, 3) == pytest.approx(3 * X0**2)
    with pytest.raises(TypeError, match=r"argument 0 is a list.*np\.array"):
        func.grad(lambda x: x.sum())([1.0, 2.0])


def test_shape_and_sequence_errors() -> None:
    f = OURS_V["tanh_affine"]
    with pytest.raises(TypeError, match=r"primals must be a tuple.*jvp\(f, \(x,\), \(v,\)\)"):
        func.jvp(f, X0, V0)
    with pytest.raises(ValueError, match=r"tangent 0 has shape \(4,\).*\(3,\)"):
        func.jvp(f, (X0,), (U4,))
    _, vjp_fn = func.vjp(f, X0)
    with pytest.raises(ValueError, match=r"cotangent has shape \(3,\).*\(4,\)"):
        vjp_fn(X0)
    with pytest.raises(TypeError, match="f returned a tuple; it must return one Tensor"):
        func.grad(lambda x: (x.sum(), x.sum()))(X0)
    with pytest.raises(TypeError, match="has dtype bool; only floating-point outputs"):
        func.jacobian(lambda x: x > 0)(X0)
