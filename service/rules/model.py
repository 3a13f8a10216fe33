"""The shape of a rule file, validated at start-up (pydantic is the rule files' schema)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.rules.params import ParameterSpec

SLUG = r"^[a-z0-9][a-z0-9-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Statement(Strict):
    """Something the service reports: an id, its article, and what it says in zh and en."""

    id: str = Field(pattern=SLUG)
    article: str = Field(min_length=2)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class ConditionSpec(Statement):
    when: str = Field(min_length=1)
    # error: failing makes the application (or the item) ineligible; warning: reported only;
    # priority: an expert's preference (优先), reported as a flag, never a condition.
    severity: Literal["error", "warning", "priority"] = "error"


class ItemGroupSpec(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    list_name: str = Field(alias="list", min_length=1)  # the request field holding the items
    # exclude_item: a failing item is left out, the rest still count (第十九条–第二十二条);
    # reject_application: one failing item makes the application ineligible (第二十三条).
    on_fail: Literal["exclude_item", "reject_application"] = "exclude_item"
    distinct_by: str | None = None
    duplicate: Statement | None = None
    at_least_one: Statement | None = None
    conditions: list[ConditionSpec] = Field(default_factory=list)


class AwardSpec(Strict):
    """How the award is computed; every number is a parameter name, never a literal."""

    kind: Literal["per_item", "rate_of_items", "requested", "fixed", "tier"]
    items: str | None = None  # per_item, rate_of_items: the item list
    amount: str | None = None  # per_item: amount per counted item; fixed: the amount
    rate: str | None = None  # rate_of_items
    base: str | None = None  # rate_of_items: the item field the rate applies to
    requested: str | None = None  # requested: the request field with the requested amount
    tiers: str | None = None  # tier: the money_by_tier parameter
    tier_field: str | None = None  # tier: the request field with the tier
    caps: list[str] = Field(default_factory=list)  # money parameters, applied in order


class QuotaSpec(Strict):
    """How many units one round may approve. hard: 不超过N; soft: N家左右; per_district: 各区首家."""

    kind: Literal["hard", "soft", "per_district"]
    limit: int = Field(ge=1)
    article: str = Field(min_length=2)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    district_field: str | None = None


class IncludeSpec(Strict):
    """A file of shared parameters and conditions (``_general.yaml``), written once."""

    description: str | None = None
    include: list[str] = Field(default_factory=list)
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    conditions: list[ConditionSpec] = Field(default_factory=list)
    items: list[ItemGroupSpec] = Field(default_factory=list)


class RuleFileSpec(IncludeSpec):
    id: str = Field(pattern=SLUG)
    policy: str = Field(pattern=SLUG)
    kind: Literal["support", "performance_reward", "matched_grant"]
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    article: str = Field(min_length=2)
    source: str = Field(min_length=1)
    form: str = Field(min_length=1)
    effective_from: date
    effective_to: date
    description_zh: str | None = None
    description_en: str | None = None
    award: AwardSpec
    quota: QuotaSpec | None = None
