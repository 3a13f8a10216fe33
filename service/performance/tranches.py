"""Where a stored project's tranches stand (政策兑现方式): each ``payable``, ``withheld`` or
``pending``, from what is stored — the latest evaluation's disbursement schedule, the
reviewer's decision (立项) and the stage reports.

- 立项当年 (first_year): payable once approved (and eligible); withheld if not approved.
- 中期 (mid_term): payable once a mid-term report is in.
- 验收合格后 (acceptance): payable once the latest acceptance report passed; withheld if it
  failed; pending while none has been judged.
An ineligible application or a rejected one withholds every tranche. Whether a payable tranche
has been *paid* is the finance office's record, which this service does not hold yet: no
tranche is reported as ``paid`` until a payment is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredStage:
    stage: str
    passed: bool | None


def tranche_statuses(
    disbursement: list[dict[str, Any]] | None,
    eligible: bool,
    approved: bool | None,
    reports: list[StoredStage],
) -> list[dict[str, Any]]:
    out = []
    for tranche in disbursement or []:
        status, why = _status(tranche["stage"], eligible, approved, reports)
        out.append({**tranche, "status": status, "reason": why})
    return out


def _status(
    stage: str, eligible: bool, approved: bool | None, reports: list[StoredStage]
) -> tuple[str, str]:
    if not eligible:
        return "withheld", "not_eligible"
    if approved is False:
        return "withheld", "not_approved"
    if approved is None:
        return "pending", "not_reviewed"
    if stage == "first_year":
        return "payable", "approved"
    own = [r for r in reports if r.stage == stage]
    if stage == "mid_term":
        return ("payable", "mid_term_report") if own else ("pending", "no_report")
    if not own or own[-1].passed is None:
        return "pending", "no_report" if not own else "unjudged"
    return ("payable", "accepted") if own[-1].passed else ("withheld", "acceptance_failed")
