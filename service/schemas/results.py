"""Responses of check / calculate (shared/spec/api.md, "Result of check / calculate").

The pydantic models document the contract in OpenAPI; ``render`` turns a Decision into JSON
with amounts as two-decimal strings and optional parts left out when they have nothing to say.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.decision import Decision, Reason
from service.money import fmt
from service.verdict import verdict


class ReasonOut(BaseModel):
    rule: str = Field(examples=["registered-in-shanghai"])
    article: str = Field(examples=["第二条"])
    passed: bool
    message_zh: str
    message_en: str


class ItemOut(BaseModel):
    ref: str = Field(examples=["transactions[0]"])
    counted: bool
    reasons: list[ReasonOut]
    amount: str = Field(description="该项在总额封顶前的金额 / the item's share before the pool cap")


class CapOut(BaseModel):
    rule: str = Field(examples=["pool"])
    article: str = Field(examples=["第十九条"])
    limit: str = Field(examples=["3000000.00"])
    binding: bool = Field(description="该上限是否降低了金额 / whether this cap lowered the amount")


class AwardOut(BaseModel):
    amount: str | None = Field(description="null: 金额按轮次确定（第二十一条） / set per round")
    currency: Literal["CNY"] = "CNY"
    uncapped_amount: str | None
    caps_applied: list[CapOut]


class TrancheOut(BaseModel):
    stage: Literal["first_year", "mid_term", "acceptance"]
    share: str = Field(examples=["0.60"])
    amount: str


class CheckResult(BaseModel):
    summary_zh: str | None = Field(
        default=None,
        description="结论：是否符合、金额及其算法，或首要未满足条件及条款 / the verdict in Chinese",
        examples=["符合条件，奖补4,500.00元：3项专利许可转让 × 1,500.00元 = 4,500.00元"],
    )
    summary_en: str | None = Field(
        default=None,
        description="the verdict: eligible or not, the award and how it was reached, or the "
        "first failed conditions with their articles",
        examples=[
            "Eligible for 4,500.00 yuan: 3 patents licensed or transferred × 1,500.00 yuan "
            "= 4,500.00 yuan"
        ],
    )
    program_id: str
    rules_version: str
    eligible: bool
    reasons: list[ReasonOut] = Field(
        description="每项条件，未通过的在前 / every condition, failed first"
    )
    items: list[ItemOut] | None = None
    warnings: list[ReasonOut] | None = None
    priority: list[ReasonOut] | None = Field(
        default=None, description="择优时的优先因素，不影响资格 / priority flags, not conditions"
    )


class CalculateResult(CheckResult):
    award: AwardOut
    disbursement: list[TrancheOut] | None = None
    suggestions: dict[str, Any] | None = None


def _reason(r: Reason) -> dict[str, Any]:
    return {
        "rule": r.rule,
        "article": r.article,
        "passed": r.passed,
        "message_zh": r.message_zh,
        "message_en": r.message_en,
    }


def render(decision: Decision, with_award: bool) -> dict[str, Any]:
    summary_zh, summary_en = verdict(decision, with_award)
    out: dict[str, Any] = {
        "summary_zh": summary_zh,
        "summary_en": summary_en,
        "program_id": decision.program_id,
        "rules_version": decision.rules_version,
        "eligible": decision.eligible,
        "reasons": [_reason(r) for r in decision.reasons],
    }
    if decision.items is not None:
        out["items"] = [
            {
                "ref": i.ref,
                "counted": i.counted,
                "reasons": [_reason(r) for r in i.reasons],
                "amount": fmt(i.amount),
            }
            for i in decision.items
        ]
    if decision.warnings:
        out["warnings"] = [_reason(r) for r in decision.warnings]
    if decision.priority:
        out["priority"] = [_reason(r) for r in decision.priority]
    if not with_award:
        return out
    award = decision.award
    out["award"] = {
        "amount": None if award.amount is None else fmt(award.amount),
        "currency": "CNY",
        "uncapped_amount": None if award.uncapped_amount is None else fmt(award.uncapped_amount),
        "caps_applied": [
            {"rule": c.rule, "article": c.article, "limit": fmt(c.limit), "binding": c.binding}
            for c in award.caps_applied
        ],
    }
    if decision.disbursement is not None:
        out["disbursement"] = [
            {"stage": t.stage, "share": str(t.share), "amount": fmt(t.amount)}
            for t in decision.disbursement
        ]
    if decision.suggestions:
        out["suggestions"] = {k: fmt(v) for k, v in decision.suggestions.items()}
    return out
