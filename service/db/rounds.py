"""Funding rounds and their allocation: the quota (service.quotas), then the program pool
(service.allocation).

The pool (``pool`` parameter, e.g. 第二十条's 5,000,000) is the program's total across all of its
rounds: a round may hand out what the program's other rounds have not. Allocating locks every
round of the program (row locks on PostgreSQL, the write lock on SQLite), so concurrent
allocations take turns and never together exceed the pool. Each allocation is recorded as a
numbered run; allocating again with nothing changed returns the recorded run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from service import quotas
from service.allocation import Claim, allocate_pool
from service.db import disqualifications
from service.db.models import (
    Allocation,
    AllocationLine,
    Application,
    Disqualification,
    Evaluation,
    Round,
    as_utc,
)
from service.db.session import Database
from service.errors import NotFound, QuotaExceeded
from service.money import fmt, from_fen, to_fen
from service.quotas import QuotaCheck, Unit
from service.rules.model import QuotaSpec
from service.rules.program import Program

# application id, evaluation id, entitlement in fen, amount in fen
Line = tuple[int, int, int, int]


@dataclass(frozen=True)
class Excluded:
    application_id: int
    reason: str  # not_approved | not_eligible | disqualified | no_entitlement


def create(db: Database, program: Program, name: str, overrides: dict[str, Any]) -> Round:
    with db.transaction() as session:
        round_ = Round(program_id=program.id, name=name, overrides=overrides)
        session.add(round_)
        session.flush()
        return round_


def get(session: Session, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise NotFound("轮次", "round", round_id)
    return round_


def current_allocation(session: Session, round_id: int) -> Allocation | None:
    return session.exec(
        select(Allocation)
        .where(Allocation.round_id == round_id)
        .order_by(col(Allocation.run).desc())
    ).first()


def _lines(session: Session, allocation_id: int) -> list[tuple[AllocationLine, Application]]:
    rows = session.exec(
        select(AllocationLine, Application)
        .join(Application, col(Application.id) == AllocationLine.application_id)
        .where(AllocationLine.allocation_id == allocation_id)
        .order_by(col(Application.submitted_at), col(Application.id))
    ).all()
    return [(line, app) for line, app in rows]


def _candidates(session: Session, round_id: int) -> list[tuple[Application, Evaluation]]:
    """The round's applications, each with its latest evaluation."""
    latest = (
        select(Evaluation.application_id, func.max(Evaluation.id).label("evaluation_id"))
        .group_by(col(Evaluation.application_id))
        .subquery()
    )
    rows = session.exec(
        select(Application, Evaluation)
        .join(latest, latest.c.application_id == Application.id)
        .join(Evaluation, col(Evaluation.id) == latest.c.evaluation_id)
        .where(Application.round_id == round_id)
        .order_by(col(Application.id))
    ).all()
    return [(app, ev) for app, ev in rows]


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


def _district(program: Program, quota: QuotaSpec | None, app: Application) -> str | None:
    if quota is None or quota.kind != "per_district" or quota.district_field is None:
        return None
    try:  # the form canonicalises districts ("黄浦区" -> "huangpu")
        value = getattr(program.form.model_validate(app.request), quota.district_field)
    except ValidationError:
        value = app.request.get(quota.district_field)
    return None if value is None else str(value)


def _other_rounds_total(session: Session, program_id: str, round_id: int) -> int:
    """What the program's other rounds hand out in their current runs, in fen."""
    current = (
        select(Allocation.round_id, func.max(Allocation.run).label("run"))
        .group_by(col(Allocation.round_id))
        .subquery()
    )
    total = session.exec(
        select(func.coalesce(func.sum(Allocation.total_fen), 0))
        .join(
            current,
            (current.c.round_id == Allocation.round_id) & (current.c.run == Allocation.run),
        )
        .join(Round, col(Round.id) == Allocation.round_id)
        .where(Round.program_id == program_id, Round.id != round_id)
    ).one()
    return int(total)


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


def _warnings(quota: QuotaSpec | None, check: QuotaCheck) -> list[dict[str, Any]]:
    if quota is None:
        return []
    return [
        {
            "rule": "quota",
            "article": quota.article,
            "message_zh": f"{quota.zh}；本轮批准{w.count}家",
            "message_en": f"{quota.en}; {w.count} are approved in this round",
            "limit": w.limit,
            "count": w.count,
        }
        for w in check.warnings
    ]


@dataclass
class _Taken:
    claims: list[Claim]
    units: list[Unit]  # the same applications, as the quota counts them
    evaluation_of: dict[int, int]  # application id -> the evaluation its entitlement came from
    excluded: list[Excluded]


def _take(session: Session, program: Program, round_id: int) -> _Taken:
    """The round's approved applications whose latest evaluation is eligible; the rest, with why."""
    candidates = _candidates(session, round_id)
    banned = (
        _disqualified(session, {app.applicant_uscc for app, _ in candidates})
        if disqualifications.applies_to(program)
        else set()
    )
    taken = _Taken([], [], {}, [])
    for app, ev in candidates:
        assert app.id is not None and ev.id is not None
        if not app.approved:
            taken.excluded.append(Excluded(app.id, "not_approved"))
        elif not ev.eligible:
            taken.excluded.append(Excluded(app.id, "not_eligible"))
        elif app.applicant_uscc in banned:  # listed after its evaluation (第二十六条)
            taken.excluded.append(Excluded(app.id, "disqualified"))
        elif ev.award_fen is None:
            taken.excluded.append(Excluded(app.id, "no_entitlement"))
        else:
            submitted_at = as_utc(app.submitted_at)
            taken.claims.append(Claim(app.id, submitted_at, from_fen(ev.award_fen)))
            district = _district(program, program.quota, app)
            taken.units.append(Unit(app.id, submitted_at, district))
            taken.evaluation_of[app.id] = ev.id
    return taken


def allocate(db: Database, programs: Callable[[str], Program], round_id: int) -> dict[str, Any]:
    with db.transaction() as session:
        round_ = get(session, round_id)
        program = programs(round_.program_id)
        # Every round of the program, locked in id order: allocations of one program take turns.
        session.exec(
            select(Round.id)
            .where(Round.program_id == program.id)
            .order_by(col(Round.id))
            .with_for_update()
        ).all()

        taken = _take(session, program, round_id)
        check = quotas.check(program.quota, taken.units)
        if check.breaches:
            assert program.quota is not None
            raise _breach_error(program.quota, check)

        pool = program.parameters.get("pool")
        pool_fen = to_fen(pool.value) if pool is not None else None
        available_fen = (
            None
            if pool_fen is None
            else max(0, pool_fen - _other_rounds_total(session, program.id, round_id))
        )
        available = None if available_fen is None else from_fen(available_fen)
        lines = {
            (
                s.application_id,
                taken.evaluation_of[s.application_id],
                to_fen(s.entitlement),
                to_fen(s.amount),
            )
            for s in allocate_pool(taken.claims, available)
        }
        run = Allocation(
            round_id=round_id,
            run=1,
            pool_fen=pool_fen,
            available_fen=available_fen,
            total_fen=sum(line[3] for line in lines),
            warnings=_warnings(program.quota, check),
        )
        current = current_allocation(session, round_id)
        if current is None or not _same(session, current, run, lines):
            current = _record(session, run, current, lines)
        view = allocation_view(session, round_, current)
        view["excluded"] = [
            {"application_id": e.application_id, "reason": e.reason} for e in taken.excluded
        ]
        return view


def _record(
    session: Session, run: Allocation, previous: Allocation | None, lines: set[Line]
) -> Allocation:
    """A new numbered run with its lines (the earlier runs stay, as the record)."""
    run.run = 1 if previous is None else previous.run + 1
    session.add(run)
    session.flush()
    assert run.id is not None
    for app_id, ev_id, entitlement, amount in sorted(lines):
        session.add(
            AllocationLine(
                allocation_id=run.id,
                application_id=app_id,
                evaluation_id=ev_id,
                entitlement_fen=entitlement,
                amount_fen=amount,
            )
        )
    session.flush()
    return run


def _same(session: Session, current: Allocation, run: Allocation, lines: set[Line]) -> bool:
    """Whether the recorded run says exactly this (who, from which evaluation, how much)."""
    assert current.id is not None
    recorded = {
        (line.application_id, line.evaluation_id, line.entitlement_fen, line.amount_fen)
        for line, _ in _lines(session, current.id)
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
    lines = _lines(session, allocation.id)
    elsewhere = (
        None
        if allocation.pool_fen is None or allocation.available_fen is None
        else allocation.pool_fen - allocation.available_fen
    )
    return {
        "round_id": round_.id,
        "program_id": round_.program_id,
        "run": allocation.run,
        "allocated_at": as_utc(allocation.allocated_at).isoformat(),
        "pool": _money(allocation.pool_fen),
        "allocated_in_other_rounds": _money(elsewhere),
        "available": _money(allocation.available_fen),
        "total_entitlement": fmt(from_fen(sum(line.entitlement_fen for line, _ in lines))),
        "total": fmt(from_fen(allocation.total_fen)),
        "allocations": [
            {
                "application_id": line.application_id,
                "applicant_uscc": app.applicant_uscc,
                "submitted_at": as_utc(app.submitted_at).isoformat(),
                "evaluation_id": line.evaluation_id,
                "entitlement": fmt(from_fen(line.entitlement_fen)),
                "amount": fmt(from_fen(line.amount_fen)),
            }
            for line, app in lines
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
        "created_at": as_utc(round_.created_at).isoformat(),
        "applications": int(count),
        "allocation": None if current is None else allocation_view(session, round_, current),
    }
