"""The lecture's toy network: formulas, Value engine, finite differences and PyTorch agree."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from chainrule import to_dot
from chainrule.lecture import ACTIVATIONS, toy_graph, toy_network
from chainrule.lecture.toy import PARAMETERS, resolve_activations
from tests.conftest import close

NAMES = sorted(ACTIVATIONS)
KINKED = {"relu", "abs"}  # not differentiable at 0: finite differences average the sides

TORCH_ACT = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "sin": torch.sin,
    "cos": torch.cos,
    "exp": torch.exp,
    "abs": torch.abs,
}


def torch_toy(
    x: float, y: float, beta: list[float], omega: list[float], acts: tuple[str, str, str]
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """The network in PyTorch float64: forward quantities, ∂ℓ/∂(each), parameter grads."""
    b = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in beta]
    w = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in omega]
    h = torch.tensor(x, dtype=torch.float64)
    fwd: dict[str, torch.Tensor] = {}
    for k in range(4):
        f = b[k] + w[k] * h
        fwd[f"f{k}"] = f
        if k < 3:
            h = TORCH_ACT[acts[k]](f)
            fwd[f"h{k + 1}"] = h
    loss = (fwd["f3"] - y) ** 2
    for t in fwd.values():
        t.retain_grad()
    loss.backward()
    forward = {k: v.item() for k, v in fwd.items()} | {"loss": loss.item()}
    backward = {f"dl_d{k}": float(v.grad) for k, v in fwd.items()}  # type: ignore[arg-type]
    grads = {f"beta{k}": float(b[k].grad) for k in range(4)}  # type: ignore[arg-type]
    grads |= {f"omega{k}": float(w[k].grad) for k in range(4)}  # type: ignore[arg-type]
    return forward, backward, grads


coord = st.floats(-2.0, 2.0, allow_nan=False)
four = st.lists(coord, min_size=4, max_size=4)
layer_acts = st.tuples(*(st.sampled_from(NAMES) for _ in range(3)))


def check_three_ways_and_torch(
    x: float, y: float, beta: list[float], omega: list[float], acts: tuple[str, str, str]
) -> None:
    r = toy_network(x, y, beta, omega, acts)
    fwd = [r.forward.f0, r.forward.f1, r.forward.f2]
    # A central difference errs by ~h²·ℓ'''/6 plus ~ε·|ℓ(p ± h)|/h. With exp feeding exp,
    # ℓ''' grows doubly exponentially (e.g. ℓ = (e^(1618·ω2))²), so the test keeps the
    # network where every forward quantity is moderate, as in the lecture's examples.
    assume(all(abs(v) <= 10.0 for k, v in vars(r.forward).items() if k != "loss"))
    # Keep finite differences off the kinks of relu/abs (the step moves fk by ~1e-5 at most).
    assume(all(abs(fwd[k]) > 1e-3 for k in range(3) if acts[k] in KINKED))
    t_fwd, t_bwd, t_grads = torch_toy(x, y, beta, omega, acts)
    for k, v in vars(r.forward).items():
        assert close(v, t_fwd[k], rel=1e-12, abs_=1e-14), (k, v, t_fwd[k])
    for k, v in vars(r.backward).items():
        assert close(v, t_bwd[k], rel=1e-12, abs_=1e-12), (k, v, t_bwd[k])
    for p in PARAMETERS:
        g = r.grads[p]
        assert close(g.formula, g.autograd, rel=1e-12, abs_=1e-14), (p, g)
        assert close(g.formula, t_grads[p], rel=1e-12, abs_=1e-12), (p, g, t_grads[p])
        # Central differences: rounding ~1e-10·ℓ, truncation ~h²·ℓ''' with h = 1e-6.
        tol = 1e-6 * max(1.0, abs(g.formula), r.forward.loss)
        assert abs(g.finite_difference - g.formula) <= tol, (p, g)
    assert r.max_disagreement == max(g.disagreement for g in r.grads.values())


@given(x=coord, y=coord, beta=four, omega=four, acts=layer_acts)
def test_mixed_per_layer_activations_agree_three_ways_and_with_torch(
    x: float, y: float, beta: list[float], omega: list[float], acts: tuple[str, str, str]
) -> None:
    check_three_ways_and_torch(x, y, beta, omega, acts)


@pytest.mark.parametrize("name", NAMES)
@given(x=coord, y=coord, beta=four, omega=four)
def test_each_activation_agrees_three_ways_and_with_torch(
    name: str, x: float, y: float, beta: list[float], omega: list[float]
) -> None:
    check_three_ways_and_torch(x, y, beta, omega, (name, name, name))


@pytest.mark.parametrize("name", NAMES)
@given(z=st.floats(-5.0, 5.0, allow_nan=False))
def test_activation_table_derivative_matches_torch_and_central_difference(
    name: str, z: float
) -> None:
    act = ACTIVATIONS[name]
    t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    out = TORCH_ACT[name](t)
    out.backward()
    assert close(act.fn(z), out.item(), rel=1e-14, abs_=1e-15)
    assert close(act.grad(z), float(t.grad), rel=1e-14, abs_=1e-15)  # type: ignore[arg-type]
    if name in KINKED:
        assume(abs(z) > 1e-4)
    h = 1e-6
    fd = (act.fn(z + h) - act.fn(z - h)) / (2 * h)
    assert abs(fd - act.grad(z)) <= 1e-7 * max(1.0, abs(act.grad(z)))


def test_default_relu_example_matches_numbers_worked_by_hand() -> None:
    # x = 2.3, y = 2, β = (1, 2, -3, 0.4), ω = (0.1, -0.4, 2, 3); all pre-activations > 0,
    # so ReLU passes everything: f0 = 1.23, f1 = 2 - 0.4·1.23 = 1.508, f2 = -3 + 2·1.508 =
    # 0.016, f3 = 0.4 + 3·0.016 = 0.448, ℓ = (0.448 - 2)² = 2.408704.
    r = toy_network()
    hand_fwd = dict(f0=1.23, h1=1.23, f1=1.508, h2=1.508, f2=0.016, h3=0.016, f3=0.448)
    hand_fwd["loss"] = 2.408704
    hand_bwd = dict(dl_df3=-3.104, dl_dh3=-9.312, dl_df2=-9.312, dl_dh2=-18.624)
    hand_bwd |= dict(dl_df1=-18.624, dl_dh1=7.4496, dl_df0=7.4496)
    hand_grads = dict(beta0=7.4496, beta1=-18.624, beta2=-9.312, beta3=-3.104)
    hand_grads |= dict(omega0=2.3 * 7.4496, omega1=-22.90752, omega2=-14.042496)
    hand_grads |= dict(omega3=-0.049664)
    for k, v in hand_fwd.items():
        assert close(getattr(r.forward, k), v, rel=1e-12), k
    for k, v in hand_bwd.items():
        assert close(getattr(r.backward, k), v, rel=1e-12), k
    for k, v in hand_grads.items():
        g = r.grads[k]
        assert close(g.formula, v, rel=1e-12) and close(g.autograd, v, rel=1e-12), k
        assert abs(g.finite_difference - v) < 1e-7, k
    assert r.max_disagreement < 1e-7


def test_textbook_sin_exp_cos_example_matches_direct_chain_rule_and_torch() -> None:
    x, y, beta, omega = 2.3, 2.0, [1.0, 2.0, -3.0, 0.4], [0.1, -0.4, 2.0, 3.0]
    r = toy_network(x, y, beta, omega, "sin,exp,cos")
    # Direct float math: ℓ = (β3 + ω3 cos(β2 + ω2 exp(β1 + ω1 sin(β0 + ω0 x))) − y)².
    f0 = beta[0] + omega[0] * x
    f1 = beta[1] + omega[1] * math.sin(f0)
    f2 = beta[2] + omega[2] * math.exp(f1)
    f3 = beta[3] + omega[3] * math.cos(f2)
    assert close(r.forward.loss, (f3 - y) ** 2, rel=1e-13)
    # Each gradient as one product of the chain's factors, written out.
    e3 = 2 * (f3 - y)
    e2 = e3 * omega[3] * -math.sin(f2)
    e1 = e2 * omega[2] * math.exp(f1)
    e0 = e1 * omega[1] * math.cos(f0)
    expected = dict(beta0=e0, beta1=e1, beta2=e2, beta3=e3, omega0=e0 * x)
    expected |= dict(omega1=e1 * math.sin(f0), omega2=e2 * math.exp(f1))
    expected |= dict(omega3=e3 * math.cos(f2))
    _, t_bwd, t_grads = torch_toy(x, y, beta, omega, ("sin", "exp", "cos"))
    for p, v in expected.items():
        assert close(r.grads[p].formula, v, rel=1e-12), p
        assert close(r.grads[p].autograd, v, rel=1e-12), p
        assert close(t_grads[p], v, rel=1e-12), p
    for k, v in vars(r.backward).items():
        assert close(v, t_bwd[k], rel=1e-12), k
    assert r.max_fd_disagreement < 1e-6
    assert r.max_autograd_disagreement < 1e-12


def test_relu_at_zero_uses_pytorchs_subgradient_everywhere() -> None:
    # β0 = 0, x = 0: f0 = 0 exactly, so relu'(f0) = 0 and the first layer gets no gradient.
    beta, omega = [0.0, 0.5, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]
    r = toy_network(0.0, 3.0, beta, omega, "relu")
    _, t_bwd, t_grads = torch_toy(0.0, 3.0, beta, omega, ("relu", "relu", "relu"))
    assert r.forward.f0 == 0.0
    assert r.backward.dl_df0 == 0.0 == t_bwd["dl_df0"]
    assert r.grads["beta0"].formula == 0.0 == r.grads["beta0"].autograd == t_grads["beta0"]
    # Finite differences straddle the kink: half the right-hand slope, and the report shows it.
    assert r.grads["beta0"].finite_difference == pytest.approx(r.backward.dl_dh1 / 2, rel=1e-6)
    assert r.max_disagreement == pytest.approx(abs(r.backward.dl_dh1) / 2, rel=1e-6)


def test_graph_nodes_carry_the_lectures_names_and_the_engines_grads() -> None:
    g = toy_graph(2.3, 2.0, [1, 2, -3, 0.4], [0.1, -0.4, 2, 3], ["sin", "exp", "cos"])
    names = ["x", "y", "f0", "h1", "f1", "h2", "f2", "h3", "f3", "ℓ"]
    names += [f"{s}{k}" for s in "βω" for k in range(4)]
    for name in names:
        assert g.nodes[name].label == name
    assert g.loss is g.nodes["ℓ"]
    assert g.params["omega2"] is g.nodes["ω2"]
    assert g.nodes["ℓ"].grad == 1.0
    assert g.nodes["h2"]._op == "exp" and g.nodes["h3"]._op == "cos"
    text = to_dot(g.loss)
    for name in names:
        assert f"{{ {name} | data" in text, name
    r = toy_network(2.3, 2.0, [1, 2, -3, 0.4], [0.1, -0.4, 2, 3], "sin,exp,cos")
    assert r.graph().params["beta1"].grad == g.params["beta1"].grad == r.grads["beta1"].autograd


def test_activation_spec_forms_are_equivalent() -> None:
    assert resolve_activations("relu") == ("relu", "relu", "relu")
    assert resolve_activations(["relu"]) == ("relu", "relu", "relu")
    assert resolve_activations("Sin, EXP ,cos") == ("sin", "exp", "cos")
    assert resolve_activations(("sin", "exp", "cos")) == ("sin", "exp", "cos")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(activation="softplus"), "unknown activation 'softplus'; choose from relu"),
        (dict(activation="sin,cos"), "give 1 activation .* or 3 .* got 2"),
        (dict(beta=[1.0, 2.0]), "beta needs 4 numbers .* got 2"),
        (dict(omega=[1.0] * 5), "omega needs 4 numbers .* got 5"),
    ],
)
def test_bad_arguments_raise_value_errors_that_say_what_to_give(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        toy_network(**kwargs)  # type: ignore[arg-type]


def test_results_are_frozen() -> None:
    r = toy_network()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.forward.f0 = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.grads["beta0"] = r.grads["beta1"]  # type: ignore[index]


def test_overflow_gives_inf_and_a_nan_disagreement_instead_of_an_exception() -> None:
    # exp(exp(exp(...))): h3 = e^240158.9 overflows to inf, as in IEEE arithmetic.
    r = toy_network(0.0, 0.0, [2.0, 5.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0], "exp")
    assert r.forward.h3 == math.inf and r.forward.loss == math.inf
    assert r.grads["beta3"].formula == math.inf == r.grads["beta3"].autograd
    assert math.isnan(r.max_disagreement)  # inf - inf: the three ways cannot be compared
