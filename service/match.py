"""Which programs an organisation can apply to, from whatever facts are known (政策计算器).

Pure (no FastAPI): the partial facts of one program are read with the three-valued evaluator
(service/engine/tristate.py) over the program's own condition trees — no rule is restated
here. A program is ``eligible`` when every condition holds whatever the missing facts are,
``ineligible`` when one fails whatever they are, and otherwise ``needs`` the facts listed.

Items (第十九条–第二十二条 are paid per patent, loan or contract): a list not given leaves
"at least one counted item" unknown; a given list is judged item by item, each item counted,
excluded or undecided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from service.engine.facts import SHANGHAI, _get
from service.engine.tristate import Span, Tri, needed, value
from service.rules.award_plan import Fixed, PerItem, RateOfItems, Tiers
from service.rules.expr import Cmp, Const, Node, Ref
from service.rules.model import Statement
from service.rules.program import Condition, Program

SUBMITTED_AT = "submitted_at"


@dataclass
class PartialFacts:
    app: dict[str, Any]
    items: dict[str, list[dict[str, Any]] | None]  # None: the list itself is not known


@dataclass(frozen=True)
class Failed:
    rule: str
    article: str
    message_zh: str
    message_en: str


@dataclass(frozen=True)
class MaxAward:
    """The most a program can pay one application, from its award spec and parameters."""

    kind: str  # cap | fixed | per_item | rate | tiers
    amount: Decimal | None  # the most in total (None: set per round)
    article: str
    per_item: Decimal | None = None
    rate: Decimal | None = None
    tiers: dict[Any, Decimal] | None = None


@dataclass
class ProgramMatch:
    program: Program
    status: str  # eligible | ineligible | needs
    in_force: bool
    needs: list[str] = field(default_factory=list)  # field paths (transactions[0].contract_date)
    failed: list[Failed] = field(default_factory=list)
    max_award: MaxAward | None = None
    window: tuple[datetime | date, datetime | date] | None = None


def in_force(program: Program, on: date) -> bool:
    return program.effective_from <= on <= program.effective_to


def partial_facts(
    program: Program, partial: BaseModel, on: date | None, disqualified: bool | None
) -> PartialFacts:
    """The facts a partial application (every field optional) gives: absent when not known.

    ``disqualified`` is None when the applicant's USCC is not known. Without a submission time,
    the submission is taken to fall on the day ``on`` (a :class:`Span` of that day).
    """
    app = _collect(partial, program.facts, disqualified)
    if SUBMITTED_AT not in app and on is not None:
        app[SUBMITTED_AT] = Span(
            datetime.combine(on, time(0, 0, 0), SHANGHAI),
            datetime.combine(on, time(23, 59, 59), SHANGHAI),
        )
    items: dict[str, list[dict[str, Any]] | None] = {}
    for group in program.item_groups:
        given = getattr(partial, group.list_name, None)
        items[group.list_name] = (
            None if given is None else [_collect(i, group.facts, None) for i in given]
        )
    return PartialFacts(app, items)


def _collect(obj: Any, refs: list[Ref], disqualified: bool | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ref in refs:
        fact: Any
        if ref.aggregate is not None:
            agg = ref.aggregate
            listed = getattr(obj, agg.list_name, None)
            if listed is None:
                continue
            keys = [None if agg.field is None else getattr(i, agg.field, None) for i in listed]
            if agg.field is not None and None in keys:
                continue  # an item whose filtered field is not known: the count is not known
            fact = sum(1 for k in keys if agg.field is None or k == agg.value)
        elif ref.path[0] == "context":
            fact = disqualified if ref.path == ("context", "disqualified") else None
        else:
            fact = _get(obj, ref.path)
        if fact is not None:
            out[ref.key] = fact
    return out


def _field_of(ref: Ref) -> str:
    if ref.path == ("context", "disqualified"):
        return "applicant.uscc"  # 第二十六条's list is the service's: it needs who applies
    if ref.aggregate is not None:
        return ref.aggregate.list_name
    return ".".join(ref.path)


def match(program: Program, facts: PartialFacts, on: date) -> ProgramMatch:
    statuses: list[Tri] = []
    failed: list[Failed] = []
    needs: list[str] = []

    def judge(s: Condition | Statement, v: Tri, waiting: list[str]) -> None:
        statuses.append(v)
        if v is False:
            failed.append(Failed(s.id, s.article, s.zh, s.en))
        elif v is None:
            needs.extend(w for w in waiting if w not in needs)

    for cond in program.conditions:
        if cond.severity == "error":
            v = value(cond.node, facts.app)
            judge(cond, v, [_field_of(r) for r in needed(cond.node, facts.app)])
    for group in program.item_groups:
        errors = [c for c in group.conditions if c.severity == "error"]
        listed = facts.items.get(group.list_name)
        if listed is None:
            if group.on_fail == "reject_application":
                for cond in errors:
                    judge(cond, None, [group.list_name])
            if group.at_least_one is not None:
                judge(group.at_least_one, None, [group.list_name])
            continue
        per_item = [[value(c.node, item) for c in errors] for item in listed]
        waiting = [
            f"{group.list_name}[{i}].{_field_of(r)}"
            for i, item in enumerate(listed)
            if False not in per_item[i]
            for c in errors
            for r in needed(c.node, item)
        ]
        if group.on_fail == "reject_application":
            for index, cond in enumerate(errors):
                column = [row[index] for row in per_item]
                v = False if False in column else (None if None in column else True)
                mine = [
                    f"{group.list_name}[{i}].{_field_of(r)}"
                    for i, item in enumerate(listed)
                    for r in needed(cond.node, item)
                ]
                judge(cond, v, mine)
        if group.at_least_one is not None:
            counted = [_all(row) for row in per_item]
            v = True if True in counted else (None if None in counted else False)
            judge(group.at_least_one, v, waiting)

    status = "ineligible" if False in statuses else ("needs" if None in statuses else "eligible")
    return ProgramMatch(
        program,
        status,
        in_force(program, on),
        needs=needs if status == "needs" else [],
        failed=failed,
        max_award=max_award(program),
        window=window(program),
    )


def _all(row: list[Tri]) -> Tri:
    return False if False in row else (None if None in row else True)


def max_award(program: Program) -> MaxAward:
    """The most the program pays one application, read from its compiled award plan: the
    smallest cap, a fixed amount, a per-item amount or rate under the caps, or the top tier."""
    plan = program.plan
    cap = min((c.limit for c in plan.caps), default=None)
    article = plan.caps[0].article if plan.caps else program.article
    match plan.base:
        case Fixed(param=name, amount=amount):
            return MaxAward(
                "fixed", amount if cap is None else min(amount, cap), _article(program, name)
            )
        case PerItem(param=name, amount=amount):
            return MaxAward("per_item", cap, _article(program, name), per_item=amount)
        case RateOfItems(param=name, rate=rate):
            return MaxAward("rate", cap, _article(program, name), rate=rate)
        case Tiers(param=name, amounts=amounts):
            table = None if amounts is None else dict(amounts)
            top = None if not table else max(table.values())
            if top is not None and cap is not None:
                top = min(top, cap)
            return MaxAward("tiers", top, _article(program, name), tiers=table)
    return MaxAward("cap", cap, article)


def _article(program: Program, param: str) -> str:
    return program.param(param).article


def window(program: Program) -> tuple[datetime | date, datetime | date] | None:
    """The application window: the bounds the conditions on the submission time compare with."""
    low = high = None
    for cond in program.conditions:
        for cmp in _comparisons(cond.node):
            if cmp.left.key == SUBMITTED_AT and isinstance(cmp.right, Const):
                if cmp.op == ">=":
                    low = cmp.right.value
                elif cmp.op == "<=":
                    high = cmp.right.value
    return None if low is None or high is None else (low, high)


def _comparisons(node: Node) -> list[Cmp]:
    if isinstance(node, Cmp):
        return [node]
    parts = getattr(node, "parts", None)
    if parts is not None:
        return [c for p in parts for c in _comparisons(p)]
    inner = getattr(node, "part", None)
    return [] if inner is None else _comparisons(inner)
