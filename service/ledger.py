"""The claims ledger: money is paid once per item across a program's applications.

第十九条 pays per patent, 第二十条 per loan actually disbursed, 第二十二条 per concluded contract,
and 第二十五条 pays on actual results (实绩实奖): the same patent, loan or contract claimed in two
stored applications of one program (any applicant, any round) is one result, paid once.

Pure (no database, no HTTP). Two moments:

* at submission, ``apply_claims`` marks each item already claimed in another stored application
  ``counted: false`` with the program's ``claimed_before`` statement and computes the award again
  without it (the portal learns the item was claimed before, never by whom);
* at allocation, ``owners`` gives each item to one application: the one whose current allocation
  already pays it, else the earliest payable claim (approved, eligible on its own merits, the
  item meeting its own conditions), by received time, then application id. ``entitlement`` is
  the award of an application for the items it owns.

Which item fields name an item is the rule file's ``claim_key``; nothing here knows a program.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from service.awards import Award, compute_award
from service.decision import Decision, ItemResult, Reason
from service.money import ZERO
from service.rules.program import ItemGroup, Program


def claim_group(program: Program) -> ItemGroup | None:
    """The item group whose items are claimed (the award's items, when it has a claim key)."""
    for group in program.item_groups:
        if group.list_name == program.award.items and group.claim_key is not None:
            return group
    return None


def _part(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.quantize(Decimal("0.01")), "f")
    return str(value).strip()


def _field(item: Any, path: str) -> Any:
    for name in path.split("."):
        item = getattr(item, name)
    return item


@dataclass(frozen=True)
class ItemClaim:
    """One item an application claims: its list, position, ledger key, and whether it meets its
    own conditions (and is not a duplicate inside its application)."""

    item_list: str
    index: int
    key: str
    meets_conditions: bool


def item_claims(program: Program, application: BaseModel, decision: Decision) -> list[ItemClaim]:
    group = claim_group(program)
    if group is None or group.claim_key is None:
        return []
    items = getattr(application, group.list_name, None) or []
    judged = decision.items or []
    return [
        ItemClaim(
            group.list_name,
            index,
            "|".join(_part(_field(item, path)) for path in group.claim_key),
            index < len(judged) and judged[index].counted,
        )
        for index, item in enumerate(items)
    ]


def apply_claims(
    program: Program,
    application: BaseModel,
    decision: Decision,
    claims: list[ItemClaim],
    claimed_before: set[str],
    overrides: dict[str, Any] | None = None,
) -> Decision:
    """The decision with the items in ``claimed_before`` (keys claimed in another stored
    application) not counted, and the award computed again without them."""
    group = claim_group(program)
    if group is None or group.claimed_before is None or decision.items is None:
        return decision
    taken = {c.index for c in claims if c.meets_conditions and c.key in claimed_before}
    if not taken:
        return decision
    s = group.claimed_before
    reason = Reason(s.id, s.article, False, s.zh, s.en)
    items = [
        ItemResult(i.ref, False, [*i.reasons, reason], ZERO) if index in taken else i
        for index, i in enumerate(decision.items)
    ]
    keep = [index for index, i in enumerate(items) if i.counted]
    return _recount(program, application, decision, group, items, keep, overrides)


def _recount(
    program: Program,
    application: BaseModel,
    decision: Decision,
    group: ItemGroup,
    items: list[ItemResult],
    keep: list[int],
    overrides: dict[str, Any] | None,
) -> Decision:
    reasons = list(decision.reasons)
    if group.at_least_one is not None:
        s = group.at_least_one
        reasons = [r for r in reasons if r.rule != s.id]
        reasons.append(Reason(s.id, s.article, bool(keep), s.zh, s.en))
    eligible = all(r.passed for r in reasons)
    award = (
        compute_award(program, application, {group.list_name: keep}, overrides)
        if eligible
        else Award.nothing()
    )
    amounts = award.item_amounts.get(group.list_name, [])
    for index in keep:
        if index < len(amounts):
            items[index] = replace(items[index], amount=amounts[index])
    for index, item in enumerate(items):
        if not item.counted or not eligible:
            items[index] = replace(item, amount=ZERO)
    return replace(
        decision,
        eligible=eligible,
        reasons=sorted(reasons, key=lambda r: r.passed),
        items=items,
        award=award,
    )


@dataclass(frozen=True)
class Holder:
    """A claim as allocation sees it."""

    key: str
    application_id: int
    received_at: datetime
    payable: bool  # approved, eligible on its own, not disqualified, the item meets conditions


def owners(claims: Iterable[Holder], paid: dict[str, int]) -> dict[str, int]:
    """Which application each item is paid to: where a current allocation already pays it
    (money out stays out), else the earliest payable claim by received time, then id."""
    best: dict[str, Holder] = {}
    for claim in claims:
        if not claim.payable or claim.key in paid:
            continue
        held = best.get(claim.key)
        if held is None or (claim.received_at, claim.application_id) < (
            held.received_at,
            held.application_id,
        ):
            best[claim.key] = claim
    return {**{k: h.application_id for k, h in best.items()}, **paid}


def entitlement(
    program: Program,
    application: BaseModel,
    keep: list[int],
    overrides: dict[str, Any] | None = None,
) -> Decimal | None:
    """The award for the items kept (None: set per round)."""
    group = claim_group(program)
    assert group is not None
    if not keep:
        return ZERO
    return compute_award(program, application, {group.list_name: sorted(keep)}, overrides).amount
