"""Plain-Python evaluation of the condition trees: the oracle the durable_rules backend is
tested against, and the floor the benchmarks compare with."""

from __future__ import annotations

import operator
from decimal import Decimal
from typing import Any

from service.engine.base import Violations
from service.engine.facts import Facts
from service.rules.expr import AllOf, AnyOf, Cmp, Const, Missing, Node, Not
from service.rules.program import Condition, Program

_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def holds(node: Node, facts: dict[str, Any]) -> bool:
    """Evaluate directly; a comparison on a fact that was not supplied is false."""
    if isinstance(node, Cmp):
        left = facts.get(node.left.key)
        if isinstance(node.right, Const):
            right = node.right.value
        else:
            other = facts.get(node.right.ref.key)
            right = None if other is None else node.right.factor * Decimal(other)
        if left is None or right is None:
            return False
        return bool(_OPS[node.op](left, right))
    if isinstance(node, Missing):
        return facts.get(node.ref.key) is None
    if isinstance(node, Not):
        return not holds(node.part, facts)
    if isinstance(node, AllOf):
        return all(holds(p, facts) for p in node.parts)
    if isinstance(node, AnyOf):
        return any(holds(p, facts) for p in node.parts)
    raise TypeError(node)


def _failed(conditions: tuple[Condition, ...], facts: dict[str, Any]) -> frozenset[str]:
    return frozenset(c.id for c in conditions if not holds(c.node, facts))


class PythonEvaluator:
    name = "python"

    def evaluate(self, program: Program, facts: Facts) -> Violations:
        return Violations(
            app=_failed(program.conditions, facts.app),
            items={
                g.list_name: tuple(
                    _failed(g.conditions, f) for f in facts.items.get(g.list_name, [])
                )
                for g in program.item_groups
            },
        )
