"""Responses of the program catalogue: what a reviewer reads to see the rules themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.performance.notation import parse_target
from service.rules.program import Program


class ProgramSummary(BaseModel):
    id: str = Field(examples=["ipa2022-art19"])
    policy: str = Field(examples=["ipa2022"])
    title_zh: str
    title_en: str
    article: str = Field(examples=["第十九条"])
    kind: str = Field(examples=["performance_reward"])
    effective_from: str = Field(examples=["2022-11-09"])
    effective_to: str = Field(examples=["2023-12-31"])


class ConditionOut(BaseModel):
    id: str
    article: str
    text_zh: str
    text_en: str
    severity: str = Field(description="error | warning | priority")
    expression: str = Field(
        description="规则文件中的条件表达式 / the condition as written in the rule file"
    )
    applies_to: str = Field(description="application，或条目列表名 / application, or the item list")


class ProgramTargetOut(BaseModel):
    id: str = Field(examples=["results-listed"])
    article: str = Field(examples=["表1-9"])
    text_zh: str
    text_en: str
    target: str = Field(description="目标值，按原文写法 / as written", examples=["≥50项"])
    op: str | None = Field(examples=[">="])
    value: str | None = Field(examples=["50"])
    unit: str | None = Field(examples=["项"])
    growth: bool = Field(description="增长率指标 / a growth-rate indicator")
    entity_types: list[str] | None = Field(
        default=None, description="仅适用于这些申报单位类型 / only for these applicants"
    )


class ProgramDetail(ProgramSummary):
    description_zh: str | None = None
    description_en: str | None = None
    source: str
    rule_file: str
    form: str
    parameters: list[dict[str, Any]]
    conditions: list[ConditionOut]
    award: dict[str, Any]
    quota: dict[str, Any] | None = None
    guide_year: int | None = Field(default=None, description="申报指南年度 / guide year (stcsm)")
    disbursement: dict[str, Any] | None = None
    once_per_applicant: dict[str, Any] | None = None
    targets: list[ProgramTargetOut] = Field(
        default_factory=list,
        description="每个项目应达到的绩效目标（表1-9） / what each project must reach (表1-9)",
    )
    acceptance: dict[str, Any] | None = Field(
        default=None, description="验收材料提交时限（C32） / when acceptance materials are due"
    )


def program_detail(program: Program) -> dict[str, Any]:
    conditions = [{**c.public(), "applies_to": "application"} for c in program.conditions]
    for group in program.item_groups:
        conditions += [{**c.public(), "applies_to": group.list_name} for c in group.conditions]
        for stmt in (group.duplicate, group.at_least_one):
            if stmt is not None:
                conditions.append(
                    {
                        "id": stmt.id,
                        "article": stmt.article,
                        "text_zh": stmt.zh,
                        "text_en": stmt.en,
                        "severity": "error",
                        "expression": f"distinct {group.distinct_by}"
                        if stmt is group.duplicate
                        else "count >= 1",
                        "applies_to": group.list_name,
                    }
                )
    return {
        **program.summary(),
        "description_zh": program.description_zh,
        "description_en": program.description_en,
        "source": program.source,
        "rule_file": program.file,
        "form": program.form_name,
        "parameters": [p.public() for p in program.parameters.values()],
        "conditions": conditions,
        "award": program.award.model_dump(exclude_none=True),
        "quota": program.quota.model_dump(exclude_none=True) if program.quota else None,
        "guide_year": program.guide_year,
        "disbursement": program.disbursement.model_dump() if program.disbursement else None,
        "once_per_applicant": program.once_per_applicant.model_dump()
        if program.once_per_applicant
        else None,
        "targets": [_target(t) for t in program.targets],
        "acceptance": program.acceptance.model_dump() if program.acceptance else None,
    }


def _target(target: Any) -> dict[str, Any]:
    parsed = parse_target(target.target).public()
    return {
        **target.public(),
        "op": parsed.get("op"),
        "value": parsed.get("value"),
        "unit": parsed.get("unit"),
    }
