"""A program compiled from its rule file: what the engines and the award arithmetic read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from service.rules.expr import Node, Ref, refs_of
from service.rules.fields import Scope
from service.rules.model import (
    AwardSpec,
    DisbursementSpec,
    QuotaSpec,
    RequirementSpec,
    Statement,
    SuggestionSpec,
)
from service.rules.params import Parameter
from service.schemas.forms import Application


@dataclass(frozen=True)
class Condition:
    id: str
    article: str
    zh: str
    en: str
    severity: str
    text: str
    node: Node
    source: str  # file:line, for people reading a trace

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "article": self.article,
            "text_zh": self.zh,
            "text_en": self.en,
            "severity": self.severity,
            "expression": self.text,
        }


@dataclass(frozen=True)
class ItemGroup:
    list_name: str
    scope: Scope
    on_fail: str
    distinct_by: str | None
    duplicate: Statement | None
    at_least_one: Statement | None
    conditions: tuple[Condition, ...]
    claim_key: tuple[str, ...] | None = None  # the claims ledger (service.ledger)
    claimed_before: Statement | None = None

    @property
    def facts(self) -> list[Ref]:
        return unique_refs(c.node for c in self.conditions)


@dataclass(frozen=True)
class Program:
    id: str
    policy: str
    kind: str
    title_zh: str
    title_en: str
    article: str
    source: str
    file: str
    effective_from: date
    effective_to: date
    description_zh: str | None
    description_en: str | None
    form: type[Application]
    form_name: str
    scope: Scope
    parameters: dict[str, Parameter]
    conditions: tuple[Condition, ...]
    item_groups: tuple[ItemGroup, ...]
    award: AwardSpec
    quota: QuotaSpec | None
    guide_year: int | None = None
    disbursement: DisbursementSpec | None = None
    suggestions: tuple[SuggestionSpec, ...] = ()
    once_per_applicant: Statement | None = None
    once_per_unit: Statement | None = None
    claimed_by_another_applicant: Statement | None = None
    requirements: tuple[RequirementSpec, ...] = ()

    @property
    def facts(self) -> list[Ref]:
        return unique_refs(c.node for c in self.conditions)

    def param(self, name: str) -> Parameter:
        return self.parameters[name]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "policy": self.policy,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "article": self.article,
            "kind": self.kind,
            "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat(),
        }


def unique_refs(nodes: Any) -> list[Ref]:
    seen: dict[tuple[str, str], Ref] = {}
    for node in nodes:
        for ref in refs_of(node):
            seen.setdefault((ref.scope, ref.key), ref)
    return list(seen.values())
