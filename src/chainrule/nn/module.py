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

from chainrule.tensor import device as devices
from chainrule.tensor.device import CPU, resolve
from chainrule.tensor.device import device as _device
from chainrule.tensor.movement import host_array, parse_to
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

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Keep ``tensor`` as attribute ``name``: state that is not trained (running
        statistics, masks). ``to()`` moves it with the parameters, and ``state_dict()``
        includes it unless ``persistent=False``."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(
                f"register_buffer: the name must be a non-empty string without '.', got {name!r}."
            )
        if tensor is not None and (not isinstance(tensor, Tensor) or isinstance(tensor, Parameter)):
            raise TypeError(
                f"register_buffer: {name!r} must be a Tensor (not a Parameter) or None, got "
                f"{type(tensor).__name__}; parameters are found as attributes without registering."
            )
        vars(self).setdefault("_buffers", {})[name] = bool(persistent)
        setattr(self, name, tensor)

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """(name, buffer) pairs of this module and its submodules (None buffers skipped)."""
        for prefix, module in self.named_modules():
            for name in _buffer_names(module):
                buf = vars(module).get(name)
                if buf is not None:
                    yield (f"{prefix}.{name}" if prefix else name), buf

    def buffers(self) -> Iterator[Tensor]:
        for _, b in self.named_buffers():
            yield b

    def _persistent_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for prefix, module in self.named_modules():
            for name, persistent in vars(module).get("_buffers", {}).items():
                buf = vars(module).get(name)
                if persistent and buf is not None:
                    yield (f"{prefix}.{name}" if prefix else name), buf

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
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``: move (and cast) this module's
        parameters and buffers; returns self.

        As PyTorch's ``Module.to``: each Parameter keeps its identity (its array, and its
        ``.grad``'s, are replaced in place), so an optimiser built before the move still
        holds the model's parameters; buffers are replaced by new tensors. Only
        floating-point arrays change dtype (integer buffers keep theirs).
        """
        dev, dtype = parse_to(args, kwargs, "Module.to")
        where = resolve(dev, "Module.to") if dev is not None else None
        dt = None if dtype is None else np.dtype(dtype)
        if dt is not None and dt.kind not in "fc":
            raise TypeError(
                f"Module.to: only floating-point dtypes can be given, got {dt}; integer "
                "parameters and buffers keep their dtype."
            )
        for p in self.parameters():
            new = _converted(p._data, where, dt)
            if new is not p._data:
                # (An array handed out before, .numpy(), is no longer this tensor's memory.)
                p._data, p._fp = new, None
                mark_modified(p)
            if p.grad is not None:
                g = _converted(p.grad._data, where, dt)
                if g is not p.grad._data:
                    p.grad._data, p.grad._fp = g, None
                    mark_modified(p.grad)
        for module in self.modules():
            for name in _buffer_names(module):
                buf = vars(module)[name]
                if buf is not None:
                    new = _converted(buf._data, where, dt)
                    if new is not buf._data:
                        moved = Tensor._wrap(new)
                        moved._requires_grad = buf._requires_grad
                        moved.name = buf.name
                        vars(module)[name] = moved
        return self

    def cpu(self) -> Self:
        """Move the parameters and buffers to host memory (``to("cpu")``)."""
        return self.to(CPU)

    def cuda(self, device: Any = None) -> Self:
        """Move the parameters and buffers to GPU ``device`` (an index; the current GPU by
        default). Raises, naming the extra to install, when CuPy or a GPU is missing."""
        return self.to(_device("cuda") if device is None else _device("cuda", device))

    def float(self) -> Self:
        return self.to(np.float32)

    def double(self) -> Self:
        return self.to(np.float64)

    # -- saving and loading -----------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot: name -> a NumPy copy of each parameter's and persistent buffer's
        array (later steps don't change it), in host memory whatever the device.

        Tied parameters appear under each of their names. Save it with
        ``chainrule.save(model.state_dict(), path)``.
        """
        own = [*self._all_named_parameters(), *self._persistent_buffers()]
        return {name: _host_copy(t._data) for name, t in own}

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy the arrays of ``state_dict`` into the parameters, in place.

        Every problem is reported in one error, and nothing is changed when there is one:
        names missing from ``state_dict`` and names it has that the model lacks (both only
        when ``strict``), and arrays whose shape or dtype differ from the parameter's.
        Parameters keep their identity, so an optimiser holding them stays valid.

        Returns:
            The missing and unexpected names (empty lists when ``strict``).
        """
        own: dict[str, Tensor] = dict(self._all_named_parameters())
        own.update(self._persistent_buffers())
        given = {k: (host_array(v) if isinstance(v, Tensor) else v) for k, v in state_dict.items()}
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
            elif value.dtype != devices.host_dtype(p._data):
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
                if type(p._data) is np.ndarray:
                    np.copyto(p._data, given[name])
                else:  # into the device's array, in place (views of it stay valid)
                    p._data[...] = devices.move(given[name], devices.device_of(p._data))
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


def _buffer_names(module: Module) -> list[str]:
    return list(vars(module).get("_buffers", ()))


def _host_copy(array: Any) -> np.ndarray:
    """A NumPy copy of ``array`` (a device's array is copied to the host anyway)."""
    return array.copy() if type(array) is np.ndarray else host_array(array)


def _converted(array: Any, where: Any, dt: np.dtype[Any] | None) -> Any:
    """``array`` on device ``where`` (None: where it is) and, if it is floating-point, in
    dtype ``dt`` (None: its own); ``array`` itself when nothing changes."""
    out = array
    if dt is not None:
        have = devices.host_dtype(out)
        if have.kind in "fc" and have != dt:
            if isinstance(out.dtype, np.dtype):  # NumPy and CuPy arrays cast where they are
                out = out.astype(dt)
            else:  # another library's dtypes: cast on the host, then put back
                out = devices.move(host_array(out).astype(dt), devices.device_of(out))
    if where is not None:
        out = devices.move(out, where)
    return out
