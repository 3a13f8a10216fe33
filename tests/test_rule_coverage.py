"""Every clause has a failing case and every bound a boundary case (STYLE.md, habit 11).

Over the rule files (every program and edition, application and item conditions) and the case
files in tests/cases/ (the definitions are in tests/cases/README.md, "Coverage"):

* a condition has a **failing case** when a case's expectation names it as failed: in
  ``failed:`` (application level), in an item's ``failed:``, in ``warnings:`` (a warning) or
  ``false`` in ``priority:``;
* an ordered comparison (``<``, ``<=``, ``>``, ``>=`` against a parameter, a number or
  ``ratio × field``; a window is two of them, its first and its last day) has its **boundary
  cases** when one case puts the fact on the last value that passes and one on the first value
  that fails, one step apart (a fen, a day, a second, one).

The tests list each condition or comparison that lacks them, by program, condition and bound.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from service.engine.facts import Context, extract
from service.rules.expr import AllOf, AnyOf, Cmp, Const, Missing, Node, Not
from service.rules.loader import RuleBook
from service.rules.program import Condition, Program
from tests.casefiles import Case, load_cases

CASES = load_cases()
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def failing_cases(cases: list[Case]) -> dict[str, set[str]]:
    """Per program, the conditions some case expects to fail."""
    out: dict[str, set[str]] = {}
    for case in cases:
        named = out.setdefault(case.program, set())
        expect = case.expect
        named |= set(expect.get("failed") or {})
        for item in expect.get("items") or []:
            named |= set(item.get("failed") or {})
        named |= set(expect.get("warnings") or [])
        named |= {rule for rule, passed in (expect.get("priority") or {}).items() if not passed}
    return out


def conditions(program: Program) -> Iterator[tuple[str, Condition]]:
    """Each condition with where it applies: ``application`` or its item list."""
    for condition in program.conditions:
        yield "application", condition
    for group in program.item_groups:
        for condition in group.conditions:
            yield group.list_name, condition


def test_every_condition_has_a_failing_case(book: RuleBook) -> None:
    failing = failing_cases(CASES)
    missing = [
        f"{program.id}: {condition.id} ({where})"
        for program in book.programs.values()
        for where, condition in conditions(program)
        if condition.id not in failing.get(program.id, set())
    ]
    assert not missing, "conditions with no failing case:\n" + "\n".join(missing)


# -- boundaries ------------------------------------------------------------------------------


def ordered(node: Node) -> Iterator[Cmp]:
    """The ordered comparisons of a condition (a window is two: ``>= start``, ``<= end``)."""
    if isinstance(node, Cmp):
        if node.op in _OPS:
            yield node
    elif isinstance(node, Not):
        yield from ordered(node.part)
    elif isinstance(node, AllOf | AnyOf):
        for part in node.parts:
            yield from ordered(part)
    else:
        assert isinstance(node, Missing)


def step(value: Any) -> Any:
    """One step of a fact's kind: a fen, a day, a second, one."""
    if isinstance(value, Decimal):
        return Decimal("0.01")
    if isinstance(value, datetime):
        return timedelta(seconds=1)
    if isinstance(value, date):
        return timedelta(days=1)
    assert isinstance(value, int) and not isinstance(value, bool), value
    return 1


def _holds(cmp: Cmp, left: Any, facts: dict[str, Any]) -> bool | None:
    if isinstance(cmp.right, Const):
        right = cmp.right.value
    else:
        other = facts.get(cmp.right.ref.key)
        right = None if other is None else cmp.right.factor * Decimal(other)
    return None if right is None else bool(_OPS[cmp.op](left, right))


def sides(cmp: Cmp, facts: dict[str, Any]) -> set[str]:
    """``last_pass`` when the fact passes and one step further out fails; ``first_fail`` when it
    fails and one step back passes (further out: down for ``>``/``>=``, up for ``<``/``<=``)."""
    left = facts.get(cmp.left.key)
    if left is None:
        return set()
    out = -step(left) if cmp.op in (">", ">=") else step(left)
    here, further, back = (_holds(cmp, v, facts) for v in (left, left + out, left - out))
    if here is None:
        return set()
    found = set()
    if here and further is False:
        found.add("last_pass")
    if not here and back is True:
        found.add("first_fail")
    return found


def describe(cmp: Cmp) -> str:
    right = cmp.right
    if isinstance(right, Const):
        value = right.value.isoformat() if isinstance(right.value, date) else right.value
        return f"{cmp.left.key} {cmp.op} {value}"
    return f"{cmp.left.key} {cmp.op} {right.factor} × {right.ref.key}"


@dataclass(frozen=True)
class Bound:
    program: str
    condition: str
    where: str
    index: int  # the comparison's place in the condition
    text: str


def case_facts(program: Program, case: Case) -> Iterator[tuple[str, dict[str, Any]]]:
    """The facts a case's body gives, as the engine reads them: the application's, then each
    item's (with the application's, for a comparison with an application field)."""
    if case.expect.get("status", 200) != 200:
        return
    try:
        application = program.form.model_validate(case.body)
    except ValidationError:
        return
    facts = extract(program, application, Context())
    yield "application", facts.app
    for name, items in facts.items.items():
        for item in items:
            yield name, {**facts.app, **item}


def boundaries(book: RuleBook, cases: list[Case]) -> dict[Bound, set[str]]:
    """Each ordered comparison of every program, with the sides its cases reach."""
    found: dict[Bound, set[str]] = {}
    by_program: dict[str, list[Case]] = {}
    for case in cases:
        by_program.setdefault(case.program, []).append(case)
    for program in book.programs.values():
        comparisons = [
            (where, condition, i, cmp)
            for where, condition in conditions(program)
            for i, cmp in enumerate(ordered(condition.node))
        ]
        for where, condition, i, cmp in comparisons:
            found[Bound(program.id, condition.id, where, i, describe(cmp))] = set()
        for case in by_program.get(program.id, []):
            for scope, facts in case_facts(program, case):
                for where, condition, i, cmp in comparisons:
                    if where == scope:
                        key = Bound(program.id, condition.id, where, i, describe(cmp))
                        found[key] |= sides(cmp, facts)
    return found


def test_every_bound_has_its_boundary_cases(book: RuleBook) -> None:
    missing = [
        f"{b.program}: {b.condition} ({b.where}): {b.text}: no "
        + " and no ".join(sorted({"last_pass", "first_fail"} - reached))
        for b, reached in boundaries(book, CASES).items()
        if reached != {"last_pass", "first_fail"}
    ]
    assert not missing, "comparisons without their boundary cases:\n" + "\n".join(missing)


# -- the checks themselves can fail ----------------------------------------------------------


@pytest.mark.parametrize("program_id", ["ipa2022-art10-1", "ipa2022-art19"])
def test_a_case_file_without_its_failing_cases_is_found_out(
    book: RuleBook, program_id: str
) -> None:
    """Leave out one program's cases that fail a condition: the check names it."""
    condition = "credit-good"
    kept = [
        c
        for c in CASES
        if not (c.program == program_id and condition in (c.expect.get("failed") or {}))
    ]
    assert condition not in failing_cases(kept).get(program_id, set())
    assert condition in failing_cases(CASES)[program_id]


def test_a_case_file_without_its_boundary_cases_is_found_out(book: RuleBook) -> None:
    """Leave out 第十九条's cases on the last day of its window: the upper bound is reported."""
    program = book.get("ipa2022-art19")
    assert program is not None
    full = boundaries(book, CASES)
    upper = [b for b in full if b.program == program.id and b.condition == "contract-in-window"]
    assert upper and all(full[b] == {"last_pass", "first_fail"} for b in upper)
    last_day = "2023-06-30"
    kept = [c for c in CASES if not (c.program == program.id and last_day in str(c.body))]
    cut = boundaries(book, kept)
    assert any("last_pass" not in cut[b] for b in upper)
