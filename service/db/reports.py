"""Stage reports (中期 / 验收) of stored applications: append and list. Storage only; the
evaluation is made by service.performance before a report is stored."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from service.db.models import StageReport, as_utc


def add(
    session: Session,
    application_id: int,
    stage: str,
    reported: dict[str, Any],
    task_book: dict[str, Any],
    reported_on: date | None,
    period_ends_on: date | None,
    rules_version: str,
    passed: bool | None,
    result: dict[str, Any],
    submitted_by: int | None,
) -> StageReport:
    row = StageReport(
        application_id=application_id,
        stage=stage,
        reported=reported,
        task_book=task_book,
        reported_on=reported_on,
        period_ends_on=period_ends_on,
        rules_version=rules_version,
        passed=passed,
        result=result,
        submitted_by=submitted_by,
    )
    session.add(row)
    session.flush()
    return row


def of_application(session: Session, application_id: int) -> list[StageReport]:
    return list(
        session.exec(
            select(StageReport)
            .where(StageReport.application_id == application_id)
            .order_by(col(StageReport.id))
        ).all()
    )


def view(row: StageReport) -> dict[str, Any]:
    return {
        "id": row.id,
        "application_id": row.application_id,
        "stage": row.stage,
        "reported": row.reported,
        "task_book": row.task_book,
        "reported_on": row.reported_on.isoformat() if row.reported_on else None,
        "period_ends_on": row.period_ends_on.isoformat() if row.period_ends_on else None,
        "rules_version": row.rules_version,
        "received_at": as_utc(row.received_at).isoformat(),
        "passed": row.passed,
        **{k: row.result[k] for k in ("indicators", "counts", "warnings", "tranche")},
    }
