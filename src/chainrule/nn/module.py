"""``Module`` and ``Parameter``: the building blocks of networks on the tensor engine.

A Module finds its parts by looking at its attributes, so a layer needs no registration:
an attribute holding a ``Parameter`` is one of its parameters; one holding a ``Module``
(or a list or tuple of Modules or Parameters) is a child. Names follow the attribute path
(``layers.0.weight``), as in PyTorch.

Example:
    >>> import numpy as np
    >>> from chainrule import nn
    >>> class Affine(nn.Module):
    ...     def __init__(self) -> None:
    ...         self.scale = nn.Parameter(np.ones(3))
    ...         self.shift = nn.Parameter(np.zeros(3))
    ...     def forward(self, x):
    ...         return x * self.scale + self.shift
    >>> [name for name, _ in Affine().named_parameters()]
    ['scale', 'shift']
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Self

import numpy as np

from chainrule.tensor.device import set_default_device
from chainrule.tensor.primitive import mark_modified
from chainrule.tensor.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module reports as trainable (``requires_grad=True`` by default).

    The data is copied, with the dtype policy of ``Tensor`` (NumPy arrays keep their dtype).
    Optimisers update it in place, so the model and the optimiser share the same object.
    """

    __slots__ = ()

    def __init__(
        self, data: Any, requires_grad: bool = True, dtype: Any = None, name: str = ""
    ) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models: subclass it and write ``forward``.

    ``module(x)`` calls ``module.forward(x)``. ``training`` is True after construction and
    after ``train()``; ``eval()`` sets it False in every submodule (Dropout reads it).
    Subclasses need not call ``super().__init__()``.
    """

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__}.forward: a Module subclass must define forward(); "
            "module(x) calls it."
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- finding parameters and children ----------------------------------------------------

    def _members(self) -> Iterator[tuple[str, Any]]:
        """(name, attribute) pairs to search; containers override this."""
        return iter(vars(self).items())

    def _own(self) -> tuple[list[tuple[str, Parameter]], list[tuple[str, Module]]]:
        params: list[tuple[str, Parameter]] = []
        children: list[tuple[str, Module]] = []
        for name, value in self._members():
            if isinstance(value, Parameter):
                params.append((name, value))
            elif isinstance(value, Module):
                children.append((name, value))
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Parameter):
                        params.append((f"{name}.{i}", item))
                    elif isinstance(item, Module):
                        children.append((f"{name}.{i}", item))
        return params, children

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules, with their attribute names."""
        yield from self._own()[1]

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module ('' by default) and every submodule below it, each once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # iterative: deep nets do not hit the recursion limit
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _all_named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for prefix, module in self.named_modules():
            for name, p in module._own()[0]:
                yield (f"{prefix}.{name}" if prefix else name), p

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs; a parameter shared by two layers is listed once."""
        seen: set[int] = set()  # by identity: == on tensors is elementwise
        for name, p in self._all_named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def parameters(self) -> Iterator[Parameter]:
        """Every trainable tensor, each once: pass them to an optimiser."""
        for _, p in self.named_parameters():
            yield p

    # -- modes and gradients ----------------------------------------------------------------

    def train(self, mode: bool = True) -> Self:
        """Set training mode (``mode=True``) in this module and every submodule; returns self."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Self:
        """Evaluation mode: ``train(False)`` (Dropout becomes the identity)."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (default) or fill them with 0."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad._data.fill(0)
                mark_modified(p.grad)  # a graph that saved this .grad is now stale

    def to(self, *args: Any, **kwargs: Any) -> Self:
        """``to(device)`` (the CPU: nothing moves) or ``to(dtype)``: every parameter's
        array converted in place (the Parameter objects are kept); returns self."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        for a in args:
            if isinstance(a, str) or type(a).__name__ == "device":
                device = a
            else:
                dtype = a
        if device is not None:
            set_default_device(device)  # raises for a device other than the CPU
        if dtype is not None:
            dt = np.dtype(dtype)
            for p in self.parameters():
                if p.dtype != dt:
                    p._data = p._data.astype(dt)
                    mark_modified(p)
        return self

    def cpu(self) -> Self:
        return self

    def float(self) -> Self:
        return self.to(np.float32)

    def double(self) -> Self:
        return self.to(np.float64)

    # -- saving and loading -----------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot: name -> a copy of each parameter's array (later steps don't change it).

        Tied parameters appear under each of their names. Save it with
        ``np.savez(path, **model.state_dict())``.
        """
        return {name: p._data.copy() for name, p in self._all_named_parameters()}

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy the arrays of ``state_dict`` into the parameters, in place.

        Every problem is reported in one error, and nothing is changed when there is one:
        names missing from ``state_dict`` and names it has that the model lacks (both only
        when ``strict``), and arrays whose shape or dtype differ from the parameter's.
        Parameters keep their identity, so an optimiser holding them stays valid.

        Returns:
            The missing and unexpected names (empty lists when ``strict``).
        """
        own = dict(self._all_named_parameters())
        given = {k: (v._data if isinstance(v, Tensor) else v) for k, v in state_dict.items()}
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        problems: list[str] = []
        if strict:
            problems += [
                f"missing key {k!r} (the model has it, the state dict does not)" for k in missing
            ]
            problems += [
                f"unexpected key {k!r} (the state dict has it, the model does not)"
                for k in unexpected
            ]
        for name, p in own.items():
            if name not in given:
                continue
            value = given[name]
            if not isinstance(value, np.ndarray | np.generic):
                problems.append(f"{name!r}: expected a NumPy array, got {type(value).__name__}")
            elif value.shape != p.shape:
                problems.append(
                    f"shape mismatch for {name!r}: model {p.shape}, state dict {value.shape}"
                )
            elif value.dtype != p.dtype:
                problems.append(
                    f"dtype mismatch for {name!r}: model {p.dtype}, state dict {value.dtype}"
                )
        if problems:
            raise RuntimeError(
                f"load_state_dict: the state dict does not fit this {type(self).__name__} "
                f"({len(problems)} problem{'s' if len(problems) > 1 else ''}; nothing was "
                "loaded):\n  - " + "\n  - ".join(problems) + "\nBuild the model with the "
                "same sizes and dtype as the one that was saved; pass strict=False to skip "
                "missing and unexpected keys."
            )
        for name, p in own.items():
            if name in given:
                np.copyto(p._data, given[name])
                mark_modified(p)  # a graph recorded before the load is now stale
        return IncompatibleKeys(missing, unexpected)

    # -- printing ---------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's line in ``repr``."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
