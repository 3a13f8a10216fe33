"""Hypothesis strategies for facts near every constant a program's conditions compare with.

Values are drawn from the edges (each constant, one step either side) as often as at random,
so that window ends, caps to the fen and ratio boundaries are exercised on purpose.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from service.engine.facts import SHANGHAI, Facts
from service.rules.expr import AllOf, AnyOf, Cmp, Const, Missing, Node, Not, Ref
from service.rules.program import Condition, Program

FEN = Decimal("0.01")
OFFSETS = [timezone(timedelta(hours=h)) for h in (-8, 0, 5, 8, 9)]


def constants(node: Node) -> list[Const]:
    if isinstance(node, Cmp):
        return [node.right] if isinstance(node.right, Const) else []
    if isinstance(node, Missing):
        return []
    if isinstance(node, Not):
        return constants(node.part)
    assert isinstance(node, AllOf | AnyOf)
    return [c for p in node.parts for c in constants(p)]


def _edges(ref: Ref, consts: list[Const]) -> list[Any]:
    out: list[Any] = []
    for c in consts:
        v = c.value
        if ref.spec.kind == "money" and isinstance(v, Decimal):
            out += [v - FEN, v, v + FEN]
        elif ref.spec.kind == "int" and isinstance(v, int) and not isinstance(v, bool):
            out += [v - 1, v, v + 1]
        elif ref.spec.kind == "date" and isinstance(v, date):
            out += [v - timedelta(days=1), v, v + timedelta(days=1)]
        elif ref.spec.kind == "datetime" and isinstance(v, datetime):
            out += [v - timedelta(seconds=1), v, v + timedelta(seconds=1)]
    return [
        e for e in out if not (isinstance(e, Decimal | int) and not isinstance(e, bool) and e < 0)
    ]


def _random(ref: Ref) -> st.SearchStrategy[Any]:
    kind = ref.spec.kind
    if ref.spec.choices is not None:
        return st.sampled_from(ref.spec.choices)
    if kind == "bool":
        return st.booleans()
    if kind == "int":
        return st.integers(0, 500)
    if kind == "str":
        return st.text(max_size=5)
    if kind == "money":
        small = st.integers(0, 3000).map(lambda f: Decimal(f) * FEN)
        large = st.integers(0, 10**12).map(lambda f: Decimal(f) * FEN)
        return st.one_of(small, large)
    if kind == "date":
        return st.dates(date(2020, 1, 1), date(2025, 12, 31))
    return st.builds(
        lambda d, tz: d.replace(tzinfo=tz).astimezone(SHANGHAI).replace(microsecond=0),
        st.datetimes(datetime(2020, 1, 1), datetime(2025, 12, 31)),
        st.sampled_from(OFFSETS),
    )


def _mentioned(ref: Ref, conditions: tuple[Condition, ...]) -> list[Any]:
    """Values a condition compares this field with (``entity_type in [...]``)."""
    out: list[Any] = []
    for cond in conditions:
        for node in _comparisons(cond.node):
            if node.left.key == ref.key and isinstance(node.right, Const):
                out.append(node.right.value)
    return out


def _comparisons(node: Node) -> list[Cmp]:
    if isinstance(node, Cmp):
        return [node]
    if isinstance(node, Missing):
        return []
    if isinstance(node, Not):
        return _comparisons(node.part)
    return [c for p in node.parts for c in _comparisons(p)]


def _passing(node: Node, key: str, positive: bool = True) -> list[Any]:
    """Values of ``key`` that make the comparisons on it hold (windows are inclusive, so their
    ends pass), so that generated applications pass as well as fail."""
    if isinstance(node, Cmp):
        if node.left.key != key or not isinstance(node.right, Const):
            return []
        value = node.right.value
        if positive and node.op in ("==", ">=", "<="):
            return [value]
        if not positive and node.op == "==" and isinstance(value, bool):
            return [not value]
        if not positive and node.op == "!=":
            return [value]
        return []
    if isinstance(node, Missing):
        return []
    if isinstance(node, Not):
        return _passing(node.part, key, not positive)
    return [v for p in node.parts for v in _passing(p, key, positive)]


def value_for(
    ref: Ref, conditions: tuple[Condition, ...], passing_only: bool = False
) -> st.SearchStrategy[Any]:
    if passing_only:
        good = [v for cond in conditions for v in _passing(cond.node, ref.key)]
        return st.sampled_from(good) if good else _random(ref)
    consts = [c for cond in conditions for c in constants(cond.node)]
    edges = _edges(ref, consts)
    if ref.spec.kind == "str":
        edges = [v for v in _mentioned(ref, conditions) if isinstance(v, str)]
    passing = [v for cond in conditions for v in _passing(cond.node, ref.key)]
    options = [_random(ref)] + ([st.sampled_from(edges)] if edges else [])
    if passing:
        options += [st.sampled_from(passing)] * 4
    value = st.one_of(*options)
    if ref.spec.kind == "datetime":
        value = value.map(lambda v: v.astimezone(SHANGHAI).replace(microsecond=0))
    if ref.spec.optional:
        return st.one_of(value, value, value, st.none())  # sometimes missing
    return value


def fact_dict(
    refs: list[Ref], conditions: tuple[Condition, ...], passing_only: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    fields = {ref.key: value_for(ref, conditions, passing_only) for ref in refs}
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not None}
    )


def facts_for(program: Program, max_items: int = 4) -> st.SearchStrategy[Facts]:
    """Mostly anywhere near the edges; one time in four, values meant to pass every condition."""

    def build(passing_only: bool) -> st.SearchStrategy[Facts]:
        app = fact_dict(program.facts, program.conditions, passing_only)
        groups = {
            g.list_name: st.lists(
                fact_dict(g.facts, g.conditions, passing_only), max_size=max_items
            )
            for g in program.item_groups
        }
        return st.builds(lambda a, items: Facts(a, items), app, st.fixed_dictionaries(groups))

    return st.one_of(build(False), build(False), build(False), build(True))
