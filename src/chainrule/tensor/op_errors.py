"""The errors of a recorded operation: NumPy's message with the op's name, the input
shapes and what to do; and detect_anomaly()'s check of a forward result."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from chainrule.tensor import anomaly, backend

if TYPE_CHECKING:
    from chainrule.tensor.primitive import Primitive


_HINTS = {
    "matmul": "x @ y needs x.shape[-1] == y.shape[-2] (for 1-D: equal lengths); transpose an "
    "operand (.T) or reshape it",
    "linear": "x must be (..., in_features) and weight (out_features, in_features)",
    "reshape": "the new shape must hold the same number of elements (one -1 is inferred)",
    "getitem": "each index must lie within its axis (0 <= i < size, or negative from the end)",
    "concatenate": "all inputs must have the same shape except along the joined axis",
    "stack": "all inputs must have the same shape",
}
_BROADCAST_HINT = (
    "shapes must be equal or broadcastable: compared from the last axis, each pair of sizes "
    "must match or one must be 1; reshape or unsqueeze an operand"
)


def _explain(prim: Primitive, raw: list[Any], exc: Exception) -> Exception:
    """Re-raise NumPy's error with the op's name, the input shapes and what to do."""
    shapes = " and ".join(str(a.shape) if hasattr(a, "shape") else type(a).__name__ for a in raw)
    hint = _HINTS.get(prim.name, _BROADCAST_HINT if "broadcast" in str(exc) else "")
    message = f"{prim.name}: cannot apply to inputs {shapes}: {str(exc).rstrip(' .')}"
    return type(exc)(f"{message}. {hint}." if hint else message)


def _check_forward(prim: Primitive, out: Any, raw: list[Any]) -> None:
    xp = backend.array_namespace(out)  # (anomaly mode: on the output's own library)
    if backend.is_floating(out.dtype) and not bool(xp.all(xp.isfinite(out))):
        bad = "nan" if bool(xp.any(xp.isnan(out))) else "inf"
        shapes = ", ".join(str(getattr(a, "shape", ())) for a in raw)
        inputs_bad = any(
            not math.isfinite(a)
            if isinstance(a, float)
            else backend.is_floating(a.dtype) and not bool(xp.all(xp.isfinite(a)))
            for a in raw
            if isinstance(a, float) or (hasattr(a, "dtype") and backend.array_namespace(a) is xp)
        )
        cause = (
            "its inputs already hold nan/inf (check the data)"
            if inputs_bad
            else "its inputs are finite: this operation made it (e.g. log(0), x/0, exp overflow)"
        )
        raise anomaly.AnomalyError(
            f"detect_anomaly: forward of '{prim.name}' produced {bad} (inputs of shapes "
            f"{shapes}, output {out.shape}); {cause}."
        )
