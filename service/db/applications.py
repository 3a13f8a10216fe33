"""Stored applications: submit (store and evaluate, honouring an idempotency key), re-evaluate
(a new evaluation row, never an overwrite), review, and the record the API returns.

The rules that need stored data are applied here, beside the pure decision:
* 第二十六条 — the disqualification list, read in the same transaction as the write;
* one application per organisation per guide year (表注4), for programs whose rule file declares
  ``once_per_applicant``: the first application of an applicant in a guide year holds
  ``once_key``, and a unique constraint refuses a concurrent second "first";
* one award per organisation per program (一次性, ``once_per_unit``): a later application of an
  organisation whose earlier one is eligible and not rejected is not eligible;
* the claims ledger (service.ledger): each claimed item is recorded in ``claims``; an item
  another stored application of the program claims is not counted. Claims of one program are
  serialised (service.db.locks), so two concurrent claims of one item see each other.

Every change is appended to the audit log in the same transaction. The window conditions
(第二十七条) are judged on ``received_at``, the server's clock, never on the body's own date.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from service import ledger
from service.auditlog import Actor, append
from service.awards import Award
from service.clock import shanghai
from service.db import disqualifications, locks
from service.db.models import (
    MAX_ID,
    Application,
    Approval,
    ClaimRow,
    Evaluation,
    Round,
    as_utc,
)
from service.db.session import Database
from service.decision import Decision, Reason, decide
from service.engine.base import EngineError, Evaluator
from service.engine.facts import Context
from service.errors import (
    Conflict,
    EvaluationFailed,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
)
from service.money import ZERO, fmt, from_fen, to_fen
from service.rules.model import Statement
from service.rules.program import Program
from service.schemas.body import error_detail
from service.schemas.forms import Application as Form
from service.schemas.results import render

# A concurrent writer may win a unique constraint (same idempotency key, same applicant's first
# application of the guide year); the loser retries once it can see the winner's row.
ATTEMPTS = 3


@dataclass(frozen=True)
class Rules:
    """What evaluating needs from the runtime (kept apart from FastAPI)."""

    evaluator: Evaluator
    version: str


@dataclass(frozen=True)
class Submission:
    program: Program
    application: Form  # validated against the program's form
    request: dict[str, Any]  # the application as submitted (amounts as strings)
    round_id: int | None
    idempotency_key: str | None
    actor: Actor  # the API key that sends it; idempotency keys are per API key
    received_at: datetime  # the server's clock (portal), or the paper's received date (代录)
    channel: str = "portal"  # portal | paper
    entered_at: datetime | None = None  # paper entries: when the reviewer entered it


def jsonable(value: Any) -> Any:
    """The decoded body, storable as JSON: exact decimals become their text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def request_hash(program_id: str, round_id: int | None, request: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"program_id": program_id, "round_id": round_id, "application": request},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def round_overrides(program: Program, round_: Round | None) -> dict[str, Any] | None:
    """A round's overrides as the award arithmetic reads them: {"tier_amounts": {1: Decimal}}."""
    if round_ is None or not round_.overrides:
        return None
    out: dict[str, Any] = {}
    for name, value in round_.overrides.items():
        if isinstance(value, dict):
            out[name] = {int(k): Decimal(v) for k, v in value.items()}
    return out


def once_key(program: Program) -> str | None:
    """The guide year an applicant may apply in once, when the program's rules declare it."""
    if getattr(program, "once_per_applicant", None) is None:
        return None
    guide_year = getattr(program, "guide_year", None)
    return f"{program.policy}:{guide_year if guide_year is not None else program.id}"


def _apply_once(
    decision: Decision, statement: Statement | None, earlier: Application | None
) -> Decision:
    if statement is None:
        return decision
    if earlier is None:
        reason = Reason(statement.id, statement.article, True, statement.zh, statement.en)
        return replace(decision, reasons=sorted([*decision.reasons, reason], key=_passed))
    reason = Reason(
        statement.id,
        statement.article,
        False,
        f"{statement.zh}（本单位已提交申报 {earlier.id}）",
        f"{statement.en} (this organisation already submitted application {earlier.id})",
    )
    items = [replace(i, amount=ZERO) for i in decision.items] if decision.items else decision.items
    tranches = decision.disbursement
    return replace(
        decision,
        eligible=False,
        reasons=sorted([*decision.reasons, reason], key=_passed),
        items=items,
        award=Award.nothing(),
        disbursement=[replace(t, amount=ZERO) for t in tranches] if tranches else tranches,
    )


def _passed(reason: Reason) -> bool:
    return reason.passed


def _earlier(
    session: Session, key: str | None, uscc: str, own_id: int | None
) -> Application | None:
    if key is None:
        return None
    holder = session.exec(
        select(Application).where(Application.once_key == key, Application.applicant_uscc == uscc)
    ).first()
    return None if holder is None or holder.id == own_id else holder


def latest_approval(session: Session, application_id: int) -> Approval | None:
    return session.exec(
        select(Approval)
        .where(Approval.application_id == application_id)
        .order_by(col(Approval.id).desc())
        .limit(1)
    ).first()


def _earlier_unit(
    session: Session, program: Program, uscc: str, own: Application | None
) -> Application | None:
    """一次性: the organisation's earlier application to this program that still stands
    (eligible on its own merits and not rejected), if any."""
    if program.once_per_unit is None:
        return None
    others = session.exec(
        select(Application)
        .where(Application.program_id == program.id, Application.applicant_uscc == uscc)
        .order_by(col(Application.received_at), col(Application.id))
    ).all()
    for other in others:
        if own is not None and (
            other.id == own.id
            or (as_utc(other.received_at), other.id or 0) > (as_utc(own.received_at), own.id or 0)
        ):
            continue
        assert other.id is not None
        approval = latest_approval(session, other.id)
        if approval is not None and not approval.approved:
            continue
        history = evaluations(session, other.id)
        latest = history[-1] if history else None
        if latest is not None and (
            latest.eligible if latest.eligible_on_own is None else latest.eligible_on_own
        ):
            return other
    return None


def _claimed_before(
    session: Session,
    program: Program,
    claims: list[ledger.ItemClaim],
    own: Application | None,
    received_at: datetime,
) -> set[str]:
    """The keys among ``claims`` that another stored application of the program, received
    before this one (received time, then id), claims with the item meeting its conditions."""
    keys = sorted({c.key for c in claims if c.meets_conditions})
    if not keys:
        return set()
    query = select(ClaimRow.item_key, ClaimRow.application_id, ClaimRow.received_at).where(
        ClaimRow.program_id == program.id,
        col(ClaimRow.item_key).in_(keys),
        col(ClaimRow.meets_conditions).is_(True),
    )
    mine = (as_utc(received_at), MAX_ID if own is None or own.id is None else own.id)
    return {
        key
        for key, app_id, at in session.exec(query).all()
        if (own is None or app_id != own.id) and (as_utc(at), app_id) < mine
    }


@dataclass(frozen=True)
class _Evaluated:
    decision: Decision
    eligible_on_own: bool
    claims: list[ledger.ItemClaim]


def _evaluate(
    session: Session,
    rules: Rules,
    program: Program,
    application: Form,
    round_: Round | None,
    earlier: Application | None,
    own: Application | None,
    received_at: datetime,
) -> _Evaluated:
    context = Context(
        disqualified=disqualifications.is_disqualified(session, application.applicant.uscc)
    )
    overrides = round_overrides(program, round_)
    # The window conditions (第二十七条) are judged on when the service received it.
    judged = application.model_copy(update={"submitted_at": received_at})
    try:
        decision = decide(program, judged, rules.evaluator, rules.version, context, overrides)
    except EngineError as exc:
        raise EvaluationFailed() from exc
    decision = _apply_once(decision, program.once_per_applicant, earlier)
    eligible_on_own = decision.eligible
    claims = ledger.item_claims(program, judged, decision)
    taken = _claimed_before(session, program, claims, own, received_at)
    decision = ledger.apply_claims(program, judged, decision, claims, taken, overrides)
    unit = _earlier_unit(session, program, application.applicant.uscc, own)
    decision = _apply_once(decision, program.once_per_unit, unit)
    return _Evaluated(decision, eligible_on_own, claims)


def _record_claims(session: Session, stored: Application, evaluated: _Evaluated) -> None:
    """The application's items in the ledger, as its latest evaluation counts them."""
    assert stored.id is not None
    for row in session.exec(select(ClaimRow).where(ClaimRow.application_id == stored.id)).all():
        session.delete(row)
    session.flush()
    items = evaluated.decision.items or []
    for claim in evaluated.claims:
        session.add(
            ClaimRow(
                program_id=stored.program_id,
                item_list=claim.item_list,
                item_index=claim.index,
                item_key=claim.key,
                application_id=stored.id,
                applicant_uscc=stored.applicant_uscc,
                received_at=as_utc(stored.received_at),
                meets_conditions=claim.meets_conditions,
                counted=claim.index < len(items) and items[claim.index].counted,
            )
        )


def _lock_program(session: Session, program: Program) -> None:
    if ledger.claim_group(program) is not None or program.once_per_unit is not None:
        locks.hold(session, f"claims:{program.id}")


def _evaluation_row(application_id: int, evaluated: _Evaluated, at: datetime) -> Evaluation:
    decision = evaluated.decision
    result = render(decision, with_award=True)
    amount = decision.award.amount
    return Evaluation(
        application_id=application_id,
        rules_version=decision.rules_version,
        eligible=decision.eligible,
        eligible_on_own=evaluated.eligible_on_own,
        award_fen=None if amount is None else to_fen(amount),
        reasons=result["reasons"],
        result=result,
        evaluated_at=at,
    )


class RoundClosed(Conflict):
    code = "round_closed"

    def __init__(self, round_id: int) -> None:
        super().__init__(
            f"轮次 {round_id} 已结项（资金已拨付），不能再分配",
            f"Round {round_id} is closed (its funds are disbursed): it cannot be allocated again",
        )


def _load_round(session: Session, program: Program, round_id: int | None) -> Round | None:
    if round_id is None:
        return None
    round_ = session.get(Round, round_id)
    problem = None
    if round_ is None:
        problem = f"没有编号为 {round_id} 的轮次 / there is no round {round_id}"
    elif round_.program_id != program.id:
        problem = (
            f"轮次 {round_id} 属于项目 {round_.program_id} / "
            f"round {round_id} belongs to program {round_.program_id}"
        )
    if problem is None and round_ is not None and round_.closed_at is not None:
        raise RoundClosed(round_.id or 0)
    if problem is not None:
        raise InvalidRequest(
            [
                {
                    "loc": ["body", "round_id"],
                    "path": "round_id",
                    "type": "value_error",
                    "msg": problem,
                }
            ]
        )
    return round_


def submit(db: Database, rules: Rules, sub: Submission) -> tuple[Application, bool]:
    """Store and evaluate, in one transaction. Returns the application and whether it is a
    replay of an earlier submission with the same idempotency key (nothing is stored twice)."""
    digest = request_hash(sub.program.id, sub.round_id, sub.request)
    uscc = sub.application.applicant.uscc
    key = once_key(sub.program)
    now = sub.entered_at or sub.received_at
    for attempt in range(ATTEMPTS):
        try:
            with db.transaction() as session:
                if sub.idempotency_key is not None:
                    first = session.exec(
                        select(Application).where(
                            Application.idempotency_key == sub.idempotency_key,
                            Application.submitted_by == sub.actor.key_id,
                        )
                    ).first()
                    if first is not None:
                        if first.request_hash != digest:
                            raise IdempotencyConflict(sub.idempotency_key, first.id or 0)
                        return first, True
                _lock_program(session, sub.program)
                round_ = _load_round(session, sub.program, sub.round_id)
                earlier = _earlier(session, key, uscc, None)
                evaluated = _evaluate(
                    session,
                    rules,
                    sub.program,
                    sub.application,
                    round_,
                    earlier,
                    None,
                    sub.received_at,
                )
                stored = Application(
                    program_id=sub.program.id,
                    round_id=sub.round_id,
                    applicant_uscc=uscc,
                    request=sub.request,
                    request_hash=digest,
                    idempotency_key=sub.idempotency_key,
                    submitted_by=sub.actor.key_id,
                    once_key=key if earlier is None else None,
                    submitted_at=as_utc(sub.application.submitted_at),
                    received_at=as_utc(sub.received_at),
                    channel=sub.channel,
                    entered_at=sub.entered_at,
                )
                session.add(stored)
                session.flush()
                assert stored.id is not None
                session.add(_evaluation_row(stored.id, evaluated, now))
                _record_claims(session, stored, evaluated)
                append(
                    session,
                    sub.actor,
                    "application.paper_entry" if sub.channel == "paper" else "application.submit",
                    "application",
                    stored.id,
                    {
                        "program_id": stored.program_id,
                        "round_id": stored.round_id,
                        "applicant_uscc": uscc,
                        "request_hash": digest,
                        "received_at": as_utc(sub.received_at).isoformat(),
                        "eligible": evaluated.decision.eligible,
                    },
                    now,
                )
            return stored, False
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def get(session: Session, application_id: int) -> Application:
    stored = session.get(Application, application_id)
    if stored is None:
        raise NotFound("申报", "application", application_id)
    return stored


class NoLongerValid(Conflict):
    """The stored request does not fit the program's form as the rules now define it."""

    code = "no_longer_valid"


def reevaluate(
    db: Database,
    rules: Rules,
    programs: Callable[[str], Program],
    application_id: int,
    actor: Actor,
    now: datetime,
) -> Application:
    """Evaluate a stored application under the rules loaded now; a new row, the old one stays."""
    with db.transaction() as session:
        stored = get(session, application_id)
        program = programs(stored.program_id)
        _lock_program(session, program)
        try:
            application = program.form.model_validate(stored.request)
        except ValidationError as exc:
            raise NoLongerValid(
                "按现行规则，已存申报的内容不再有效，无法重新评估",
                "Under the rules now in force the stored application is no longer well-formed",
                detail=error_detail(exc, ("application",)),
            ) from exc
        round_ = session.get(Round, stored.round_id) if stored.round_id is not None else None
        earlier = _earlier(session, once_key(program), stored.applicant_uscc, stored.id)
        evaluated = _evaluate(
            session, rules, program, application, round_, earlier, stored, stored.received_at
        )
        assert stored.id is not None
        session.add(_evaluation_row(stored.id, evaluated, now))
        _record_claims(session, stored, evaluated)
        append(
            session,
            actor,
            "application.reevaluate",
            "application",
            stored.id,
            {"rules_version": rules.version, "eligible": evaluated.decision.eligible},
            now,
        )
        return stored


def review(
    db: Database,
    application_id: int,
    approved: bool,
    note: str | None,
    actor: Actor,
    now: datetime,
) -> Approval:
    """Append a decision to the application's approval history (the latest stands)."""
    with db.transaction() as session:
        stored = get(session, application_id)
        entry = Approval(
            application_id=application_id,
            approved=approved,
            note=note,
            by_key=actor.key_id,
            by_name=actor.name,
            received_at=now,
        )
        session.add(entry)
        session.flush()
        append(
            session,
            actor,
            "approval.approve" if approved else "approval.withdraw",
            "application",
            stored.id,
            {"approval_id": entry.id, "approved": approved, "note": note},
            now,
        )
        return entry


def evaluations(session: Session, application_id: int) -> list[Evaluation]:
    return list(
        session.exec(
            select(Evaluation)
            .where(Evaluation.application_id == application_id)
            .order_by(col(Evaluation.id))
        ).all()
    )


def _moment(value: Any) -> str | None:
    return shanghai(value)


def _sent(stored: Application) -> str:
    """``submitted_at`` in the offset it was sent in."""
    text = stored.request.get("submitted_at")
    try:
        sent = datetime.fromisoformat(str(text))
    except ValueError:
        sent = None
    moment = as_utc(stored.submitted_at)
    if sent is None or sent.tzinfo is None:
        return shanghai(moment) or ""
    return moment.astimezone(sent.tzinfo).isoformat()


def approvals(session: Session, application_id: int) -> list[Approval]:
    return list(
        session.exec(
            select(Approval)
            .where(Approval.application_id == application_id)
            .order_by(col(Approval.id))
        ).all()
    )


def _approval_view(entry: Approval) -> dict[str, Any]:
    return {
        "id": entry.id,
        "approved": entry.approved,
        "note": entry.note,
        "by": {"key_id": entry.by_key, "name": entry.by_name},
        "received_at": _moment(entry.received_at),
    }


def _claims_view(session: Session, stored: Application, program: Program | None) -> list[Any]:
    """For reviewers: each claimed item, and the other applications that claim it."""
    assert stored.id is not None
    mine = session.exec(
        select(ClaimRow).where(ClaimRow.application_id == stored.id).order_by(col(ClaimRow.id))
    ).all()
    if not mine:
        return []
    others = session.exec(
        select(ClaimRow).where(
            ClaimRow.program_id == stored.program_id,
            col(ClaimRow.item_key).in_(sorted({c.item_key for c in mine})),
            ClaimRow.application_id != stored.id,
        )
    ).all()
    by_key: dict[str, list[ClaimRow]] = {}
    for other in others:
        by_key.setdefault(other.item_key, []).append(other)
    warn = None if program is None else program.claimed_by_another_applicant
    out = []
    for claim in mine:
        claimants = sorted(by_key.get(claim.item_key, []), key=lambda c: c.application_id)
        foreign = [c for c in claimants if c.applicant_uscc != stored.applicant_uscc]
        out.append(
            {
                "ref": f"{claim.item_list}[{claim.item_index}]",
                "item_key": claim.item_key,
                "counted": claim.counted,
                "also_claimed_by": [
                    {
                        "application_id": c.application_id,
                        "applicant_uscc": c.applicant_uscc,
                        "received_at": _moment(c.received_at),
                        "same_applicant": c.applicant_uscc == stored.applicant_uscc,
                    }
                    for c in claimants
                ],
                "warning": None
                if not foreign or warn is None
                else {
                    "rule": warn.id,
                    "article": warn.article,
                    "message_zh": warn.zh,
                    "message_en": warn.en,
                },
            }
        )
    return out


def record(
    session: Session,
    stored: Application,
    reviewer: bool = False,
    program: Program | None = None,
) -> dict[str, Any]:
    """The API's view of a stored application: the request, the latest evaluation in full,
    every evaluation (each with the rules version that produced it) and the approval history.
    Reviewers also see the ledger: who else claims each item (portals never do)."""
    assert stored.id is not None
    history = evaluations(session, stored.id)
    latest = history[-1]
    decisions = approvals(session, stored.id)
    current = decisions[-1] if decisions else None
    view: dict[str, Any] = {
        "id": stored.id,
        "program_id": stored.program_id,
        "round_id": stored.round_id,
        "applicant_uscc": stored.applicant_uscc,
        "submitted_at": _sent(stored),
        "received_at": _moment(stored.received_at),
        "channel": stored.channel,
        "entered_at": _moment(stored.entered_at),
        "idempotency_key": stored.idempotency_key,
        "application": stored.request,
        "review": None
        if current is None
        else {
            "approved": current.approved,
            "reviewed_by": current.by_name,
            "reviewed_at": _moment(current.received_at),
            "note": current.note,
        },
        "approvals": [_approval_view(a) for a in decisions],
        "evaluation": {
            "id": latest.id,
            "evaluated_at": _moment(latest.evaluated_at),
            **latest.result,
        },
        "evaluations": [
            {
                "id": e.id,
                "rules_version": e.rules_version,
                "evaluated_at": _moment(e.evaluated_at),
                "eligible": e.eligible,
                "award_amount": None if e.award_fen is None else fmt(from_fen(e.award_fen)),
            }
            for e in history
        ],
    }
    if reviewer:
        view["claims"] = _claims_view(session, stored, program)
    return view


def listing(
    session: Session,
    applicants: frozenset[str] | None,
    program_id: str | None,
    round_id: int | None,
    applicant_uscc: str | None,
    after: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Applications in id order after ``after`` (None applicants: every applicant)."""
    query = select(Application).where(col(Application.id) > after)
    if applicants is not None:
        query = query.where(col(Application.applicant_uscc).in_(sorted(applicants)))
    if program_id is not None:
        query = query.where(Application.program_id == program_id)
    if round_id is not None:
        query = query.where(Application.round_id == round_id)
    if applicant_uscc is not None:
        query = query.where(Application.applicant_uscc == applicant_uscc)
    rows = session.exec(query.order_by(col(Application.id)).limit(limit)).all()
    out = []
    for stored in rows:
        assert stored.id is not None
        latest = session.exec(
            select(Evaluation)
            .where(Evaluation.application_id == stored.id)
            .order_by(col(Evaluation.id).desc())
            .limit(1)
        ).one()
        current = latest_approval(session, stored.id)
        out.append(
            {
                "id": stored.id,
                "program_id": stored.program_id,
                "round_id": stored.round_id,
                "applicant_uscc": stored.applicant_uscc,
                "applicant_name": stored.request.get("applicant", {}).get("name"),
                "submitted_at": _sent(stored),
                "received_at": _moment(stored.received_at),
                "status": status_of(latest, current),
                "eligible": latest.eligible,
                "award_amount": None
                if latest.award_fen is None
                else fmt(from_fen(latest.award_fen)),
            }
        )
    return out


def status_of(latest: Evaluation, approval: Approval | None) -> str:
    """ineligible | submitted (awaiting review) | approved | rejected."""
    if approval is not None:
        return "approved" if approval.approved else "rejected"
    return "submitted" if latest.eligible else "ineligible"


def count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Application)).one())
