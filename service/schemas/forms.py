"""Request bodies of the contract (shared/spec/api.md), one form per family of programs.

Portals fill one form per family; every program of a family accepts all of the family's
fields and ignores those its conditions do not use. A field that belongs to no program of
the family is refused (``extra="forbid"``): it is probably a typo.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.types import USCC, CalendarDate, Flag, Money, PatentNumber, Timestamp

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

    name: str = Field(min_length=1, max_length=200, examples=["上海某某大学"])
    uscc: USCC
    entity_type: EntityType
    registered_in_shanghai: Flag
    operating_status: Literal["normal", "abnormal", "revoked", "deregistered"]
    credit_status: Literal["good", "bad"]
    is_sme: Flag = False


class Party(Strict):
    """交易对方（受让方、被许可方、借款人） / the other party of an item."""

    name: str = Field(min_length=1, max_length=200)
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

    loan_id: str = Field(min_length=1, max_length=100)
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
    performance_tier: Literal[1, 2, 3]


# -- 第二十二条 -------------------------------------------------------------------------
class OpenLicenseContract(Strict):
    """一件专利开放许可成交合同 / one open-license contract."""

    contract_id: str = Field(min_length=1, max_length=100)
    patent_number: PatentNumber
    licensee: Party
    concluded_on: CalendarDate
    open_license: Flag


class OpenLicenseApplication(Application):
    """第二十二条 企业（许可人）专利开放许可绩效奖补."""

    contracts: list[OpenLicenseContract] = Field(max_length=5000)


FORMS: dict[str, type[Application]] = {
    "ipa2022-transactions": TransactionsApplication,
    "ipa2022-loans": LoansApplication,
    "ipa2022-custody": CustodyApplication,
    "ipa2022-open-license": OpenLicenseApplication,
}
