"""SGD's update of a large parameter in blocks of rows that stay in cache: the same bits.

An update is two passes over memory, ``np.multiply(g, lr, out=tmp)`` then ``p -= tmp``: on
a 4096 x 4096 weight that writes 64 MB of ``tmp`` and reads it back. Both are elementwise,
so doing them a block of rows at a time, with the block of ``tmp`` reused from block to
block, computes every element exactly as before (the same two roundings, in the same
order) while ``tmp`` never leaves the cache: one pass over memory less. Eager SGD does it
(``chainrule.optim.arrays.descend``); a trace records the two whole-array lines, and this
pass writes them as the loop again, for parameters of at least ``BLOCKED_BYTES``.
"""

from __future__ import annotations

import re
from dataclasses import replace

from chainrule.compile.stmt import ArrayInfo, Stmt
from chainrule.optim.arrays import BLOCK_BYTES, BLOCKED_BYTES  # (eager SGD's, the same)

_SCALE = re.compile(r"^np\.multiply\((\w+), ([^,]+), out=(\w+)\)$")
_SUB = re.compile(r"^(\w+) -= (\w+)$")


Meta = dict[str, ArrayInfo]


def block_updates(stmts: list[Stmt], meta: Meta, later_uses: set[str]) -> list[Stmt]:
    """Rewrite each large ``np.multiply(g, lr, out=tmp); p -= tmp`` pair as a loop over rows.

    ``meta`` gives each variable's shape, size in bytes and the array owning its memory (as
    traced); ``later_uses`` the names that the program's results read (a ``tmp`` read after
    the update keeps its two lines).
    """
    out: list[Stmt] = []
    i = 0
    while i < len(stmts):
        blocked = _blocked(stmts, i, meta, later_uses)
        if blocked is None:
            out.append(stmts[i])
            i += 1
        else:
            out.append(blocked)
            i += 2
    return out


def _blocked(stmts: list[Stmt], i: int, meta: Meta, later: set[str]) -> Stmt | None:
    if i + 1 >= len(stmts):
        return None
    first, second = stmts[i], stmts[i + 1]
    m1, m2 = _SCALE.match(first.code), _SUB.match(second.code)
    if m1 is None or m2 is None or first.guard or second.guard:
        return None
    g, lr, tmp = m1.groups()
    p, tmp2 = m2.groups()
    names = {g, tmp, p}
    if tmp2 != tmp or len(names) != 3 or any(n in lr for n in names):
        return None
    if any(n not in meta for n in names):
        return None
    shapes = {meta[n].shape for n in names}
    owners = {meta[n].owner for n in names}  # rows written early must not be read later
    shape, nbytes = meta[p].shape, meta[p].nbytes
    if len(shapes) != 1 or len(owners) != 3 or len(shape) < 2 or nbytes < BLOCKED_BYTES:
        return None
    if tmp in later or any(tmp in s.uses or tmp in s.writes for s in stmts[i + 2 :]):
        return None  # the full tmp is read again: keep eager's two lines
    rows = max(1, BLOCK_BYTES * shape[0] // nbytes)
    if rows >= shape[0]:
        return None
    n = shape[0]
    code = "\n".join(
        [
            f"_lr = {lr}  # in blocks of {rows} rows: each block of {tmp} stays in cache",
            f"for _i in range(0, {n}, {rows}):",
            f"    _tb = {tmp}[: min({rows}, {n} - _i)]",
            f"    np.multiply({g}[_i : _i + {rows}], _lr, out=_tb)",
            f"    _pb = {p}[_i : _i + {rows}]",
            "    _pb -= _tb",
        ]
    )
    return replace(
        first,
        code=code,
        uses=tuple(dict.fromkeys((*first.uses, *second.uses))),
        writes=tuple(dict.fromkeys((*first.writes, *second.writes))),
    )
