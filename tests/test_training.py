"""``chainrule.training``: the loop against PyTorch, configs, metrics, model files, pictures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

import chainrule
from chainrule.data import DataLoader, dataset_info, load_dataset
from chainrule.training import (
    DEFAULTS,
    RunWriter,
    TrainConfig,
    TrainingDiverged,
    build_model,
    check_config,
    confusion_matrix,
    default_config,
    evaluate,
    fit,
    load_trained,
)
from chainrule.training import loop as loop_module
from chainrule.training.loop import SMALL_PRODUCT, auto_threads
from tests.training_oracle import numpy_accuracy


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny steps: PyTorch's spinning threads only slow them down
    yield
    torch.set_num_threads(previous)


class RecordingLoader(DataLoader):
    """The loader ``fit`` uses, remembering every batch it hands out."""

    batches: ClassVar[list[tuple[np.ndarray, np.ndarray]]] = []

    def __iter__(self) -> Iterator[Any]:
        for x, y in super().__iter__():
            RecordingLoader.batches.append((x.numpy().copy(), y.numpy().copy()))
            yield x, y


def _torch_replay(
    model: chainrule.nn.MLP, config: TrainConfig, batches: list[Any], steps_per_epoch: int
) -> torch.nn.Sequential:
    """The same steps by hand in PyTorch: SGD/Adam/AdamW with a cosine schedule per epoch."""
    sizes = [model.layers[0].in_features] + [m.out_features for m in model.layers[::2]]
    layers: list[torch.nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).double()
    net.load_state_dict(
        {k.removeprefix("layers."): torch.tensor(v) for k, v in model.state_dict().items()}
    )
    params = list(net.parameters())
    if config.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    elif config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    for i, (x, y) in enumerate(batches):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.tensor(x)), torch.tensor(y)).backward()
        opt.step()
        if (i + 1) % steps_per_epoch == 0:
            sched.step()
    return net


@pytest.mark.parametrize(
    "optimizer,lr,weight_decay", [("sgd", 0.1, 1e-3), ("adam", 0.01, 1e-4), ("adamw", 0.01, 0.1)]
)
def test_fit_takes_the_same_steps_as_a_hand_written_pytorch_loop(
    monkeypatch: pytest.MonkeyPatch, optimizer: str, lr: float, weight_decay: float
) -> None:
    monkeypatch.setattr(loop_module, "DataLoader", RecordingLoader)
    RecordingLoader.batches = []
    splits = load_dataset("moons", seed=3, dtype=np.float64)
    config = TrainConfig(
        "moons", hidden=(16, 8), epochs=3, batch_size=50, optimizer=optimizer, lr=lr,
        weight_decay=weight_decay, seed=5,
    )  # fmt: skip
    model = build_model(config, splits.info, dtype=np.float64)
    start = build_model(config, splits.info, dtype=np.float64)  # same seed: same weights
    history = fit(model, splits, config)

    steps = -(-len(splits.y_train) // config.batch_size)
    assert [m.steps for m in history] == [steps] * 3
    assert len(RecordingLoader.batches) == 3 * steps
    # Each epoch visits every training sample once, in a new order.
    for e in range(3):
        ys = np.concatenate([y for _, y in RecordingLoader.batches[e * steps : (e + 1) * steps]])
        assert np.array_equal(np.sort(ys), np.sort(splits.y_train))
    net = _torch_replay(start, config, RecordingLoader.batches, steps)
    for name, value in model.state_dict().items():
        theirs = net.state_dict()[name.removeprefix("layers.")].numpy()
        np.testing.assert_allclose(value, theirs, rtol=1e-9, atol=1e-12, err_msg=name)
    # The recorded metrics are the final model's, measured in PyTorch too.
    with torch.no_grad():
        logits = net(torch.tensor(splits.x_test))
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(splits.y_test)).item()
        acc = (logits.argmax(1).numpy() == splits.y_test).mean()
    assert history[-1].test_loss == pytest.approx(loss, rel=1e-9)
    assert history[-1].test_acc == acc
    # The cosine schedule: epoch e used lr · (1 + cos(π (e-1) / E)) / 2.
    expected_lr = [lr * (1 + np.cos(np.pi * e / 3)) / 2 for e in range(3)]
    assert [m.lr for m in history] == pytest.approx(expected_lr, rel=1e-12)


def test_the_same_seed_repeats_a_run_and_another_seed_does_not() -> None:
    splits = load_dataset("circles", seed=0)
    config = default_config("circles", epochs=2, hidden=(8,))
    runs = [fit(build_model(c, splits.info), splits, c) for c in (config, config)]
    other = config.replace(seed=1)
    runs.append(fit(build_model(other, splits.info), splits, other))
    assert [m.train_loss for m in runs[0]] == [m.train_loss for m in runs[1]]
    assert [m.train_loss for m in runs[0]] != [m.train_loss for m in runs[2]]


def test_evaluate_and_confusion_matrix_agree_with_scikit_learn() -> None:
    from sklearn.metrics import confusion_matrix as sk_confusion
    from sklearn.metrics import log_loss

    splits = load_dataset("digits", seed=2)
    config = default_config("digits", epochs=1, hidden=(32,))
    model = build_model(config, splits.info)
    fit(model, splits, config)
    result = evaluate(model, splits.x_test, splits.y_test, batch_size=100)  # several chunks
    assert model.training  # evaluate restores the mode it found
    model.eval()  # the reference: one pass without dropout
    with chainrule.no_grad():
        logits = model(chainrule.Tensor(splits.x_test)).numpy().astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert result.loss == pytest.approx(log_loss(splits.y_test, probs, labels=range(10)), 1e-4)
    assert result.accuracy == np.mean(logits.argmax(1) == splits.y_test)
    matrix = confusion_matrix(splits.y_test, result.predictions, 10)
    assert np.array_equal(matrix, sk_confusion(splits.y_test, result.predictions, labels=range(10)))


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("hidden", (), "hidden"), ("hidden", (64, 0), "hidden"), ("epochs", 0, "epochs"),
        ("batch_size", -1, "batch_size"), ("lr", 0.0, "lr"), ("lr", float("nan"), "lr"),
        ("weight_decay", -1e-3, "weight_decay"), ("momentum", 1.0, "momentum"),
        ("dropout", 1.0, "dropout"), ("optimizer", "lbfgs", "optimizer"),
        ("schedule", "step", "schedule"), ("activation", "swish", "activation"),
        ("seed", -1, "seed"),
    ],
)  # fmt: skip
def test_a_bad_config_is_refused_naming_the_field(field: str, value: Any, words: str) -> None:
    config = TrainConfig("moons").replace(**{field: value})
    with pytest.raises(ValueError, match=f"TrainConfig: {words} must be"):
        check_config(config)


def test_defaults_exist_for_every_data_set_and_overrides_apply() -> None:
    for name in ("moons", "circles", "digits", "mnist1d"):
        check_config(DEFAULTS[name])
        assert DEFAULTS[name].dataset == name
    config = default_config("MNIST-1D", lr=0.5, seed=None)  # names are normalised
    assert (config.dataset, config.lr, config.seed) == ("mnist1d", 0.5, 0)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        default_config("mnist")


def test_one_blas_thread_only_for_small_products() -> None:
    info = dataset_info("mnist1d")
    assert auto_threads(default_config("mnist1d"), info) == 1
    wide = default_config("mnist1d", hidden=(1024, 1024), batch_size=256)
    assert SMALL_PRODUCT < 1024 * 1024 * 256 and auto_threads(wide, info) is None


def test_a_diverging_run_raises_naming_the_learning_rate() -> None:
    splits = load_dataset("moons")
    config = default_config("moons", optimizer="sgd", lr=1e9, epochs=2)
    with pytest.raises(TrainingDiverged, match=r"learning rate 1e\+09 is too high"):
        fit(build_model(config, splits.info), splits, config)


def test_a_saved_run_loads_back_with_the_same_predictions(tmp_path: Path) -> None:
    splits = load_dataset("digits", seed=4)
    config = default_config("digits", epochs=2, hidden=(24, 12), seed=4)
    model = build_model(config, splits.info)
    history = fit(model, splits, config)
    writer = RunWriter(tmp_path / "run", config)
    writer.write_epoch(model, splits, history)
    trained = load_trained(writer.model_path)
    raw = load_dataset("digits", seed=4, standardize=False, dtype=np.float64)
    x = trained.transform(raw.x_test)
    assert np.array_equal(x, splits.x_test)  # the recorded mean/std reproduce the split
    again = evaluate(trained.model, x, raw.y_test)
    assert again.accuracy == history[-1].test_acc
    assert numpy_accuracy(writer.model_path) == history[-1].test_acc
    assert trained.metadata["epochs_completed"] == 2


def test_a_model_file_without_training_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    chainrule.save(chainrule.nn.MLP(2, [4], 2), path)
    with pytest.raises(ValueError, match="not one written by 'chainrule train'"):
        load_trained(path)
