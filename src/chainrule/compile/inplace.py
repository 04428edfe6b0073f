"""Elementwise lines that write into an operand nobody reads again: the same bits, no new array.

``mul1 = exp1 * c`` allocates a result although ``exp1`` is dead after the line; written
``exp1 *= c; mul1 = exp1`` it computes the same values (an elementwise ufunc gives the same
bits into any output of the same dtype and layout) into memory already in cache. Eager mode
cannot know that ``exp1`` is dead; the trace can. A line is rewritten only when the operand

- owns memory that a line of the program allocated (not an argument, parameter, optimiser
  state or constant, nor a view of anything),
- has the result's shape, dtype and strides (no broadcasting, casting or change of layout),
- is read by no later line and no result, nor is any other view of its memory.
"""

from __future__ import annotations

import re
from dataclasses import replace

from chainrule.compile.stmt import ArrayInfo, Stmt

Meta = dict[str, ArrayInfo]

_BINARY = re.compile(r"^(\w+) = (\w+) ([-+*/]) (\S+)$")
_NEGATE = re.compile(r"^(\w+) = -(\w+)$")
_UNARY = re.compile(r"^(\w+) = np\.(exp|log|sqrt|tanh|abs|negative)\((\w+)\)$")


def reuse_dead_operands(
    stmts: list[Stmt], meta: Meta, inputs: set[str], outputs: set[str]
) -> list[Stmt]:
    """Rewrite ``c = a op b`` (and ``c = -a``, ``c = np.exp(a)``, ...) to work in ``a``."""
    n = len(stmts)
    last: dict[str, int] = {}  # var -> index of the last line touching it
    for i, s in enumerate(stmts):
        for v in (*s.defs, *s.uses, *s.writes):
            last[v] = i
    for v in outputs:
        last[v] = n  # read by the results
    owner_last: dict[int, int] = {}  # memory owner -> last line touching any view of it
    for v, i in last.items():
        if v in meta:
            o = meta[v].owner
            owner_last[o] = max(owner_last.get(o, -1), i)
    protected = {meta[v].owner for v in inputs if v in meta}
    made = {d for s in stmts for d in s.defs}
    out: list[Stmt] = []
    for i, s in enumerate(stmts):
        rewritten = _rewrite(s, i, meta, last, owner_last, protected, made)
        out.append(s if rewritten is None else rewritten)
    return out


def _rewrite(
    s: Stmt,
    i: int,
    meta: Meta,
    last: dict[str, int],
    owner_last: dict[int, int],
    protected: set[int],
    made: set[str],
) -> Stmt | None:
    if s.effect or s.guard or s.writes or len(s.defs) != 1:
        return None
    m = _BINARY.match(s.code)
    if m is not None:
        c, a, op, b = m.groups()
        code = f"{a} {op}= {b}  # in place: {a} is not read again\n{c} = {a}"
    elif (m := _NEGATE.match(s.code)) is not None:
        c, a = m.groups()
        code = f"np.negative({a}, out={a})  # in place: {a} is not read again\n{c} = {a}"
    elif (m := _UNARY.match(s.code)) is not None:
        c, fn, a = m.groups()
        code = f"np.{fn}({a}, out={a})  # in place: {a} is not read again\n{c} = {a}"
    else:
        return None
    if a not in made or c not in meta or a not in meta or not s.uses or s.uses[0] != a:
        return None
    info, result = meta[a], meta[c]
    owner = info.owner
    if not info.shape or not info.owns:
        return None
    if (info.shape, info.dtype, info.strides) != (result.shape, result.dtype, result.strides):
        return None
    if owner in protected or last.get(a, -1) > i or owner_last.get(owner, -1) > i:
        return None
    return replace(s, code=code, writes=(a,))
