"""Stored applications: submit (store and evaluate, honouring an idempotency key), re-evaluate
(a new evaluation row, never an overwrite), review, and the record the API returns.

The rules that need stored data are applied here, beside the pure decision:
* 第二十六条 — the disqualification list, read in the same transaction as the write;
* one application per organisation per guide year (表注4), for programs whose rule file declares
  ``once_per_applicant``: the first application of an applicant in a guide year holds
  ``once_key``, and a unique constraint refuses a concurrent second "first".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.awards import Award
from service.db import disqualifications
from service.db.models import Application, Evaluation, Round, as_utc, utcnow
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
    submitted_by: int | None = None  # the API key's id; idempotency keys are per API key


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


def _apply_once_per_applicant(
    decision: Decision, program: Program, earlier: Application | None
) -> Decision:
    statement = getattr(program, "once_per_applicant", None)
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


def _evaluate(
    session: Session,
    rules: Rules,
    program: Program,
    application: Form,
    round_: Round | None,
    earlier: Application | None,
) -> Decision:
    context = Context(
        disqualified=disqualifications.is_disqualified(session, application.applicant.uscc)
    )
    overrides = round_overrides(program, round_)
    try:
        decision = decide(program, application, rules.evaluator, rules.version, context, overrides)
    except EngineError as exc:
        raise EvaluationFailed() from exc
    return _apply_once_per_applicant(decision, program, earlier)


def _evaluation_row(application_id: int, decision: Decision) -> Evaluation:
    result = render(decision, with_award=True)
    amount = decision.award.amount
    return Evaluation(
        application_id=application_id,
        rules_version=decision.rules_version,
        eligible=decision.eligible,
        award_fen=None if amount is None else to_fen(amount),
        reasons=result["reasons"],
        result=result,
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
    for attempt in range(ATTEMPTS):
        try:
            with db.transaction() as session:
                if sub.idempotency_key is not None:
                    first = session.exec(
                        select(Application).where(
                            Application.idempotency_key == sub.idempotency_key,
                            Application.submitted_by == sub.submitted_by,
                        )
                    ).first()
                    if first is not None:
                        if first.request_hash != digest:
                            raise IdempotencyConflict(sub.idempotency_key, first.id or 0)
                        return first, True
                round_ = _load_round(session, sub.program, sub.round_id)
                earlier = _earlier(session, key, uscc, None)
                decision = _evaluate(session, rules, sub.program, sub.application, round_, earlier)
                stored = Application(
                    program_id=sub.program.id,
                    round_id=sub.round_id,
                    applicant_uscc=uscc,
                    request=sub.request,
                    request_hash=digest,
                    idempotency_key=sub.idempotency_key,
                    submitted_by=sub.submitted_by,
                    once_key=key if earlier is None else None,
                    submitted_at=as_utc(sub.application.submitted_at),
                )
                session.add(stored)
                session.flush()
                assert stored.id is not None
                session.add(_evaluation_row(stored.id, decision))
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
    db: Database, rules: Rules, programs: Callable[[str], Program], application_id: int
) -> Application:
    """Evaluate a stored application under the rules loaded now; a new row, the old one stays."""
    with db.transaction() as session:
        stored = get(session, application_id)
        program = programs(stored.program_id)
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
        decision = _evaluate(session, rules, program, application, round_, earlier)
        assert stored.id is not None
        session.add(_evaluation_row(stored.id, decision))
        return stored


def review(
    db: Database, application_id: int, approved: bool, reviewer: str | None, note: str | None
) -> Application:
    with db.transaction() as session:
        stored = get(session, application_id)
        stored.approved = approved
        stored.reviewed_by = reviewer
        stored.reviewed_at = utcnow()
        stored.review_note = note
        session.add(stored)
        return stored


def evaluations(session: Session, application_id: int) -> list[Evaluation]:
    return list(
        session.exec(
            select(Evaluation)
            .where(Evaluation.application_id == application_id)
            .order_by(col(Evaluation.id))
        ).all()
    )


def _moment(value: Any) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def record(session: Session, stored: Application) -> dict[str, Any]:
    """The API's view of a stored application: the request, the latest evaluation in full, and
    every evaluation (each with the rules version that produced it)."""
    assert stored.id is not None
    history = evaluations(session, stored.id)
    latest = history[-1]
    return {
        "id": stored.id,
        "program_id": stored.program_id,
        "round_id": stored.round_id,
        "applicant_uscc": stored.applicant_uscc,
        "submitted_at": _moment(stored.submitted_at),
        "received_at": _moment(stored.received_at),
        "idempotency_key": stored.idempotency_key,
        "application": stored.request,
        "review": None
        if stored.approved is None
        else {
            "approved": stored.approved,
            "reviewed_by": stored.reviewed_by,
            "reviewed_at": _moment(stored.reviewed_at),
            "note": stored.review_note,
        },
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
