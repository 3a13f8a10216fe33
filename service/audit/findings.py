"""Findings: what an auditor acts on. One row each: where (file, row, program, applicant, item),
what (kind, severity, the rule and its article, a message in Chinese and English) and how much
money is at stake (fen). Texts of conditions come from the rule files' statements; the kinds
below only add what the audit itself compares."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Kind:
    severity: str  # error: a rule was broken; warning: to be looked at; info
    zh: str
    en: str


KINDS: dict[str, Kind] = {
    "unknown_column": Kind("warning", "无法识别的列，已忽略", "Unknown column, ignored"),
    "unreadable_row": Kind("warning", "无法读取的行", "Unreadable row"),
    "unreadable_amount": Kind("warning", "金额无法读取", "Unreadable amount"),
    "unreadable_date": Kind("warning", "日期无法读取", "Unreadable date"),
    "unreadable_value": Kind("warning", "值无法读取", "Unreadable value"),
    "invalid_uscc": Kind("error", "统一社会信用代码无效", "Invalid USCC"),
    "invalid_patent_number": Kind("error", "专利号无效", "Invalid patent number"),
    "missing_value": Kind("warning", "缺少必填值", "Missing value"),
    "invalid_application": Kind("error", "申报内容不符合申报表", "Application does not match its form"),
    "orphan_item": Kind("warning", "明细行找不到对应的奖补记录", "Detail row without its award"),
    "unknown_program": Kind("error", "规则中没有该项目", "Program unknown to the rules"),
    "above_cap": Kind("error", "奖补金额超过上限", "Award above the cap"),
    "above_fixed_amount": Kind("error", "奖补金额超过固定金额", "Award above the fixed amount"),
    "below_fixed_amount": Kind("warning", "奖补金额低于固定金额", "Award below the fixed amount"),
    "above_entitlement": Kind("error", "奖补金额超过按明细重算的应得金额", "Award above the entitlement recomputed from its items"),
    "ineligible_applicant": Kind("error", "申报单位不符合条件", "Applicant ineligible"),
    "outside_window": Kind("error", "申报不在规定期限内", "Application outside its window"),
    "condition_warning": Kind("warning", "提示性条件未满足", "Advisory condition not met"),
    "ineligible_item": Kind("error", "明细不符合条件", "Item ineligible"),
    "item_outside_window": Kind("error", "明细不在规定期限内", "Item outside its window"),
    "claimed_twice": Kind("error", "同一明细重复申报", "The same item claimed twice"),
    "claimed_by_two_applicants": Kind("error", "同一明细由两家单位申报（第二十六条风险）", "The same item claimed by two applicants (第二十六条 red flag)"),
    "funded_twice": Kind("error", "同一单位重复获得资助", "The same applicant funded twice"),
    "pool_exceeded": Kind("error", "奖补总额超过资金上限", "Total above the pool"),
    "quota_exceeded": Kind("error", "支持单位数超过名额", "Units above the quota"),
    "soft_quota_exceeded": Kind("warning", "支持单位数超过计划名额（左右）", "Units above the planned number (about)"),
    "summary_not_composable": Kind("error", "汇总金额无法由单项上限或固定金额构成", "Summary total cannot be made of the per-unit caps or fixed amounts"),
    "tranche_above_plan": Kind("error", "分期拨付超过计划", "A tranche paid above the plan"),
    "total_mismatch": Kind("error", "合计行与各行之和不符", "The total row does not match the rows"),
    "sheet_not_audited": Kind("warning", "工作表未审核（既非奖补记录也非明细）", "Worksheet not audited (neither awards nor details)"),
    "late_disbursement": Kind("warning", "认定后逾期下达资金", "Funds issued late after recognition"),
    "issued_before_recognition": Kind("error", "资金在认定之前下达", "Funds issued before recognition"),
}  # fmt: skip

SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "row": pl.Int64(),
    "program_id": pl.String(),
    "applicant_uscc": pl.String(),
    "applicant_name": pl.String(),
    "award_id": pl.String(),
    "item": pl.String(),
    "kind": pl.String(),
    "severity": pl.String(),
    "rule": pl.String(),
    "article": pl.String(),
    "message_zh": pl.String(),
    "message_en": pl.String(),
    "amount_at_stake": pl.Int64(),  # fen
}
COLUMNS = list(SCHEMA)


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def lit(value: object, name: str) -> pl.Expr:
    return pl.lit(value, dtype=SCHEMA[name]).alias(name)


def build(frame: pl.DataFrame, kind: str, **columns: pl.Expr | str | int | None) -> pl.DataFrame:
    """Findings of one kind from ``frame``: each column an expression or a constant; columns
    not given are taken from ``frame`` when it has them, else left empty."""
    if frame.height == 0:
        return empty()
    exprs: list[pl.Expr] = []
    for name, dtype in SCHEMA.items():
        if name in columns:
            value = columns[name]
            expr = value if isinstance(value, pl.Expr) else pl.lit(value, dtype=dtype)
        elif name == "kind":
            expr = pl.lit(kind)
        elif name == "severity":
            expr = pl.lit(KINDS[kind].severity)
        elif name in frame.columns:
            expr = pl.col(name)
        elif name == "source" and "src" in frame.columns:
            expr = pl.col("src")
        else:
            expr = pl.lit(None, dtype=dtype)
        if dtype == pl.String():
            expr = _owned(expr.cast(dtype))
        exprs.append(expr.cast(dtype).alias(name))
    return frame.select(exprs)


def _owned(text: pl.Expr) -> pl.Expr:
    """Text in buffers of its own. A column taken as it is keeps the whole column it was
    filtered from alive (polars' strings are views): a few findings would hold every partition's
    names and ids until the end of the run, and memory would grow with the file."""
    return pl.concat_str(text, pl.lit(""))


def owned(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column of ``frame`` in buffers of its own (see ``_owned``): for rows kept
    after their batch, which must not hold the whole batch's text alive."""
    return frame.with_columns(
        _owned(pl.col(c)).alias(c) for c, t in frame.schema.items() if t == pl.String()
    )


def yuan(fen: pl.Expr) -> pl.Expr:
    """Fen (never negative here) as text in yuan with two decimals, for messages."""
    cents = (fen % 100).cast(pl.String).str.zfill(2)
    return pl.concat_str((fen // 100).cast(pl.String), pl.lit("."), cents)


def fen_text(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"
