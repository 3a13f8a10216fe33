"""The stored flow of stage reports: where a stored project's tranches stand, from its latest
evaluation, its review (立项) and its reports (the rule itself: service.performance.tranches)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.db import applications, reports
from service.db.models import Application
from service.performance.tranches import StoredStage, tranche_statuses


def tranches(session: Session, stored: Application) -> list[dict[str, Any]]:
    assert stored.id is not None
    latest = applications.evaluations(session, stored.id)[-1]
    stages = [StoredStage(r.stage, r.passed) for r in reports.of_application(session, stored.id)]
    approval = applications.latest_approval(session, stored.id)  # the latest decision stands
    approved = None if approval is None else approval.approved
    return tranche_statuses(latest.result.get("disbursement"), latest.eligible, approved, stages)
