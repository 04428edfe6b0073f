"""The Tensor's autograd API: construction, dtype policy, backward(), accumulation, grad modes.

PyTorch is the oracle wherever it has the same behaviour (accumulation into ``.grad``,
retain_graph, detach, no_grad). Hooks, retain_grad and higher order are in
``test_autograd_hooks.py``; memory and work in ``test_autograd_memory.py``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from chainrule import (
    Tensor,
    default_dtype,
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
    set_grad_enabled,
)


@pytest.fixture(autouse=True)
def _restore_default_dtype() -> Iterator[None]:
    previous = get_default_dtype()
    yield
    set_default_dtype(previous)


def _leaf(a: np.ndarray) -> tuple[Tensor, torch.Tensor]:
    return Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _grad(t: Tensor) -> np.ndarray:
    assert t.grad is not None, "no gradient was stored"
    return t.grad.numpy()


RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal(4)

# -- construction and the array --------------------------------------------------------------


def test_constructor_copies_user_data() -> None:
    source = np.arange(4.0)
    t = Tensor(source)
    source[0] = 99.0
    assert t.numpy()[0] == 0.0


def test_data_and_numpy_share_memory_with_the_tensor() -> None:
    t = Tensor(np.arange(4.0))
    assert np.shares_memory(t.data, t.numpy())
    t.numpy()[1] = 7.0
    assert (t * 1.0).numpy()[1] == 7.0  # ops see the write: no hidden copy


def test_shape_dtype_and_item() -> None:
    t = Tensor(A)
    assert t.shape == (3, 4) and t.dtype == np.float64
    s = Tensor(np.array(2.5)).item()
    assert type(s) is float and s == 2.5
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        t.item()


def test_detach_shares_data_but_leaves_the_graph() -> None:
    w, tw = _leaf(B)
    d = w.detach()
    assert np.shares_memory(d.numpy(), w.numpy())
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    # No gradient flows through the detached factor, as in PyTorch: d(w * sg(w))/dw = w.
    (w * w.detach()).sum().backward()
    (tw * tw.detach()).sum().backward()
    assert tw.grad is not None
    np.testing.assert_array_equal(_grad(w), tw.grad.numpy())


def test_requires_grad_underscore_returns_the_tensor_and_defaults_to_true() -> None:
    t = Tensor(B)
    assert t.requires_grad_() is t and t.requires_grad
    assert t.requires_grad_(False) is t and not t.requires_grad


def test_requires_grad_false_on_a_computed_tensor_points_to_detach() -> None:
    y = Tensor(B, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        y.requires_grad_(False)


# -- dtype policy ----------------------------------------------------------------------------


def test_python_floats_default_to_float32_and_arrays_keep_their_dtype() -> None:
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([[1.0, 2.0]]).dtype == np.float32
    assert Tensor(np.array([1.0])).dtype == np.float64
    assert Tensor(np.float64(1.0)).dtype == np.float64
    assert Tensor(np.array([1.0], dtype=np.float32)).dtype == np.float32
    assert Tensor([1, 2]).dtype == np.int64
    assert Tensor([True]).dtype == np.bool_
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


def test_set_default_dtype_changes_python_data_only() -> None:
    set_default_dtype(np.float64)
    assert get_default_dtype() == np.float64
    assert Tensor([1.0]).dtype == np.float64
    assert Tensor(np.array([1.0], dtype=np.float32)).dtype == np.float32
    assert Tensor([1, 2]).dtype == np.int64  # ints stay ints


def test_default_dtype_context_restores_even_after_an_error() -> None:
    with default_dtype(np.float64):
        assert Tensor(0.5).dtype == np.float64
    assert Tensor(0.5).dtype == np.float32
    with pytest.raises(KeyError), default_dtype(np.float16):
        raise KeyError
    assert get_default_dtype() == np.float32


def test_set_default_dtype_rejects_non_float_dtypes() -> None:
    with pytest.raises(TypeError, match="int64"):
        set_default_dtype(np.int64)


def test_python_number_operand_keeps_float32_and_gradient_keeps_leaf_dtype() -> None:
    w = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    assert (w * 2.0).dtype == np.float32
    out = (w * np.arange(3.0)).sum()  # float32 * float64 array -> float64, as NumPy
    assert out.dtype == np.float64
    out.backward()
    assert w.grad is not None and w.grad.dtype == np.float32
    np.testing.assert_array_equal(_grad(w), [0.0, 1.0, 2.0])


# -- backward --------------------------------------------------------------------------------


def test_backward_of_a_non_scalar_needs_a_gradient_as_in_pytorch() -> None:
    w, tw = _leaf(A)
    with pytest.raises(RuntimeError, match=r"shape \(3, 4\).*gradient="):
        w.exp().backward()
    with pytest.raises(RuntimeError):
        tw.exp().backward()


def test_backward_with_a_gradient_is_the_vector_jacobian_product() -> None:
    w, tw = _leaf(A)
    v = RNG.standard_normal((3, 4))
    (w.tanh() * w).backward(gradient=v)
    (tw.tanh() * tw).backward(gradient=torch.from_numpy(v))
    assert tw.grad is not None
    np.testing.assert_allclose(_grad(w), tw.grad.numpy(), rtol=1e-12)


def test_gradient_of_the_wrong_shape_names_both_shapes() -> None:
    w = Tensor(A, requires_grad=True)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3, 4\)"):
        w.exp().backward(gradient=np.ones(4))


def test_backward_on_a_tensor_without_graph_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        Tensor(A).sum().backward()


def test_grad_accumulates_over_backward_calls_as_in_pytorch() -> None:
    w, tw = _leaf(B)
    for k in range(1, 4):  # three separate forward passes
        (w.sin() * k).sum().backward()
        (tw.sin() * k).sum().backward()
    assert tw.grad is not None
    np.testing.assert_allclose(_grad(w), tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(_grad(w), 6 * np.cos(B), rtol=1e-12)


def test_a_leaf_used_twice_gets_the_sum_of_both_paths() -> None:
    w, tw = _leaf(B)
    (w * w.exp() + w).sum().backward()
    (tw * tw.exp() + tw).sum().backward()
    assert tw.grad is not None
    np.testing.assert_allclose(_grad(w), tw.grad.numpy(), rtol=1e-12)


def test_grads_of_two_leaves_never_share_memory() -> None:
    # The rule of `+` passes one array to both inputs: each .grad must get its own.
    a, b = Tensor(B.copy(), requires_grad=True), Tensor(B.copy(), requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not None and b.grad is not None
    a.grad.numpy()[0] = 123.0
    assert b.grad.numpy()[0] == 1.0


def test_grad_does_not_alias_the_gradient_passed_to_backward() -> None:
    x = Tensor(np.zeros(3), requires_grad=True)
    seed = np.ones(3)
    (x + 1.0).backward(gradient=seed)
    seed[0] = 50.0  # the caller reuses its buffer; PyTorch's .grad is unaffected
    assert x.grad is not None and x.grad.numpy()[0] == 1.0


def test_second_backward_through_a_released_graph_raises_as_in_pytorch() -> None:
    w, tw = _leaf(B)
    out = (w.exp() * w).sum()
    out.backward()
    with pytest.raises(RuntimeError, match=r"'sum'.*retain_graph=True"):
        out.backward()
    tout = (tw.exp() * tw).sum()
    tout.backward()
    with pytest.raises(RuntimeError, match="second time"):
        tout.backward()


def test_a_subgraph_released_by_another_output_raises() -> None:
    w = Tensor(B, requires_grad=True)
    h = w.exp() * w
    first, second = h.sum(), (h * 2.0).sum()
    first.backward()
    with pytest.raises(RuntimeError, match=r"'mul'.*freed"):
        second.backward()


def test_retain_graph_allows_a_second_backward_that_adds_again() -> None:
    w, tw = _leaf(B)
    out, tout = (w.exp() * w).sum(), (tw.exp() * tw).sum()
    out.backward(retain_graph=True)
    out.backward()
    tout.backward(retain_graph=True)
    tout.backward()
    assert tw.grad is not None
    np.testing.assert_allclose(_grad(w), tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(_grad(w), 2 * (np.exp(B) * (B + 1)), rtol=1e-12)


def test_backward_releases_the_graph_and_retain_graph_keeps_it() -> None:
    for retain in (False, True):
        w = Tensor(B, requires_grad=True)
        h = w.exp()
        out = (h * h).sum()
        ref = weakref.ref(h)
        del h
        out.backward(retain_graph=retain)
        assert (ref() is not None) == retain, f"retain_graph={retain}"


# -- grad modes ------------------------------------------------------------------------------


def test_no_grad_records_nothing_and_enable_grad_records_inside_it() -> None:
    w = Tensor(B, requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = (w * 2.0).exp()
        with enable_grad():
            z = w * 2.0
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None and z.grad_fn.name() == "MulBackward0"


def test_no_grad_and_enable_grad_work_as_decorators() -> None:
    w = Tensor(B, requires_grad=True)

    @no_grad()
    def evaluate(x: Tensor) -> Tensor:
        return (x * x).sum()

    @enable_grad()
    def record(x: Tensor) -> Tensor:
        return (x * x).sum()

    assert not evaluate(w).requires_grad
    with no_grad():
        out = record(w)
    assert out.requires_grad and is_grad_enabled()
    out.backward()
    np.testing.assert_allclose(_grad(w), 2 * B)


def test_grad_mode_is_restored_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError), no_grad():
        _ = 1 / 0
    assert is_grad_enabled()


def test_recursive_decorated_functions_restore_the_grad_mode_as_in_pytorch() -> None:
    # A decorator is one manager instance entered again by each recursive call.
    @no_grad()
    def depth(n: int) -> int:
        assert not is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    @enable_grad()
    def recording_depth(n: int) -> int:
        assert is_grad_enabled()
        return 0 if n == 0 else 1 + recording_depth(n - 1)

    @torch.no_grad()
    def tdepth(n: int) -> int:
        return 0 if n == 0 else 1 + tdepth(n - 1)

    try:
        assert tdepth(3) == 3 and torch.is_grad_enabled()
        assert depth(3) == 3
        assert is_grad_enabled(), "grad mode left off after a recursive no_grad function"
        with no_grad():
            assert recording_depth(3) == 3
            assert not is_grad_enabled(), "enable_grad leaked out of a recursive function"
    finally:
        set_grad_enabled(True)


def test_set_grad_enabled_as_call_and_as_context() -> None:
    try:
        set_grad_enabled(False)
        assert not is_grad_enabled()
    finally:
        set_grad_enabled(True)
    with set_grad_enabled(False):
        assert not (Tensor(B, requires_grad=True) * 2.0).requires_grad
    assert is_grad_enabled()


def test_backward_inside_no_grad_still_computes_gradients_as_in_pytorch() -> None:
    w, tw = _leaf(B)
    out, tout = (w * w).sum(), (tw * tw).sum()
    with no_grad():
        out.backward()
    with torch.no_grad():
        tout.backward()
    assert tw.grad is not None
    np.testing.assert_allclose(_grad(w), tw.grad.numpy())
