"""Request bodies of the contract (shared/spec/api.md), one form per family of programs.

Portals fill one form per family; every program of a family accepts all of the family's
fields and ignores those its conditions do not use. A field that belongs to no program of
the family is refused (``extra="forbid"``): it is probably a typo.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.schemas.types import (
    USCC,
    CalendarDate,
    Flag,
    ItemId,
    Money,
    NotBool,
    PatentNumber,
    PlainText,
    Timestamp,
)

EntityType = Literal[
    "university",
    "research_institute",
    "hospital",
    "enterprise",
    "commercial_bank",
    "insurer",
    "guarantor",
    "industry_association",
    "service_agency",
    "other",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Applicant(Strict):
    """申报单位 / the applying organisation."""

    name: PlainText = Field(min_length=1, max_length=200, examples=["上海某某大学"])
    uscc: USCC
    entity_type: EntityType
    registered_in_shanghai: Flag
    operating_status: Literal["normal", "abnormal", "revoked", "deregistered"]
    credit_status: Literal["good", "bad"]
    is_sme: Flag = False


class Party(Strict):
    """交易对方（受让方、被许可方、借款人） / the other party of an item."""

    name: PlainText = Field(min_length=1, max_length=200)
    uscc: USCC
    registered_in_shanghai: Flag
    is_sme: Flag


class Application(Strict):
    applicant: Applicant
    submitted_at: Timestamp


# -- 第十九条 ---------------------------------------------------------------------------
class Transaction(Strict):
    """一件专利的许可或转让 / one patent licensed or transferred."""

    patent_number: PatentNumber
    kind: Literal["license", "transfer"]
    counterparty: Party
    contract_date: CalendarDate
    cnipa_recorded: Flag


class TransactionsApplication(Application):
    """第十九条 高校院所专利许可转让绩效奖补."""

    transactions: list[Transaction] = Field(max_length=5000)


# -- 第二十条 ---------------------------------------------------------------------------
class Loan(Strict):
    """一笔专利商标质押贷款 / one patent or trademark pledge loan."""

    loan_id: ItemId
    borrower: Party
    collateral: Literal["patent", "trademark", "patent_and_trademark"]
    pledge_registered: Flag
    disbursed_on: CalendarDate
    disbursed_amount: Money


class LoansApplication(Application):
    """第二十条 商业银行专利商标质押绩效奖补."""

    loans: list[Loan] = Field(max_length=5000)


# -- 第二十一条 -------------------------------------------------------------------------
class CustodyApplication(Application):
    """第二十一条 服务机构专利许可转让托管绩效奖补."""

    custody_registered: Flag
    performance_tier: Annotated[Literal[1, 2, 3], NotBool]


# -- 第二十二条 -------------------------------------------------------------------------
class OpenLicenseContract(Strict):
    """一件专利开放许可成交合同 / one open-license contract."""

    contract_id: ItemId
    patent_number: PatentNumber
    licensee: Party
    concluded_on: CalendarDate
    open_license: Flag


class OpenLicenseApplication(Application):
    """第二十二条 企业（许可人）专利开放许可绩效奖补."""

    contracts: list[OpenLicenseContract] = Field(max_length=5000)


# -- 第六条–第十八条 support programs (one form for the family) ------------------------------
BudgetCategory = Literal[
    "office_equipment",  # 购置办公设备 (第二十三条: forbidden)
    "rent",  # 场地租金 (第二十三条: forbidden)
    "internal_salaries",  # 内部人员工资、津补贴 (第二十三条: forbidden)
    "services",
    "events",
    "training",
    "research",
    "other",
]

SHANGHAI_DISTRICTS = {
    "huangpu": "黄浦区",
    "xuhui": "徐汇区",
    "changning": "长宁区",
    "jingan": "静安区",
    "putuo": "普陀区",
    "hongkou": "虹口区",
    "yangpu": "杨浦区",
    "minhang": "闵行区",
    "baoshan": "宝山区",
    "jiading": "嘉定区",
    "pudong": "浦东新区",
    "jinshan": "金山区",
    "songjiang": "松江区",
    "qingpu": "青浦区",
    "fengxian": "奉贤区",
    "chongming": "崇明区",
}


def _district(value: object) -> object:
    """Accept a district by pinyin id or Chinese name; store the pinyin id."""
    if isinstance(value, str):
        key = value.strip()
        for pinyin, chinese in SHANGHAI_DISTRICTS.items():
            if key in (pinyin, chinese, chinese.removesuffix("区").removesuffix("新")):
                return pinyin
    return value


DistrictId = Literal[
    "huangpu", "xuhui", "changning", "jingan", "putuo", "hongkou", "yangpu", "minhang",
    "baoshan", "jiading", "pudong", "jinshan", "songjiang", "qingpu", "fengxian", "chongming",
]  # fmt: skip
District = Annotated[DistrictId, BeforeValidator(_district)]


class BudgetItem(Strict):
    """一项预算支出 / one budget line."""

    category: BudgetCategory
    amount: Money
    description: str | None = Field(default=None, max_length=500)


class SupportApplication(Application):
    """第六条–第十八条 项目支持：申报表（一个表单覆盖全部支持类项目）."""

    requested_amount: Money
    implementation_plan: Flag | None = Field(default=None, description="已制定实施方案")
    performance_targets: Flag | None = Field(default=None, description="已落实绩效目标")
    budget_items: list[BudgetItem] = Field(default_factory=list, max_length=500)
    has_ip_transfer_results: Flag | None = None  # 第七条
    is_leading_industry_association: Flag | None = None  # 第八条
    has_prior_business: Flag | None = None  # 第九条 2021、2022年相关业务
    standard_approved: Flag | None = None  # 第十条 地方标准获批立项
    is_key_industry_association: Flag | None = None  # 第十二条（一）
    district: District | None = None  # 第十二条（二）
    is_first_in_district: Flag | None = None
    recommended_by_district: Flag | None = None
    sme_category: (
        Literal["specialized_new", "rehab_aids", "time_honored", "civil_military"] | None
    ) = None
    national_ip_advantage_or_demo_unit: Flag | None = None  # 第十五条 exclusions
    sh_patent_pilot_or_demo_unit: Flag | None = None
    in_navigation_or_cultivation_project: Flag | None = None
    has_ip_practice_education: Flag | None = None  # 第十六条
    trainees_planned: Annotated[int, NotBool] | None = Field(default=None, ge=0, le=1_000_000)
    is_ip_school: Flag | None = None  # 第十八条
    has_analysis_capability: Flag | None = None
    has_prior_results: Flag | None = None


# -- 科委 matched grants (stcsm2022-*, stcsm2023-*): one form for the family ------------------
class TechManager(Strict):
    """推荐的技术经理人 / a recommended technology manager."""

    name: PlainText = Field(min_length=1, max_length=100)
    role: Literal["lead", "core"]
    full_time_years: Annotated[int, NotBool] = Field(
        ge=0, le=60, description="专职从事技术转移工作年限（整年）"
    )
    is_project_leader: Flag = False


class MatchedGrantApplication(Application):
    """科技成果转移转化服务体系建设项目（表1-3、表1-4、表1-9）."""

    requested_amount: Money = Field(description="申请市级支持金额 / municipal support requested")
    self_funds: Money = Field(description="自筹经费 / the applicant's own funds")
    duration_years: Annotated[Literal[1, 2, 3], NotBool] = Field(description="项目执行期（年）")
    district_committed_funds: Money | None = Field(default=None, description="区已投入或承诺投入")
    recommended_by_district: Flag | None = None
    prior_year_main_revenue: Money | None = Field(default=None, description="上年度主营业务收入")
    has_research_base: Flag | None = None
    has_stable_funding: Flag | None = None
    has_transfer_team: Flag | None = None
    has_rd_fund: Flag | None = None
    has_pilot_base: Flag | None = None
    has_open_innovation_unit: Flag | None = None
    has_operating_model: Flag | None = None
    annual_report_submitted: Flag | None = None
    tech_managers: list[TechManager] = Field(default_factory=list, max_length=20)
    manager_budget: Money | None = Field(default=None, description="技术经理人引进与培养经费")


FORMS: dict[str, type[Application]] = {
    "ipa2022-transactions": TransactionsApplication,
    "ipa2022-loans": LoansApplication,
    "ipa2022-custody": CustodyApplication,
    "ipa2022-open-license": OpenLicenseApplication,
    "ipa2022-support": SupportApplication,
    "stcsm-matched-grant": MatchedGrantApplication,
}
