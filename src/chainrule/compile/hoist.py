"""Hyperparameters read once per call: a pass over the program's lines.

SGD's update reads ``opt.param_groups[0]['lr']`` once per parameter (a dict lookup in a
list in an attribute, six times on a small MLP) and hands the Python float to
``np.multiply(g, lr, out=tmp)``, which converts it to the array's dtype each time. Nothing
in the program can change the hyperparameter between its lines, so the program reads it
once, ``lr = opt.param_groups[0]['lr']``, and a float32 update gets it converted once:
``lr_f32 = np.asarray(lr, np.float32)``. NumPy converts a Python float for a float32 array
by the same rounding, so every product has the same bits; a learning rate that is not a
Python float (a NumPy scalar, which NumPy does not convert) is passed on as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from chainrule.compile.stmt import ArrayInfo, Stmt

_FLOAT32 = "<f4"  # (dtype.str, as ArrayInfo keeps it)


def read_hyperparameters_once(
    stmts: list[Stmt], live: set[str], params: list[str], meta: dict[str, ArrayInfo]
) -> list[Stmt]:
    """Read each hyperparameter (an expression in ``live``) that several lines use into a
    local, just before the first of them; ``params`` are the step's own argument names."""
    counts = {e: sum(e in s.code for s in stmts) for e in live}
    hoisted = sorted((e for e, n in counts.items() if n > 1), key=len, reverse=True)
    if not hoisted:
        return stmts

    def words(code: str) -> set[str]:
        for e in hoisted:
            code = code.replace(e, " ")
        return set(re.findall(r"\b\w+\b", code))

    taken = {w for s in stmts for w in words(s.code)} | set(params)

    def fresh(base: str) -> str:
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        return name

    local = {}
    for e in hoisted:  # (longest first: no expression is then a part of a longer one)
        key = re.findall(r"\['(\w+)'\]$", e)
        local[e] = fresh(key[0] if key else "hyper")
    out: list[Stmt] = []
    read: set[str] = set()
    for st in stmts:
        code = st.code
        for e in hoisted:
            if e in code:
                if e not in read:
                    read.add(e)
                    out.append(_line(st, f"{local[e]} = {e}", local[e]))
                code = code.replace(e, local[e])
        out.append(st if code == st.code else replace(st, code=code))
    for name in local.values():
        out = _converted_once(out, name, fresh, meta)
    return out


def _converted_once(
    stmts: list[Stmt], name: str, fresh: Callable[[str], str], meta: dict[str, ArrayInfo]
) -> list[Stmt]:
    """``np.multiply(g, lr, out=tmp)`` on float32 arrays reads ``lr_f32`` instead."""
    pattern = re.compile(rf"^np\.multiply\((\w+), {name}, out=(\w+)\)$")

    def float32_update(st: Stmt) -> bool:
        m = pattern.match(st.code)
        return m is not None and all(v in meta and meta[v].dtype == _FLOAT32 for v in m.groups())

    if not any(float32_update(st) for st in stmts):
        return stmts
    f32 = fresh(f"{name}_f32")
    out: list[Stmt] = []
    for st in stmts:
        if float32_update(st):
            st = replace(st, code=st.code.replace(f", {name}, ", f", {f32}, "))
        out.append(st)
        if st.defs == (name,) and st.code.startswith(f"{name} = "):
            convert = f"np.asarray({name}, np.float32) if {name}.__class__ is float else {name}"
            line = _line(st, f"{f32} = {convert}  # NumPy's rounding of it, once", f32)
            out.append(replace(line, uses=(name,)))
    return out


def _line(like: Stmt, code: str, defines: str) -> Stmt:
    return replace(like, code=code, defs=(defines,), uses=(), writes=(), effect=False, guard=False)
