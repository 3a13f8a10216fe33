"""The batch backend: the rule files' condition trees compiled to polars expressions.

One row is one application (or one item); one column is one fact, keyed like the other
backends (``Ref.key``) and encoded like durable_rules is fed: booleans, strings, and Int64 for
money (fen), dates (yyyymmdd), timestamps (yyyymmddhhmmss in Asia/Shanghai) and whole numbers.
Money is never a float and never polars' Decimal (whose arithmetic rounds half-even and
rescales silently): ratios compare exactly as ``q × left >= p × right`` in Int128.

Semantics are the oracle's (``service.engine.python_eval.holds``): a comparison on a fact that
was not supplied is false, ``Missing`` is true exactly then. Every expression is non-null.
A condition is *checked* on a row when every non-optional fact it reads is there: an audit file
that has no column for a fact cannot say the condition failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from service.engine.facts import encode
from service.rules.expr import AllOf, AnyOf, Cmp, Const, Missing, Node, Not, Ref, refs_of
from service.rules.program import Condition

DTYPES: dict[str, pl.DataType] = {
    "bool": pl.Boolean(),
    "str": pl.String(),
    "int": pl.Int64(),
    "money": pl.Int64(),  # fen
    "date": pl.Int64(),  # yyyymmdd
    "datetime": pl.Int64(),  # yyyymmddhhmmss, Asia/Shanghai
}


def facts_frame(rows: list[dict[str, Any]], refs: list[Ref]) -> pl.DataFrame:
    """Fact dicts (``Facts.app`` or one item each) as a frame with one column per fact."""
    schema = {ref.key: DTYPES[ref.spec.kind] for ref in refs}
    data = {key: [encode(row.get(key)) for row in rows] for key in schema}
    return pl.DataFrame(data, schema=schema)


def _ratio(value: Decimal) -> tuple[int, int]:
    numerator, denominator = value.as_integer_ratio()
    return numerator, denominator


def _compare(left: pl.Expr, op: str, right: pl.Expr) -> pl.Expr:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def holds(node: Node) -> pl.Expr:
    """The condition as a non-null Boolean expression (the oracle's ``holds``)."""
    if isinstance(node, Cmp):
        left = pl.col(node.left.key)
        if isinstance(node.right, Const):
            test = _compare(left, node.op, pl.lit(encode(node.right.value)))
        elif node.left.spec.kind in ("money", "int"):
            p, q = _ratio(node.right.factor)
            right = pl.col(node.right.ref.key).cast(pl.Int128) * p
            test = _compare(left.cast(pl.Int128) * q, node.op, right)
        else:  # a field against another field of the same kind, factor 1
            test = _compare(left, node.op, pl.col(node.right.ref.key))
        return test.fill_null(False)
    if isinstance(node, Missing):
        return pl.col(node.ref.key).is_null()
    if isinstance(node, Not):
        return ~holds(node.part)
    if isinstance(node, AllOf):
        return pl.all_horizontal(*(holds(p) for p in node.parts))
    if isinstance(node, AnyOf):
        return pl.any_horizontal(*(holds(p) for p in node.parts))
    raise TypeError(node)


def checked(node: Node) -> pl.Expr:
    """True where every non-optional fact the condition reads is present."""
    required = {r.key for r in refs_of(node) if not r.spec.optional}
    if not required:
        return pl.lit(True)
    return pl.all_horizontal(*(pl.col(k).is_not_null() for k in sorted(required)))


def reads(node: Node) -> tuple[str, ...]:
    return tuple(sorted({r.key for r in refs_of(node)}))


def is_window(node: Node) -> bool:
    """A condition on a date or a timestamp (``in <window>``): reported as "outside its window"."""
    return any(r.spec.kind in ("date", "datetime") for r in refs_of(node))


@dataclass(frozen=True)
class CompiledCondition:
    condition: Condition
    holds: pl.Expr
    checked: pl.Expr
    reads: tuple[str, ...]
    window: bool

    def available(self, columns: set[str]) -> bool:
        """Whether the frame has a column for every fact the condition reads."""
        return all(k in columns for k in self.reads)


def compile_condition(condition: Condition) -> CompiledCondition:
    node = condition.node
    return CompiledCondition(condition, holds(node), checked(node), reads(node), is_window(node))


def compile_conditions(conditions: tuple[Condition, ...]) -> tuple[CompiledCondition, ...]:
    return tuple(compile_condition(c) for c in conditions)
