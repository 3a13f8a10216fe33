"""The shape of a rule file, validated at start-up (pydantic is the rule files' schema)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    # Only these guide years (editions) have the condition; None: every edition.
    editions: list[int] | None = None
    # Where a guide year's rule is written elsewhere (表1-9 for 2022, 表1-4 for 2023).
    articles: dict[int, str] | None = None
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
    # The claims ledger (第二十五条 实绩实奖): the item fields that name the item across stored
    # applications (a patent, a loan, a contract), and what an item claimed before says.
    claim_key: list[str] | None = None
    claimed_before: Statement | None = None
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


class TrancheSpec(Strict):
    stage: Literal["first_year", "mid_term", "acceptance"]
    share: str = Field(pattern=r"^(0(\.\d+)?|1(\.0+)?)$")


class DisbursementSpec(Strict):
    """Staged payment: a schedule per project duration; the last tranche takes the remainder."""

    article: str = Field(min_length=2)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    duration_field: str
    schedules: dict[int, list[TrancheSpec]]
    first_year_cap: str | None = None  # a money parameter (may be absent in an edition)
    # How award tables name the amount paid at each stage (the audit reads such columns and
    # compares them with the plan's tranches).
    paid_labels: dict[Literal["first_year", "mid_term", "acceptance"], list[str]] = Field(
        default_factory=dict
    )


class SuggestionSpec(Strict):
    """When ``when_failed`` fails: the largest amount ``divide / by`` allows, not above ``cap``."""

    name: str = Field(pattern=r"^[a-z_]+$")
    when_failed: str
    divide: str  # a money field of the form
    by: str  # a ratio parameter
    cap: str | None = None  # a money parameter


class RequirementSpec(Strict):
    """What an amount needs, the other way round (the /requirements endpoint): the minimum of a
    fund for a wanted amount, ``times`` × ``of`` (``of`` is the requested amount or the award)."""

    name: str = Field(pattern=r"^[a-z_]+$")
    article: str = Field(min_length=2)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    of: Literal["requested_amount", "award"]
    times: str | None = None  # a ratio parameter; None: 1
    editions: list[int] | None = None


class EditionSpec(Strict):
    """One guide year (申报指南) of a program whose numbers change every year."""

    id: str = Field(pattern=SLUG)
    guide_year: int
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    article: str = Field(min_length=2)
    effective_from: date
    effective_to: date
    quota: QuotaSpec | None = None
    # Other names the bureau's tables give this guide year's program (the audit's matcher).
    names: list[str] = Field(default_factory=list)


class FamilySpec(Strict):
    """Programs a published table may report as one row: a whole article (第九条（一）–（三）)."""

    id: str = Field(pattern=SLUG)
    article: str = Field(min_length=2)
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    names: list[str] = Field(default_factory=list)
    members: list[str] = Field(min_length=2)


class FamiliesSpec(Strict):
    """``rules/<policy>/_families.yaml``."""

    description: str | None = None
    families: list[FamilySpec]


class TargetSpec(Statement):
    """A per-project target (表1-9 社会效益 / 经济效益: 单个…), in the bureau's notation
    (service.performance.notation), per guide year: an edition without a value has no such
    target. ``entity_types``: only projects of these applicants (表1-9 splits 2023's
    tech-transfer targets between 科研事业单位 and 社会化技术转移机构)."""

    values: dict[int, str]
    entity_types: list[str] | None = None
    growth: bool = False  # a growth rate: reported as a rate, or as this and last year's values


class AcceptanceTimingSpec(Statement):
    """When acceptance materials are due: within N months after the project period ends."""

    within_months: int = Field(ge=1, le=24)


class IncludeSpec(Strict):
    """A file of shared parameters and conditions (``_general.yaml``), written once."""

    description: str | None = None
    include: list[str] = Field(default_factory=list)
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    conditions: list[ConditionSpec] = Field(default_factory=list)
    items: list[ItemGroupSpec] = Field(default_factory=list)
    disbursement: DisbursementSpec | None = None
    # 表注: one application per organisation (USCC) per guide year; checked on stored applications.
    once_per_applicant: Statement | None = None
    targets: list[TargetSpec] = Field(default_factory=list)
    acceptance: AcceptanceTimingSpec | None = None
    # 一次性予以每家: one award per organisation per program, across all rounds.
    once_per_unit: Statement | None = None
    # The same item claimed by another organisation: a warning for reviewers (第二十六条).
    claimed_by_another_applicant: Statement | None = None


class RuleFileSpec(IncludeSpec):
    """One program, or one program per edition (``editions``: its id, title and dates)."""

    id: str | None = Field(default=None, pattern=SLUG)
    policy: str = Field(pattern=SLUG)
    kind: Literal["support", "performance_reward", "matched_grant"]
    title_zh: str | None = None
    title_en: str | None = None
    article: str | None = None
    source: str = Field(min_length=1)
    form: str = Field(min_length=1)
    effective_from: date | None = None
    effective_to: date | None = None
    editions: list[EditionSpec] = Field(default_factory=list)
    description_zh: str | None = None
    description_en: str | None = None
    # Other names the bureau's tables give the program (第五条's, yearly reports'): the audit's
    # matcher reads a program cell by its id, its title or one of these.
    names: list[str] = Field(default_factory=list)
    award: AwardSpec
    quota: QuotaSpec | None = None
    suggestions: list[SuggestionSpec] = Field(default_factory=list)
    requirements: list[RequirementSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_program_or_editions(self) -> RuleFileSpec:
        single = (
            self.id,
            self.title_zh,
            self.title_en,
            self.article,
            self.effective_from,
            self.effective_to,
        )
        if self.editions and any(v is not None for v in single):
            raise ValueError(
                "with 'editions', id, titles, article and dates belong to each edition"
            )
        if not self.editions and any(v is None for v in single):
            raise ValueError(
                "id, title_zh, title_en, article, effective_from and effective_to are required"
            )
        return self
