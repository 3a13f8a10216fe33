"""Hypothesis strategies for whole request bodies of a program (not just facts), near the edges.

Fields a condition reads are drawn by ``tests.factgen.value_for`` (each constant and one step
either side); money fields also near every money parameter of the program (caps, pools, fixed
amounts); identifiers come from small pools of valid USCCs, patent numbers (written in several
forms) and item ids, so that the same patent or loan turns up twice.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from service.engine.python_eval import holds
from service.rules.expr import Ref, refs_of
from service.rules.fields import FieldSpec, Scope
from service.rules.program import Condition, Program
from service.schemas.identifiers import patent_check_char, uscc_check_char
from tests.factgen import FEN, value_for

USCCS = [
    p + uscc_check_char(p) for p in ("91310000MA1FL0000", "12310000425006117", "91310115MA1K4XXXX")
]
_DIGITS = ["201510906090", "202210001234", "202320005678", "201911112222"]
PATENTS = [d + patent_check_char(d) for d in _DIGITS]
PATENT_FORMS = [*PATENTS, f"ZL{_DIGITS[0]}.{PATENTS[0][-1]}", f"CN{PATENTS[1]}"]
ITEM_IDS = ["L-001", "L-002", "L-003", " L-001 "]


def _money_edges(program: Program) -> list[Decimal]:
    out: list[Decimal] = []
    for p in program.parameters.values():
        if p.kind == "money" and isinstance(p.value, Decimal):
            out += [p.value - FEN, p.value, p.value + FEN]
    return [v for v in out if v >= 0]


def _value(
    path: str,
    spec: FieldSpec,
    conditions: tuple[Condition, ...],
    program: Program,
    passing: bool,
) -> st.SearchStrategy[Any]:
    leaf = path.rsplit(".", 1)[-1]
    ref = Ref("app", tuple(path.split(".")), spec)
    if passing and _read_by(ref, conditions):
        if spec.choices is not None:
            good = [c for c in spec.choices if _alone_holds(ref, c, conditions)]
            return st.sampled_from(good or list(spec.choices))
        return value_for(ref, conditions, True)
    if leaf == "uscc":
        base: st.SearchStrategy[Any] = st.sampled_from(USCCS)
    elif leaf == "name":
        base = st.sampled_from(["上海某某大学", "某某科技有限公司"])
    elif leaf == "patent_number":
        base = st.sampled_from(PATENT_FORMS)
    elif leaf in ("loan_id", "contract_id"):
        base = st.sampled_from(ITEM_IDS)
    elif leaf == "description":
        return st.none()
    elif spec.kind == "money":
        edges = _money_edges(program)
        randoms = st.integers(0, 10**12).map(lambda f: Decimal(f) * FEN)
        small = st.integers(0, 300_000).map(lambda f: Decimal(f) * FEN)
        base = st.one_of(
            value_for(ref, conditions, passing),
            randoms,
            small,
            *([st.sampled_from(edges)] if edges else []),
        )
    elif spec.kind == "int" and spec.choices is None:
        # The forms bound whole numbers (years of experience <= 60).
        base = st.one_of(value_for(ref, conditions, passing), st.integers(0, 60))
        if leaf == "full_time_years":
            base = base.map(lambda v: min(v, 60))
    else:
        base = value_for(ref, conditions, passing)
    if spec.choices is not None:
        base = st.one_of(base.filter(lambda v: v in spec.choices), st.sampled_from(spec.choices))
    if spec.optional and leaf != "description":
        return st.one_of(base, base, st.none())
    return base


def _read_by(ref: Ref, conditions: tuple[Condition, ...]) -> bool:
    return any(r.path[-len(ref.path) :] == ref.path for c in conditions for r in refs_of(c.node))


def _alone_holds(ref: Ref, value: Any, conditions: tuple[Condition, ...]) -> bool:
    """Whether ``value`` passes every condition that reads this field and nothing else."""
    for cond in conditions:
        keys = {r.key for r in refs_of(cond.node)}
        mine = {r.key for r in refs_of(cond.node) if r.path[-len(ref.path) :] == ref.path}
        if mine and keys == mine and not holds(cond.node, dict.fromkeys(keys, value)):
            return False
    return True


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.quantize(FEN), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    if value is None:
        return
    parts = path.split(".")
    for part in parts[:-1]:
        body = body.setdefault(part, {})
    body[parts[-1]] = _json(value)


def _object(
    scope: Scope, conditions: tuple[Condition, ...], program: Program, passing: bool
) -> st.SearchStrategy[dict[str, Any]]:
    fields = {
        path: _value(path, spec, conditions, program, passing)
        for path, spec in scope.fields.items()
        if not path.startswith("context.")
    }

    def build(values: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for path, value in values.items():
            _put(body, path, value)
        return body

    return st.fixed_dictionaries(fields).map(build)


def body_for(program: Program, max_items: int = 5) -> st.SearchStrategy[dict[str, Any]]:
    """A request body for ``program`` (it may fail validation: callers filter with the form).
    Two times in three, fields a condition reads take values that pass it, so that eligible
    applications with amounts are as common as ineligible ones."""

    def build(passing: bool) -> st.SearchStrategy[dict[str, Any]]:
        lists = {}
        for name, scope in program.scope.lists.items():
            group = next((g for g in program.item_groups if g.list_name == name), None)
            item_conditions = group.conditions if group else ()
            item = _object(scope, item_conditions, program, passing)
            lists[name] = st.lists(item, max_size=max_items)
        return st.builds(
            lambda app, items: {**app, **items},
            _object(program.scope, program.conditions, program, passing),
            st.fixed_dictionaries(lists),
        )

    return st.one_of(build(False), build(True), build(True))
