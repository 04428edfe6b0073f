"""Every tensor op against PyTorch in float64: values and gradients to 1e-10 relative.

The cases (shapes with broadcasting, size-1 and zero-size axes; relu/abs at 0, ties for
max/min/maximum/minimum, clip at its bounds, huge logits) are listed in ``op_twins.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from chainrule.tensor import Tensor, backend, ops
from tests.tensor.op_twins import (
    BACKENDS,
    CASES,
    Case,
    assert_close,
    library_for,
    make_inputs,
)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0), 0 ** -1: nan/inf on purpose
@pytest.mark.parametrize("lib", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_values_and_gradients_equal_pytorch(case: Case, lib: str) -> None:
    xp = library_for(case, lib)
    ours, theirs = make_inputs(case.inputs, xp)
    out = case.fn(*ours)
    tout = case.tfn(*theirs)
    assert isinstance(out, Tensor)
    assert type(out._data) is np.ndarray if xp is np else library_of(out) is xp
    assert_close(out, tout, f"{case.id}: value")

    seed = np.random.default_rng(len(case.id)).standard_normal(out.shape)
    out.backward(xp.asarray(seed))
    tout.backward(torch.from_numpy(np.array(seed)))
    for k, (x, tx) in enumerate(zip(ours, theirs, strict=True)):
        if isinstance(x, Tensor):
            assert x.grad is not None, f"{case.id}: no gradient reached input {k}"
            assert library_of(x.grad) is xp, f"{case.id}: gradient {k} left {lib}"
            expected = tx.grad if tx.grad is not None else torch.zeros_like(tx)
            assert_close(x.grad, expected, f"{case.id}: gradient of input {k}")


def library_of(t: Tensor) -> Any:
    return backend.array_namespace(t)


HUGE = [c for c in CASES if "huge" in c.id]


@pytest.mark.parametrize("case", HUGE, ids=[c.id for c in HUGE])
def test_softmax_family_is_finite_for_huge_inputs(case: Case) -> None:
    ours, _ = make_inputs(case.inputs)
    out = case.fn(*ours)
    assert np.isfinite(out.numpy()).all()
    out.backward(np.ones(out.shape))
    assert all(np.isfinite(x.grad.numpy()).all() for x in ours if isinstance(x, Tensor))


def test_every_differentiable_op_has_a_pytorch_case() -> None:
    # A new op in ops/ must get a PyTorch twin in op_twins.py. Comparisons and sign carry
    # no gradient; the other names are how the case ids spell the op.
    no_gradient = {"sign", "equal", "not_equal", "less", "less_equal", "greater",
                   "greater_equal", "logical_and", "logical_or", "logical_not"}  # fmt: skip
    spelled = {"absolute": "abs", "negative": "neg", "subtract": "sub", "multiply": "mul",
               "divide": "div", "power": "pow", "expand_dims": "unsqueeze"}  # fmt: skip
    ids = {c.id.split("(")[0].split("_")[0] for c in CASES} | {c.id for c in CASES}
    for name in set(ops.__all__) - no_gradient:
        spelling = spelled.get(name, name)
        assert any(i.startswith(spelling) for i in ids), f"ops.{name} has no PyTorch case"


def test_linear_rejects_a_bias_that_widens_the_output_as_pytorch_does() -> None:
    x, w, b = np.ones(3), np.ones((2, 3)), np.ones((4, 2))
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(*(torch.from_numpy(a) for a in (x, w, b)))
    with pytest.raises(
        ValueError, match=r"linear: .*bias of shape \(4, 2\).*give bias shape \(2,\)"
    ):
        ops.linear(Tensor(x), Tensor(w, requires_grad=True), Tensor(b))


def test_sum_to_rejects_a_shape_it_was_not_broadcast_from_as_pytorch_does() -> None:
    # A gradient of the wrong layout (a VJP rule's bug) must raise, not be reshaped into place.
    with pytest.raises(RuntimeError):
        torch.zeros(3, 2).sum_to_size(2, 3)
    with pytest.raises(ValueError, match=r"sum_to: .*\(3, 2\) is not a broadcast of \(2, 3\)"):
        ops.sum_to(Tensor(np.zeros((3, 2)), requires_grad=True), (2, 3))
