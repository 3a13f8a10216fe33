"""What an audit file's columns mean: header names in English or Chinese, units (元 / 万元).

A column is one of: an audit field (``program_id``, ``awarded_amount``, …), a fact of the
application (a field of a request form, written as its dotted path: ``applicant.entity_type``,
``requested_amount``), or a fact of one item (``patent_number``, ``counterparty.is_sme``;
``item.`` in front is accepted). Facts are typed by the forms, so the audit reads a column
exactly as the service would read the same field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from service.rules.fields import FieldSpec
from service.rules.loader import RuleBook

# Audit fields: name -> kind. ``units`` / ``total_paid`` make a program-summary file.
AUDIT_FIELDS: dict[str, FieldSpec] = {
    "program_id": FieldSpec("str"),
    "award_id": FieldSpec("str"),
    "applicant_uscc": FieldSpec("uscc"),
    "applicant_name": FieldSpec("str"),
    "awarded_amount": FieldSpec("money"),
    "awarded_on": FieldSpec("date"),
    "recognised_on": FieldSpec("date"),
    "round": FieldSpec("str"),
    "application": FieldSpec("json"),
    "units": FieldSpec("int"),
    "total_paid": FieldSpec("money"),
    # What one stage of a staged payment paid (the rule files' paid_labels name them too).
    "first_year_paid": FieldSpec("money"),
    "mid_term_paid": FieldSpec("money"),
    "acceptance_paid": FieldSpec("money"),
}
PAID = ("first_year_paid", "mid_term_paid", "acceptance_paid")

# The audit's own fields. A form field's headers are its labels in the form files (专利号,
# 受让方名称 = the party's 受让方 + its 名称) and their aliases: ``FormBook.headers``.
ALIASES: dict[str, str] = {
    "项目": "program_id", "项目名称": "program_id",
    "program_name": "program_id", "项目编号": "program_id", "项目代码": "program_id", "项目id": "program_id",
    "program": "program_id", "program_code": "program_id",
    "奖补编号": "award_id", "编号": "award_id", "序号": "award_id", "申报编号": "award_id",
    "award_no": "award_id", "award": "award_id", "id": "award_id",
    "统一社会信用代码": "applicant_uscc", "信用代码": "applicant_uscc", "uscc": "applicant_uscc",
    "单位名称": "applicant_name", "申报单位": "applicant_name", "企业名称": "applicant_name",
    "applicant": "applicant_name",
    "奖补金额": "awarded_amount", "资助金额": "awarded_amount", "拨付金额": "awarded_amount",
    "award_amount": "awarded_amount", "amount_awarded": "awarded_amount",
    "下达日期": "awarded_on", "拨付日期": "awarded_on", "资金下达日期": "awarded_on",
    "issued_on": "awarded_on", "paid_on": "awarded_on",
    "认定日期": "recognised_on", "立项日期": "recognised_on", "recognized_on": "recognised_on",
    "批次": "round", "轮次": "round", "round_name": "round",
    "申报内容": "application", "申报材料": "application", "application_json": "application",
    "单位数": "units", "家数": "units", "支持单位数": "units", "项目数": "units",
    "支持数量": "units", "数量": "units", "支持家数": "units", "立项数": "units",
    "number_of_units": "units",
    "总金额": "total_paid", "拨付总额": "total_paid", "奖补总额": "total_paid",
    "合计金额": "total_paid", "total": "total_paid", "total_amount": "total_paid",
    "支出金额": "total_paid", "支持金额": "total_paid", "资助总额": "total_paid",
    "下达金额": "total_paid", "amount_spent": "total_paid",
}  # fmt: skip

# Columns that describe a row and count nothing: kept in the output (``note``), not warned about.
NOTES = frozenset({
    "认定部门", "主管部门", "牵头部门", "实施部门", "责任部门", "归口部门", "备注", "说明", "类别",
    "项目类型", "所属区", "department", "note", "notes", "remark", "remarks", "comment",
})  # fmt: skip

_WAN = re.compile(r"万元|\bwan\b|10k|10,000", re.IGNORECASE)
_UNIT = re.compile(
    r"[（(\[【/]?\s*(万元|元|人民币|cny|yuan|wan|10k yuan|10,000 yuan|10k|个|家|项|件|笔|所)"
    r"\s*[）)\]】]?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Column:
    """One recognised column: its canonical name, the key of its values, level, kind, unit."""

    header: str
    name: str  # audit field name, or the fact's dotted path
    key: str  # the frame column: the audit field name, or the fact key (``a__b``)
    level: str  # audit | app | item | note
    spec: FieldSpec
    wan: bool = False  # amounts in 万元 (10,000 yuan)
    # a choice cell may hold a value's zh label or an alias (黄浦区 -> huangpu): the form files'
    choice_labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


def _normalise(header: str) -> tuple[str, bool]:
    text = header.strip().lstrip("\ufeff")
    wan = bool(_WAN.search(text)) or text.lower().endswith("_wan")
    text = _UNIT.sub("", text).strip()
    text = re.sub(r"[\s\-]+", "_", text.lower())
    return text.removesuffix("_wan").removesuffix("_yuan").strip("_"), wan


@dataclass(frozen=True)
class Vocabulary:
    """What a rule book's headers may name: every fact path of its forms (``path -> (level,
    spec)``) and the form files' headers (labels, aliases, the tranches' paid_labels), written
    as a header is read. Made once per run (``AuditContext.vocabulary``)."""

    fields: dict[str, tuple[str, FieldSpec]]
    headers: dict[str, str]

    @classmethod
    def of(cls, book: RuleBook) -> Vocabulary:
        fields: dict[str, tuple[str, FieldSpec]] = {}
        for program in book.programs.values():
            for path, spec in program.scope.fields.items():
                if not path.startswith("context."):
                    fields.setdefault(path, ("app", spec))
            for scope in program.scope.lists.values():
                for path, spec in scope.fields.items():
                    fields.setdefault(path, ("item", spec))
        headers = dict(book.forms.headers)
        for program in book.programs.values():
            plan = program.disbursement
            for stage, labels in (plan.paid_labels if plan is not None else {}).items():
                headers.update(dict.fromkeys(labels, f"{stage}_paid"))
        written = {_normalise(h)[0]: path for h, path in headers.items()}
        written.update(headers)
        return cls(fields, written)


def recognise(header: str, book: RuleBook, vocabulary: Vocabulary | None = None) -> Column | None:
    """The column a header names, or None when it names nothing the audit knows."""
    words = vocabulary or Vocabulary.of(book)
    text, wan = _normalise(header)
    headers = words.headers
    name = (
        ALIASES.get(text)
        or ALIASES.get(header.strip())
        or headers.get(text)
        or headers.get(header.strip())
        or text
    )
    name = name.removeprefix("item.")
    if text in NOTES or header.strip() in NOTES:
        return Column(header, f"note.{text}", f"note__{text}", "note", FieldSpec("str"))
    if name in AUDIT_FIELDS:
        spec = AUDIT_FIELDS[name]
        return Column(header, name, name, "audit", spec, wan and spec.kind == "money")
    known = words.fields.get(name)
    if known is None:
        return None
    level, spec = known
    money = wan and spec.kind == "money"
    labels = book.forms.choice_labels if spec.choices is not None else {}
    return Column(header, name, name.replace(".", "__"), level, spec, money, labels)
