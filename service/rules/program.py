"""A program compiled from its rule file: what the engines and the award arithmetic read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from service.rules.award_plan import AwardPlan
from service.rules.expr import Node, Ref, refs_of
from service.rules.fields import Scope
from service.rules.model import (
    AcceptanceTimingSpec,
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
class ProgramTarget:
    """One per-project target of this edition (the notation text; parsed where it is judged)."""

    id: str
    article: str
    zh: str
    en: str
    target: str
    entity_types: tuple[str, ...] | None = None
    growth: bool = False

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "article": self.article,
            "text_zh": self.zh,
            "text_en": self.en,
            "target": self.target,
            "growth": self.growth,
        }
        if self.entity_types is not None:
            out["entity_types"] = list(self.entity_types)
        return out


@dataclass(frozen=True)
class ItemGroup:
    """One list of items and how its items decide, written once here for the service
    (``service.decision``) and the batch audit (``service.engine.polars_decide``):

    - an item counts when it fails none of ``excluding`` (its error conditions) and, with
      ``distinct_by``, no earlier counted item of the application has the same value: the first
      counted wins, a later one fails ``duplicate``;
    - ``rejects_application`` (on_fail: reject_application, 第二十三条): an item failing one of
      ``excluding`` makes the application ineligible, each such condition reported once for the
      application with the items that failed it;
    - ``at_least_one``: the application is eligible only when some item counts.

    An application failing any of these, or one of ``Program.required``, is paid nothing."""

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

    @cached_property
    def excluding(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.severity == "error")

    @cached_property
    def warnings(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.severity == "warning")

    @property
    def rejects_application(self) -> bool:
        return self.on_fail == "reject_application"


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
    award: AwardSpec  # as written (GET /v1/programs/{id}); what it means: ``plan``
    quota: QuotaSpec | None
    plan: AwardPlan
    guide_year: int | None = None
    disbursement: DisbursementSpec | None = None
    suggestions: tuple[SuggestionSpec, ...] = ()
    once_per_applicant: Statement | None = None
    once_per_unit: Statement | None = None
    claimed_by_another_applicant: Statement | None = None
    names: tuple[str, ...] = ()
    requirements: tuple[RequirementSpec, ...] = ()
    targets: tuple[ProgramTarget, ...] = ()
    acceptance: AcceptanceTimingSpec | None = None

    @property
    def facts(self) -> list[Ref]:
        return unique_refs(c.node for c in self.conditions)

    @cached_property
    def required(self) -> tuple[Condition, ...]:
        """The applicant's conditions that must hold (severity error; a warning is reported
        only, a priority is a flag); the items' rules are their groups' (``ItemGroup``)."""
        return tuple(c for c in self.conditions if c.severity == "error")

    @property
    def funded_once_per(self) -> str | None:
        """What a unit is funded once in: its program (一次性予以每家), or every program of its
        policy's guide year (表注4: one application per organisation and year, as
        service.db.applications.once_key stores it). None: no such rule."""
        if self.once_per_unit is not None:
            return self.id
        if self.once_per_applicant is not None:
            year = self.guide_year if self.guide_year is not None else self.id
            return f"{self.policy}:{year}"
        return None

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
