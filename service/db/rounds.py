"""Funding rounds and their allocation: the claims ledger, 一次性, quotas, then the program pool
and 第三条's fund (service.allocation, service.ledger).

The pool (``pool`` parameter, e.g. 第二十条's 5,000,000) is the program's total across all of its
rounds: a round may hand out what the program's other rounds have not. The fund (``fund_total``,
第三条's 54,472,000) is shared by every program of the policy. Allocating takes the fund's lock
(PostgreSQL: an advisory lock; SQLite: the write lock) and then locks every round of the
program, so concurrent allocations take turns and never together exceed the pool or the fund.
Each allocation is recorded as a numbered run; allocating again with nothing changed returns the
recorded run. A closed round (its funds disbursed) is never allocated again and keeps counting.

Each item claimed in the program (a patent, a loan, a contract) is paid once: to the application
whose current allocation already pays it, else to the earliest payable claim (received time,
then id); a later claim's entitlement is computed again without it (service.ledger).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from service import allocation_report as report
from service import ledger, quotas
from service.allocation import Claim, allocate_pool
from service.auditlog import Actor, append
from service.clock import shanghai
from service.db import disqualifications, locks
from service.db.applications import RoundClosed, round_overrides
from service.db.models import (
    Allocation,
    AllocationLine,
    Application,
    Approval,
    ClaimRow,
    Disqualification,
    Evaluation,
    Round,
    as_utc,
)
from service.db.session import Database
from service.errors import Conflict, NotFound, QuotaExceeded
from service.money import fen_text, fmt, from_fen, to_fen
from service.quotas import QuotaCheck, Unit
from service.rules.model import QuotaSpec
from service.rules.program import Program

# application id, evaluation id, entitlement in fen, amount in fen, the item keys it pays
Line = tuple[int, int, int, int, tuple[str, ...]]
NAME = sa.type_coerce(Application.request, sa.JSON)[("applicant", "name")].as_string()


def split_items(text: str | None) -> list[str]:
    """The ledger keys an allocation line pays (stored one per line)."""
    return text.split("\n") if text else []


class NothingToClose(Conflict):
    code = "nothing_to_close"

    def __init__(self, round_id: int) -> None:
        super().__init__(
            f"轮次 {round_id} 尚未分配，不能结项",
            f"Round {round_id} has no allocation: there is nothing to close",
        )


def create(
    db: Database,
    program: Program,
    name: str,
    overrides: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> Round:
    with db.transaction() as session:
        round_ = Round(program_id=program.id, name=name, overrides=overrides, created_at=now)
        session.add(round_)
        session.flush()
        append(
            session,
            actor,
            "round.open",
            "round",
            round_.id,
            {"program_id": program.id, "name": name, "overrides": overrides},
            now,
        )
        return round_


def get(session: Session, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise NotFound("轮次", "round", round_id)
    return round_


def close(db: Database, round_id: int, actor: Actor, now: datetime) -> Round:
    """The round's funds are disbursed: it is never allocated again; its run keeps counting."""
    with db.transaction() as session:
        round_ = session.get(Round, round_id, with_for_update=True)
        if round_ is None:
            raise NotFound("轮次", "round", round_id)
        if round_.closed_at is not None:
            raise RoundClosed(round_id)
        current = current_allocation(session, round_id)
        if current is None:
            raise NothingToClose(round_id)
        round_.closed_at = now
        round_.closed_by = actor.key_id
        session.add(round_)
        session.flush()
        append(
            session,
            actor,
            "round.close",
            "round",
            round_id,
            {"run": current.run, "total": fmt(from_fen(current.total_fen))},
            now,
        )
        return round_


def current_allocation(session: Session, round_id: int) -> Allocation | None:
    return session.exec(
        select(Allocation)
        .where(Allocation.round_id == round_id)
        .order_by(col(Allocation.run).desc())
    ).first()


@dataclass(frozen=True)
class _Candidate:
    application_id: int
    applicant_uscc: str
    received_at: datetime
    evaluation_id: int
    eligible: bool  # on its own merits (before the ledger and 一次性)
    award_fen: int | None
    approved: bool


def _latest_evaluations() -> Any:
    return (
        select(Evaluation.application_id, func.max(Evaluation.id).label("evaluation_id"))
        .group_by(col(Evaluation.application_id))
        .subquery()
    )


def _latest_approvals() -> Any:
    return (
        select(Approval.application_id, func.max(Approval.id).label("approval_id"))
        .group_by(col(Approval.application_id))
        .subquery()
    )


def _candidates(session: Session, where: Any) -> list[_Candidate]:
    """Applications (``where``), each with its latest evaluation and latest decision."""
    ev, ap = _latest_evaluations(), _latest_approvals()
    rows = session.execute(
        sa.select(
            col(Application.id),
            col(Application.applicant_uscc),
            col(Application.received_at),
            col(Evaluation.id),
            col(Evaluation.eligible),
            col(Evaluation.eligible_on_own),
            col(Evaluation.award_fen),
            col(Approval.approved),
        )
        .join(ev, ev.c.application_id == Application.id)
        .join(Evaluation, col(Evaluation.id) == ev.c.evaluation_id)
        .outerjoin(ap, ap.c.application_id == Application.id)
        .outerjoin(Approval, col(Approval.id) == ap.c.approval_id)
        .where(where)
        .order_by(col(Application.id))
    ).all()
    return [
        _Candidate(
            app_id,
            uscc,
            as_utc(received),
            ev_id,
            eligible if own is None else own,
            award,
            bool(approved),
        )
        for app_id, uscc, received, ev_id, eligible, own, award, approved in rows
    ]


def _disqualified(session: Session, usccs: set[str]) -> set[str]:
    if not usccs:
        return set()
    found = session.exec(
        select(Disqualification.uscc).where(
            col(Disqualification.uscc).in_(sorted(usccs)),
            col(Disqualification.removed_at).is_(None),
        )
    ).all()
    return set(found)


def _district(program: Program, quota: QuotaSpec | None, request: dict[str, Any]) -> str | None:
    if quota is None or quota.kind != "per_district" or quota.district_field is None:
        return None
    try:  # the form canonicalises districts ("黄浦区" -> "huangpu")
        value = getattr(program.form.model_validate(request), quota.district_field)
    except ValidationError:
        value = request.get(quota.district_field)
    return None if value is None else str(value)


def _current_runs() -> Any:
    return (
        select(Allocation.round_id, func.max(Allocation.run).label("run"))
        .group_by(col(Allocation.round_id))
        .subquery()
    )


def _total_elsewhere(session: Session, program_ids: list[str], round_id: int) -> int:
    """What the current runs of the other rounds of these programs hand out, in fen."""
    current = _current_runs()
    total = session.exec(
        select(func.coalesce(func.sum(Allocation.total_fen), 0))
        .join(
            current,
            (current.c.round_id == Allocation.round_id) & (current.c.run == Allocation.run),
        )
        .join(Round, col(Round.id) == Allocation.round_id)
        .where(col(Round.program_id).in_(program_ids), Round.id != round_id)
    ).one()
    return int(total)


def _paid_elsewhere(
    session: Session, program_id: str, round_id: int
) -> list[tuple[int, int, list[str]]]:
    """(application id, amount, item keys) of the lines of the program's other current runs."""
    current = _current_runs()
    rows = session.execute(
        select(AllocationLine.application_id, AllocationLine.amount_fen, AllocationLine.items)
        .join(Allocation, col(Allocation.id) == AllocationLine.allocation_id)
        .join(
            current,
            (current.c.round_id == Allocation.round_id) & (current.c.run == Allocation.run),
        )
        .join(Round, col(Round.id) == Allocation.round_id)
        .where(Round.program_id == program_id, Round.id != round_id)
    ).all()
    return [(a, amount, split_items(items)) for a, amount, items in rows]


def _breach_error(quota: QuotaSpec, check: QuotaCheck) -> QuotaExceeded:
    return QuotaExceeded(
        f"批准数量超过名额（{quota.article}：{quota.zh}）。请评审撤回部分批准后重新分配；"
        "本服务不代为择优",
        f"More applications are approved than the quota allows ({quota.article}: {quota.en}). "
        "Withdraw approvals and allocate again; the service does not choose among them",
        quota={"kind": quota.kind, "limit": quota.limit, "article": quota.article},
        breaches=[
            {
                "kind": b.kind,
                "limit": b.limit,
                "count": b.count,
                "district": b.district,
                "applications": b.units,
                "over": b.over,
            }
            for b in check.breaches
        ],
    )


def _quota_warnings(quota: QuotaSpec | None, check: QuotaCheck) -> list[dict[str, Any]]:
    if quota is None:
        return []
    return [
        {
            "rule": "quota",
            "article": quota.article,
            "message_zh": f"{quota.zh}；本轮批准{w.count}家，超过约{w.limit}家",
            "message_en": f"{quota.en}; {w.count} are approved in this round, above {w.limit}",
            "limit": w.limit,
            "count": w.count,
        }
        for w in check.warnings
    ]


@dataclass
class _Taken:
    claims: list[Claim] = field(default_factory=list)
    units: list[Unit] = field(
        default_factory=list
    )  # the same applications, as the quota counts them
    evaluation_of: dict[int, int] = field(default_factory=dict)
    items_of: dict[int, tuple[str, ...]] = field(default_factory=dict)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    items_checked: int = 0


def _requests(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for app_id, request in session.execute(
            select(Application.id, Application.request).where(col(Application.id).in_(chunk))
        ).all():
            found[app_id] = request
    return found


def _take(session: Session, program: Program, round_: Round) -> _Taken:
    """The round's approved applications, eligible on their own merits, paid once per unit
    (一次性) and once per item (the ledger); the rest, with why."""
    assert round_.id is not None
    candidates = _candidates(session, Application.round_id == round_.id)
    banned = (
        _disqualified(session, {c.applicant_uscc for c in candidates})
        if disqualifications.applies_to(program)
        else set()
    )
    taken = _Taken()
    kept: list[_Candidate] = []
    for c in sorted(candidates, key=lambda c: (c.received_at, c.application_id)):
        if not c.approved:
            taken.excluded.append(report.excluded(c.application_id, "not_approved"))
        elif not c.eligible:
            taken.excluded.append(report.excluded(c.application_id, "not_eligible"))
        elif c.applicant_uscc in banned:  # listed after its evaluation (第二十六条)
            taken.excluded.append(report.excluded(c.application_id, "disqualified"))
        elif c.award_fen is None:
            taken.excluded.append(report.excluded(c.application_id, "no_entitlement"))
        else:
            kept.append(c)
    elsewhere = _paid_elsewhere(session, program.id, round_.id)
    if program.once_per_unit is not None:
        kept = _once_per_unit(session, kept, elsewhere, taken)
    entitlements = {c.application_id: c.award_fen for c in kept}
    if ledger.claim_group(program) is not None:
        entitlements = _ledger(session, program, round_, kept, elsewhere, taken)
    needs_district = program.quota is not None and program.quota.kind == "per_district"
    requests = _requests(session, [c.application_id for c in kept]) if needs_district else {}
    for c in kept:
        fen = entitlements.get(c.application_id)
        if fen is None:
            continue
        district = _district(program, program.quota, requests.get(c.application_id, {}))
        taken.claims.append(Claim(c.application_id, c.received_at, from_fen(fen)))
        taken.units.append(Unit(c.application_id, c.received_at, district))
        taken.evaluation_of[c.application_id] = c.evaluation_id
    return taken


def _once_per_unit(
    session: Session,
    kept: list[_Candidate],
    elsewhere: list[tuple[int, int, list[str]]],
    taken: _Taken,
) -> list[_Candidate]:
    """一次性: one award per organisation across the program's rounds (the earliest approved)."""
    paid_ids = [a for a, amount, _ in elsewhere if amount > 0]
    paid_units = (
        set(
            session.exec(
                select(Application.applicant_uscc).where(col(Application.id).in_(paid_ids))
            ).all()
        )
        if paid_ids
        else set()
    )
    seen: set[str] = set()
    out = []
    for c in kept:  # in received order
        if c.applicant_uscc in paid_units or c.applicant_uscc in seen:
            taken.excluded.append(report.excluded(c.application_id, "once_per_unit"))
            continue
        seen.add(c.applicant_uscc)
        out.append(c)
    return out


@dataclass(frozen=True)
class _Claimed:
    """A ledger row, as allocation reads it (plain tuples: a round may hold 10,000s)."""

    application_id: int
    item_index: int
    item_key: str
    received_at: datetime
    meets_conditions: bool
    counted: bool


def _claim_rows(session: Session, where: Any) -> list[_Claimed]:
    rows = session.execute(
        sa.select(
            col(ClaimRow.application_id),
            col(ClaimRow.item_index),
            col(ClaimRow.item_key),
            col(ClaimRow.received_at),
            col(ClaimRow.meets_conditions),
            col(ClaimRow.counted),
        ).where(where)
    ).all()
    return [_Claimed(*row) for row in rows]


def _ledger(
    session: Session,
    program: Program,
    round_: Round,
    kept: list[_Candidate],
    elsewhere: list[tuple[int, int, list[str]]],
    taken: _Taken,
) -> dict[int, int | None]:
    """Each kept application's entitlement for the items it owns (service.ledger.owners)."""
    assert round_.id is not None
    in_round = select(Application.id).where(Application.round_id == round_.id)
    mine = _claim_rows(session, col(ClaimRow.application_id).in_(in_round))
    round_keys = select(ClaimRow.item_key).where(col(ClaimRow.application_id).in_(in_round))
    others = _claim_rows(
        session,
        (col(ClaimRow.program_id) == program.id)
        & col(ClaimRow.item_key).in_(round_keys)
        & col(ClaimRow.application_id).not_in(in_round),
    )
    payable_here = {c.application_id for c in kept}
    other_ids = sorted({c.application_id for c in others})
    payable_there: set[int] = set()
    if other_ids:
        rows = _candidates(session, col(Application.id).in_(other_ids))
        banned = _disqualified(session, {r.applicant_uscc for r in rows})
        payable_there = {
            r.application_id
            for r in rows
            if r.approved and r.eligible and r.applicant_uscc not in banned
        }
    paid = {key: app_id for app_id, amount, keys in elsewhere if amount > 0 for key in keys}
    holders = [
        ledger.Holder(
            c.item_key,
            c.application_id,
            as_utc(c.received_at),
            c.meets_conditions
            and (c.application_id in payable_here or c.application_id in payable_there),
        )
        for c in [*mine, *others]
    ]
    taken.items_checked = len(holders)
    owner = ledger.owners(holders, paid)
    by_app: dict[int, list[_Claimed]] = defaultdict(list)
    for c in mine:
        by_app[c.application_id].append(c)
    out: dict[int, int | None] = {}
    recount: dict[int, list[int]] = {}
    for cand in kept:
        rows_of = by_app.get(cand.application_id, [])
        owned = [
            c
            for c in rows_of
            if c.meets_conditions and owner.get(c.item_key) == cand.application_id
        ]
        if not owned:
            taken.excluded.append(report.excluded(cand.application_id, "items_claimed_elsewhere"))
            continue
        taken.items_of[cand.application_id] = tuple(sorted({c.item_key for c in owned}))
        if {c.item_index for c in owned} == {c.item_index for c in rows_of if c.counted}:
            out[cand.application_id] = cand.award_fen
        else:
            recount[cand.application_id] = sorted(c.item_index for c in owned)
    if recount:
        requests = _requests(session, sorted(recount))
        overrides = round_overrides(program, round_)
        for app_id, keep in recount.items():
            application = program.form.model_validate(requests[app_id])
            amount = ledger.entitlement(program, application, keep, overrides)
            out[app_id] = None if amount is None else to_fen(amount)
    return out


def _limits(
    session: Session, program: Program, policy_programs: list[str], round_id: int
) -> tuple[int | None, int | None, int | None, int | None]:
    """(pool, available in the pool, fund, available in the fund), in fen."""
    pool = program.parameters.get("pool")
    pool_fen = to_fen(pool.value) if pool is not None else None
    pool_left = (
        None
        if pool_fen is None
        else max(0, pool_fen - _total_elsewhere(session, [program.id], round_id))
    )
    fund = program.parameters.get("fund_total")
    fund_fen = to_fen(fund.value) if fund is not None else None
    fund_left = (
        None
        if fund_fen is None
        else max(0, fund_fen - _total_elsewhere(session, policy_programs, round_id))
    )
    return pool_fen, pool_left, fund_fen, fund_left


def allocate(
    db: Database,
    programs: Callable[[str], Program],
    policy_programs: Callable[[Program], list[str]],
    round_id: int,
    actor: Actor,
    now: datetime,
) -> dict[str, Any]:
    with db.transaction() as session:
        round_ = get(session, round_id)
        program = programs(round_.program_id)
        siblings = policy_programs(program)
        if "fund_total" in program.parameters:
            # 第三条: every program of the policy draws on one fund; allocations take turns.
            locks.hold(session, f"fund:{program.policy}")
        # Every round of the program, locked in id order: allocations of one program take turns.
        session.exec(
            select(Round.id)
            .where(Round.program_id == program.id)
            .order_by(col(Round.id))
            .with_for_update()
        ).all()
        session.refresh(round_)
        if round_.closed_at is not None:
            raise RoundClosed(round_id)

        taken = _take(session, program, round_)
        check = quotas.check(program.quota, taken.units)
        if check.breaches:
            assert program.quota is not None
            raise _breach_error(program.quota, check)

        pool_fen, pool_left, fund_fen, fund_left = _limits(session, program, siblings, round_id)
        limits = [x for x in (pool_left, fund_left) if x is not None]
        available_fen = min(limits) if limits else None
        available = None if available_fen is None else from_fen(available_fen)
        shares = allocate_pool(taken.claims, available)
        lines = {
            (
                s.application_id,
                taken.evaluation_of[s.application_id],
                to_fen(s.entitlement),
                to_fen(s.amount),
                taken.items_of.get(s.application_id, ()),
            )
            for s in shares
        }
        total_fen = sum(line[3] for line in lines)
        warnings = _quota_warnings(program.quota, check) + _money_warnings(
            program, lines, pool_fen, pool_left, fund_fen, fund_left
        )
        current = current_allocation(session, round_id)
        if not lines:
            warnings.insert(0, report.nothing_approved())
            if current is None or current.total_fen == 0:
                # Nothing approved and nothing recorded before: record nothing, say so.
                view = _unrecorded_view(round_, pool_fen, pool_left, fund_fen, fund_left)
                view["warnings"] = warnings
                view["excluded"] = taken.excluded
                view["items_checked"] = taken.items_checked
                return view
        run = Allocation(
            round_id=round_id,
            run=1,
            pool_fen=pool_fen,
            available_fen=pool_left,
            total_fen=total_fen,
            warnings=warnings,
            allocated_at=now,
        )
        if current is None or not _same(session, current, run, lines):
            current = _record(session, run, current, lines)
            append(
                session,
                actor,
                "allocation.run",
                "round",
                round_id,
                {
                    "run": current.run,
                    "total": fmt(from_fen(total_fen)),
                    "lines": [[a, e, amount] for a, e, _, amount, _ in sorted(lines)],
                },
                now,
            )
        view = allocation_view(session, round_, current)
        view.update(_fund_view(fund_fen, fund_left, total_fen))
        view["excluded"] = taken.excluded
        view["items_checked"] = taken.items_checked
        return view


def _money_warnings(
    program: Program,
    lines: set[Line],
    pool_fen: int | None,
    pool_left: int | None,
    fund_fen: int | None,
    fund_left: int | None,
) -> list[dict[str, Any]]:
    entitled = sum(line[2] for line in lines)
    total = sum(line[3] for line in lines)
    out: list[dict[str, Any]] = []
    if lines and total < entitled:
        fund_binds = fund_left is not None and (pool_left is None or fund_left < pool_left)
        article = "第三条" if fund_binds else program.article
        out.append(report.pro_rata(from_fen(entitled), from_fen(total), article))
    if pool_fen is not None and pool_left is not None and entitled >= pool_left:
        out.append(report.exhausted("pool", program.article, from_fen(pool_fen)))
    if fund_fen is not None and fund_left is not None and entitled >= fund_left:
        out.append(report.exhausted("fund", "第三条", from_fen(fund_fen)))
    return out


def _fund_view(fund_fen: int | None, fund_left: int | None, total_fen: int) -> dict[str, Any]:
    return {
        "fund": None
        if fund_fen is None or fund_left is None
        else {
            "article": "第三条",
            "total": fmt(from_fen(fund_fen)),
            "allocated_elsewhere": fmt(from_fen(fund_fen - fund_left)),
            "left": fmt(from_fen(fund_left - total_fen)),
        }
    }


def _unrecorded_view(
    round_: Round,
    pool_fen: int | None,
    pool_left: int | None,
    fund_fen: int | None,
    fund_left: int | None,
) -> dict[str, Any]:
    return {
        "round_id": round_.id,
        "program_id": round_.program_id,
        "run": None,
        "allocated_at": None,
        "closed": round_.closed_at is not None,
        "pool": _money(pool_fen),
        "allocated_in_other_rounds": None
        if pool_fen is None or pool_left is None
        else _money(pool_fen - pool_left),
        "available": _money(pool_left),
        "pool_left": _money(pool_left),
        "total_entitlement": "0.00",
        "total": "0.00",
        "allocations": [],
        **_fund_view(fund_fen, fund_left, 0),
    }


def _record(
    session: Session, run: Allocation, previous: Allocation | None, lines: set[Line]
) -> Allocation:
    """A new numbered run with its lines (the earlier runs stay, as the record)."""
    run.run = 1 if previous is None else previous.run + 1
    session.add(run)
    session.flush()
    assert run.id is not None
    if lines:  # Core executemany: a round's lines are 10,000s
        session.connection().execute(
            sa.insert(AllocationLine.__table__),  # type: ignore[attr-defined]
            [
                {
                    "allocation_id": run.id,
                    "application_id": app_id,
                    "evaluation_id": ev_id,
                    "entitlement_fen": entitlement,
                    "amount_fen": amount,
                    "items": "\n".join(items),
                }
                for app_id, ev_id, entitlement, amount, items in sorted(lines)
            ],
        )
    return run


def _same(session: Session, current: Allocation, run: Allocation, lines: set[Line]) -> bool:
    """Whether the recorded run says exactly this (who, from which evaluation, how much)."""
    assert current.id is not None
    recorded = {
        (app_id, ev_id, entitlement, amount, tuple(split_items(items)))
        for app_id, ev_id, entitlement, amount, items in session.execute(
            sa.select(
                col(AllocationLine.application_id),
                col(AllocationLine.evaluation_id),
                col(AllocationLine.entitlement_fen),
                col(AllocationLine.amount_fen),
                col(AllocationLine.items),
            ).where(col(AllocationLine.allocation_id) == current.id)
        ).all()
    }
    return (
        recorded == lines
        and current.pool_fen == run.pool_fen
        and current.available_fen == run.available_fen
        and current.warnings == run.warnings
    )


def _money(fen: int | None) -> str | None:
    return None if fen is None else fmt(from_fen(fen))


def allocation_view(session: Session, round_: Round, allocation: Allocation) -> dict[str, Any]:
    assert allocation.id is not None
    rows = session.execute(
        sa.select(
            col(AllocationLine.application_id),
            col(AllocationLine.evaluation_id),
            col(AllocationLine.entitlement_fen),
            col(AllocationLine.amount_fen),
            col(AllocationLine.items),
            col(Application.applicant_uscc),
            NAME,
            col(Application.submitted_at),
            col(Application.received_at),
        )
        .join(Application, col(Application.id) == AllocationLine.application_id)
        .where(col(AllocationLine.allocation_id) == allocation.id)
        .order_by(col(Application.received_at), col(Application.id))
    ).all()
    elsewhere = (
        None
        if allocation.pool_fen is None or allocation.available_fen is None
        else allocation.pool_fen - allocation.available_fen
    )
    return {
        "round_id": round_.id,
        "program_id": round_.program_id,
        "run": allocation.run,
        "allocated_at": shanghai(allocation.allocated_at),
        "closed": round_.closed_at is not None,
        "pool": _money(allocation.pool_fen),
        "allocated_in_other_rounds": _money(elsewhere),
        "available": _money(allocation.available_fen),
        "pool_left": None
        if allocation.available_fen is None
        else _money(allocation.available_fen - allocation.total_fen),
        "total_entitlement": fmt(from_fen(sum(r[2] for r in rows))),
        "total": fmt(from_fen(allocation.total_fen)),
        "allocations": [
            {
                "application_id": app_id,
                "applicant_uscc": uscc,
                "applicant_name": name,
                "submitted_at": shanghai(submitted),
                "received_at": shanghai(received),
                "evaluation_id": ev_id,
                "entitlement": fen_text(entitlement),
                "amount": fen_text(amount),
                "items": split_items(items),
            }
            for app_id, ev_id, entitlement, amount, items, uscc, name, submitted, received in rows
        ],
        "warnings": allocation.warnings,
    }


def round_view(session: Session, round_: Round) -> dict[str, Any]:
    assert round_.id is not None
    count = session.exec(
        select(func.count()).select_from(Application).where(Application.round_id == round_.id)
    ).one()
    current = current_allocation(session, round_.id)
    return {
        "id": round_.id,
        "program_id": round_.program_id,
        "name": round_.name,
        "overrides": round_.overrides,
        "created_at": shanghai(round_.created_at),
        "received_at": shanghai(round_.created_at),
        "closed_at": shanghai(round_.closed_at),
        "applications": int(count),
        "allocation": None if current is None else allocation_view(session, round_, current),
    }
