"""Three-valued evaluation of the condition trees, for ``/v1/match`` (partial profiles).

The same parsed tree python_eval walks, read with Kleene's logic: a comparison on a fact that
is not known is *unknown* (``None``), ``false and unknown`` is false, ``true or unknown`` is
true. A fact may also be known only to lie between two values (a :class:`Span`: the day of
``on`` when the submission time is not given); a comparison is then decided only when both
ends decide it the same way.

Sound by construction: a True or False here is the answer of :func:`python_eval.holds` for
every completion of the facts, including those that leave an optional fact out (tested with
hypothesis in tests/test_match_differential.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.engine.python_eval import _OPS
from service.rules.expr import AllOf, AnyOf, Cmp, Const, Missing, Node, Not, Ref

Tri = bool | None


@dataclass(frozen=True)
class Span:
    """A fact known to lie in ``[low, high]`` (both included)."""

    low: Any
    high: Any


def _compare(op: str, left: Any, right: Any) -> Tri:
    if isinstance(left, Span):
        if op in ("==", "!="):
            if left.low == left.high:
                return bool(_OPS[op](left.low, right))
            inside = left.low <= right <= left.high
            return None if inside else op == "!="
        # <, <=, >, >= are monotone: both ends agree, or the answer depends on where it lies.
        low, high = bool(_OPS[op](left.low, right)), bool(_OPS[op](left.high, right))
        return low if low == high else None
    return bool(_OPS[op](left, right))


def value(node: Node, facts: dict[str, Any]) -> Tri:
    """True, False, or None (unknown) for the facts known so far (absent keys are unknown)."""
    if isinstance(node, Cmp):
        left = facts.get(node.left.key)
        if isinstance(node.right, Const):
            right: Any = node.right.value
        else:
            other = facts.get(node.right.ref.key)
            if isinstance(other, Span) or isinstance(left, Span):
                return None
            right = None if other is None else node.right.factor * Decimal(other)
        if left is None or right is None:
            return None
        return _compare(node.op, left, right)
    if isinstance(node, Missing):
        # Absent here means "not told yet": it may still be supplied, or stay absent.
        return None if node.ref.key not in facts else False
    if isinstance(node, Not):
        inner = value(node.part, facts)
        return None if inner is None else not inner
    if isinstance(node, AllOf | AnyOf):
        decisive = isinstance(node, AnyOf)  # True decides an 'or', False decides an 'and'
        unknown = False
        for part in node.parts:
            v = value(part, facts)
            if v is None:
                unknown = True
            elif v is decisive:
                return decisive
        return None if unknown else not decisive
    raise TypeError(node)


def needed(node: Node, facts: dict[str, Any]) -> list[Ref]:
    """The facts an unknown condition is waiting for: the unknown or spanning facts of its
    undecided parts only (a part already decided needs nothing)."""
    if value(node, facts) is not None:
        return []
    if isinstance(node, Cmp):
        refs = [node.left, *([node.right.ref] if not isinstance(node.right, Const) else [])]
        waiting = [r for r in refs if r.key not in facts or isinstance(facts[r.key], Span)]
        return waiting
    if isinstance(node, Missing):
        return [node.ref]
    if isinstance(node, Not):
        return needed(node.part, facts)
    assert isinstance(node, AllOf | AnyOf)
    out: list[Ref] = []
    for part in node.parts:
        for ref in needed(part, facts):
            if ref not in out:
                out.append(ref)
    return out
