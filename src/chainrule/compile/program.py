"""From a recorded trace to a program: straight-line NumPy source, ``exec``'d once.

The source has four parts: fetching the arrays (arguments, parameters, optimiser state),
a check that the hyperparameters the trace baked in are unchanged, the recorded lines
(forward, backward, update, with a comment naming each operation and the user's line),
and writing the results back (new ``.grad`` tensors, new state buffers, the return value).
"""

from __future__ import annotations

import math
import re
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chainrule.compile import _engine
from chainrule.compile.blocks import block_updates
from chainrule.compile.hoist import read_hyperparameters_once
from chainrule.compile.inplace import reuse_dead_operands
from chainrule.compile.stmt import GuardFailed, Stmt
from chainrule.compile.tracer import Recorder
from chainrule.nn.rng import default_generator


class Retrace(Exception):
    """The program no longer fits the objects it reads (a buffer or a .grad is gone, a
    hyperparameter changed): trace again."""


@dataclass
class Program:
    source: str
    run: Callable[..., Any]
    guarded: bool  # has guards that fall back to eager mode when they fail


def live_statements(stmts: list[Stmt], outputs: set[str]) -> list[Stmt]:
    """Drop lines whose results nobody reads (no write, draw or guard, not an output)."""
    live = set(outputs)
    kept: list[Stmt] = []
    for s in reversed(stmts):
        if s.effect or s.writes or any(d in live for d in s.defs):
            kept.append(s)
            live.update(s.uses)
            live.update(s.writes)
    kept.reverse()
    return kept


_TRANSPOSE = re.compile(r"^(\w+) = (\w+)\.T$")


def fold_transposes(stmts: list[Stmt]) -> tuple[list[Stmt], dict[str, str]]:
    """Drop ``b = a.T`` when ``a = c.T`` (use ``c``) or when ``a.T`` was taken already.

    A transpose is a view: ``c.T.T`` has ``c``'s shape, strides and memory, so every NumPy
    call computes the same on either (whether the engine made a copy of a view was decided
    while tracing). The rules transpose back and forth (the lecture's column layout).
    """
    alias: dict[str, str] = {}
    t_of: dict[str, str] = {}  # b -> a for b = a.T
    taken: dict[str, str] = {}  # a -> b for b = a.T
    out: list[Stmt] = []
    for st in stmts:
        if alias:
            st = _renamed(st, alias)
        m = _TRANSPOSE.match(st.code)
        if m:
            b, a = m.groups()
            if a in t_of:
                alias[b] = t_of[a]
                continue
            if a in taken:
                alias[b] = taken[a]
                continue
            t_of[b], taken[a] = a, b
        out.append(st)
    return out, alias


def _renamed(st: Stmt, alias: dict[str, str]) -> Stmt:
    def sub(m: re.Match[str]) -> str:
        return alias.get(m.group(0), m.group(0))

    code = re.sub(r"\b\w+\b", sub, st.code)
    if code == st.code:
        return st
    return replace(
        st,
        code=code,
        uses=tuple(alias.get(u, u) for u in st.uses),
        writes=tuple(alias.get(w, w) for w in st.writes),
    )


def generate(
    name: str,
    params: list[str],
    prologue: list[str],
    rec: Recorder,
    epilogue: list[str],
    ret: str,
    outputs: set[str],
    consts: dict[str, Any],
) -> Program:
    """Write the program's source and exec it. A guard after the first line that changes an
    input or draws random numbers cannot fall back to eager mode: it raises instead."""
    folded, alias = fold_transposes(rec.stmts)
    if alias:  # the results may name a folded transpose too
        epilogue = [_renamed(Stmt(e, (), ()), alias).code for e in epilogue]
        ret = _renamed(Stmt(ret, (), ()), alias).code
    stmts = live_statements(folded, outputs | _used(epilogue) | _used([ret]))
    results = outputs | _used([*epilogue, ret])
    stmts = reuse_dead_operands(stmts, rec.meta, set(rec.inputs), results)
    stmts = block_updates(stmts, rec.meta, results)
    stmts = read_hyperparameters_once(stmts, rec.live, params, rec.meta)
    inputs = set(rec.inputs)
    unsafe_after = next(
        (i for i, s in enumerate(stmts) if (s.effect and not s.guard) or inputs & set(s.writes)),
        None,
    )
    needed = {u for s in stmts for u in (*s.uses, *s.writes)} | outputs | _used([*epilogue, ret])
    lines = [f"def {name}({', '.join(params)}):"]
    fetches = [f"{v} = {_inline_get(f)}" for v, f in rec.inputs.items() if v in needed and v != f]
    body: list[str] = []
    if fetches:
        body += ["try:", *("    " + f for f in fetches)]
        body += ["except (KeyError, AttributeError, IndexError, TypeError):", "    raise _Retrace"]
    body += prologue
    phase, label = "", None
    # Free each large intermediate after its last use, as eager backward does: a
    # straight-line function would otherwise hold every activation until it returns (on
    # the large MLP, hundreds of MB of fresh pages per step instead of memory handed back
    # and reused). Small ones stay: freeing them early gains nothing, and the source reads
    # better without the dels.
    kept = _used([*epilogue, ret]) | set(rec.inputs)
    last: dict[str, int] = {}
    for i, s in enumerate(stmts):
        for v in (*s.defs, *s.uses, *s.writes):
            last[v] = i
    frees: dict[int, list[str]] = {}
    for v, i in last.items():
        if v in rec.big and v not in kept:
            frees.setdefault(i, []).append(v)
    for i, s in enumerate(stmts):
        if s.phase != phase:
            phase = s.phase
            body.append(f"# -- {_PHASES.get(phase, phase)}")
            label = None
        if s.label != label:
            label = s.label
            if label:
                body.append(f"# {label}")
        code = s.code
        if s.guard and unsafe_after is not None and i > unsafe_after:
            code = code.replace("raise _GuardFailed", "raise _GuardTooLate")
        body += code.split("\n")
        if i in frees:
            body.append(f"del {', '.join(sorted(frees[i]))}")
    if epilogue:
        body.append("# -- results")
        body += epilogue
    body.append(f"return {ret}")
    lines += ["    " + b for b in body]
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {
        "np": np,
        "math": math,
        "_get": _engine.get_array,
        "_set": _engine.set_array,
        "_wrap": _engine.wrap,
        "_rc": sys.getrefcount,
        "_wrc": weakref.getweakrefcount,
        "_Tensor": _engine.Tensor,
        "_clock": _engine.clock,
        "_clock_lock": _engine.clock_lock,
        "_default_generator": default_generator,
        "_GuardFailed": GuardFailed,
        "_GuardTooLate": GuardTooLate,
        "_Retrace": Retrace,
        **VIEW_DTYPES,
        **consts,
        **rec.consts,
    }
    exec(compile(source, f"<chainrule.compile {name}>", "exec"), namespace)
    return Program(source, namespace[name], any(s.guard for s in stmts))


# The dtypes the ReLU rule's line views through (draws._traced_select), as objects.
VIEW_DTYPES = {
    f"_dtype_{t}": np.dtype(t) for t in ("int16", "int32", "int64", "float16", "float32", "float64")
}

_PHASES = {
    "forward": "forward",
    "backward": "backward (loss.backward(): the VJP rules, last operation first)",
    "update": "update (optimizer.step())",
}


class GuardTooLate(RuntimeError):
    """A guard failed after the program had changed parameters or drawn random numbers."""

    def __init__(self) -> None:
        super().__init__(
            "chainrule.compile: a check the engine made while tracing (e.g. 'the loss is "
            "finite') fails on this call after the compiled step had already drawn random "
            "numbers or updated state, so it cannot redo the call eagerly. Run this step "
            "without chainrule.compile to see where the values go wrong (detect_anomaly())."
        )


_GET = re.compile(r"_get\(([\w.]+)\)")


def _inline_get(fetch: str) -> str:
    """``_get(t)`` as an attribute read (see ``_engine.array_expr``)."""
    return _GET.sub(lambda m: _engine.array_expr(m.group(1)), fetch)


def _used(lines: list[str]) -> set[str]:
    """Names read by the epilogue's lines (a conservative split on non-identifier chars)."""
    out: set[str] = set()
    for line in lines:
        word = ""
        for ch in line + " ":
            if ch.isalnum() or ch == "_":
                word += ch
            else:
                if word:
                    out.add(word)
                word = ""
    return out
