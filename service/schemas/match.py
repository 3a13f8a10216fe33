"""Request and response of ``POST /v1/match`` (shared/spec/api.md, "Additions")."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.match import MaxAward, ProgramMatch
from service.money import fmt
from service.rules.forms import FormBook
from service.schemas.types import CalendarDate


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applicant: dict[str, Any] = Field(
        default_factory=dict,
        description="已知的申报单位信息（任一字段可缺） / what is known of the applicant (any field may be missing)",
    )
    facts: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "已知的其他申报字段，可跨项目族（requested_amount、transactions …） / other known "
            "fields of any program's form"
        ),
    )
    on: CalendarDate | None = Field(
        default=None,
        description="查询日期，默认今天（上海时间） / the date; today in Shanghai if left out",
    )
    include_closed: bool = Field(
        default=False, description="也列出当日不在实施期的项目 / also list programs not in force"
    )


class NeedOut(BaseModel):
    field: str = Field(examples=["applicant.entity_type"])
    text_zh: str
    text_en: str


class FailedOut(BaseModel):
    rule: str
    article: str
    message_zh: str
    message_en: str


class MaxAwardOut(BaseModel):
    kind: Literal["cap", "fixed", "per_item", "rate", "tiers"]
    amount: str | None = Field(
        description="最高可得金额；null：按轮次确定 / the most payable; null: set per round"
    )
    article: str
    per_item: str | None = None
    rate: str | None = None
    tiers: dict[str, str] | None = None


class WindowOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str


class ProgramMatchOut(BaseModel):
    program_id: str
    title_zh: str
    title_en: str
    article: str
    status: Literal["eligible", "ineligible", "needs"]
    in_force: bool
    needs: list[NeedOut]
    failed: list[FailedOut]
    max_award: MaxAwardOut
    window: WindowOut | None


class MatchResult(BaseModel):
    on: date
    rules_version: str
    programs: list[ProgramMatchOut]


def _max_award(m: MaxAward) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": m.kind,
        "amount": None if m.amount is None else fmt(m.amount),
        "article": m.article,
    }
    if m.per_item is not None:
        out["per_item"] = fmt(m.per_item)
    if m.rate is not None:
        out["rate"] = str(m.rate)
    if m.tiers is not None:
        out["tiers"] = {str(k): fmt(v) for k, v in m.tiers.items()}
    return out


def _need(forms: FormBook, m: ProgramMatch, path: str) -> dict[str, str]:
    plain = ".".join(part.split("[", 1)[0] for part in path.split("."))
    label = forms.label(m.program.form, plain)
    zh, en = (label.zh, label.en) if label is not None else (path, path)
    return {"field": path, "text_zh": zh, "text_en": en}


def render_match(
    matches: list[ProgramMatch], on: date, rules_version: str, forms: FormBook
) -> dict[str, Any]:
    programs = []
    for m in matches:
        p = m.program
        assert m.max_award is not None
        programs.append(
            {
                "program_id": p.id,
                "title_zh": p.title_zh,
                "title_en": p.title_en,
                "article": p.article,
                "status": m.status,
                "in_force": m.in_force,
                "needs": [_need(forms, m, f) for f in m.needs],
                "failed": [
                    {
                        "rule": f.rule,
                        "article": f.article,
                        "message_zh": f.message_zh,
                        "message_en": f.message_en,
                    }
                    for f in m.failed
                ],
                "max_award": _max_award(m.max_award),
                "window": None
                if m.window is None
                else {"from": m.window[0].isoformat(), "to": m.window[1].isoformat()},
            }
        )
    return {"on": on.isoformat(), "rules_version": rules_version, "programs": programs}
