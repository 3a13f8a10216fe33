"""Findings about single awards, from a program's batch decision: failed conditions (of the
applicant and of each item), repeats inside an award, and amounts against caps, the fixed
amount, the entitlement recomputed from the items, and the dates of recognition and payment."""

from __future__ import annotations

import polars as pl

from service.audit import findings as F
from service.audit.context import AuditContext
from service.engine.polars_decide import (
    DUP,
    ELIGIBLE,
    ENTITLED,
    REC,
    SEQ,
    SHARE,
    CompiledGroup,
    CompiledProgram,
    fail_col,
    known_col,
    tranche_col,
)
from service.engine.polars_eval import CompiledCondition
from service.money import to_fen
from service.rules.award_plan import Fixed

AWARDED = "awarded_amount"


def _kind_of(cc: CompiledCondition, item: bool) -> str | None:
    severity = cc.condition.severity
    if severity == "priority":
        return None
    if severity == "warning":
        return "condition_warning"
    if item:
        return "item_outside_window" if cc.window else "ineligible_item"
    return "outside_window" if cc.window else "ineligible_applicant"


def condition_findings(
    decided: pl.DataFrame, conditions: tuple[CompiledCondition, ...]
) -> list[pl.DataFrame]:
    out = []
    for cc in conditions:
        kind = _kind_of(cc, item=False)
        col = fail_col(cc.condition.id)
        if kind is None or col not in decided.columns:
            continue
        failed = decided.filter(pl.col(col))
        if failed.height:
            c = cc.condition
            stake = pl.col(AWARDED) if kind != "condition_warning" else pl.lit(None, pl.Int64)
            out.append(
                F.build(
                    failed,
                    kind,
                    rule=c.id,
                    article=c.article,
                    message_zh=c.zh,
                    message_en=c.en,
                    amount_at_stake=stake,
                )
            )
    return out


def item_label(cg: CompiledGroup) -> pl.Expr:
    ref = pl.concat_str(pl.lit(cg.group.list_name + "["), pl.col(SEQ).cast(pl.String), pl.lit("]"))
    key = cg.distinct_key
    if key is None:
        return ref
    return pl.concat_str(ref, pl.lit(" "), pl.col(key).fill_null(""))


def item_findings(
    cp: CompiledProgram, cg: CompiledGroup, decided: pl.DataFrame, judged: pl.DataFrame
) -> list[pl.DataFrame]:
    parents = decided.select(
        REC, "program_id", "award_id", "applicant_uscc", "applicant_name", "overpaid", AWARDED
    )
    # Only the items some finding is about get their award's columns (most items are fine).
    flags = [
        c
        for c in (*(fail_col(cc.condition.id) for cc in cg.conditions), DUP)
        if c in judged.columns
    ]
    if flags:
        judged = judged.filter(pl.any_horizontal(*(pl.col(c) for c in flags)))
    judged = judged.drop(
        [
            c
            for c in ("program_id", "award_id", "applicant_uscc", "applicant_name")
            if c in judged.columns
        ]
    ).join(parents, on=REC, how="left")
    reject = cg.group.on_fail == "reject_application"
    severity = (
        pl.when(pl.lit(reject) | pl.col("overpaid"))
        .then(pl.lit("error"))
        .otherwise(pl.lit("warning"))
    )
    stake = pl.col(AWARDED) if reject else pl.col(SHARE)
    out = []
    for cc in cg.conditions:
        kind = _kind_of(cc, item=True)
        col = fail_col(cc.condition.id)
        if kind is None or col not in judged.columns:
            continue
        failed = judged.filter(pl.col(col))
        if failed.height:
            c = cc.condition
            label = item_label(cg)
            out.append(
                F.build(
                    failed,
                    kind,
                    item=label,
                    rule=c.id,
                    article=c.article,
                    severity=severity if kind != "condition_warning" else pl.lit("warning"),
                    message_zh=pl.concat_str(label, pl.lit("：" + c.zh)),
                    message_en=pl.concat_str(label, pl.lit(": " + c.en)),
                    amount_at_stake=stake
                    if kind != "condition_warning"
                    else pl.lit(None, pl.Int64),
                )
            )
    dup_statement = cg.group.duplicate
    if dup_statement is not None and DUP in judged.columns:
        dups = judged.filter(pl.col(DUP))
        if dups.height:
            label = item_label(cg)
            out.append(
                F.build(
                    dups,
                    "claimed_twice",
                    item=label,
                    rule=dup_statement.id,
                    article=dup_statement.article,
                    severity=severity,
                    message_zh=pl.concat_str(label, pl.lit("：" + dup_statement.zh)),
                    message_en=pl.concat_str(label, pl.lit(": " + dup_statement.en)),
                    amount_at_stake=pl.col(SHARE),
                )
            )
    return out


def group_findings(cg: CompiledGroup, decided: pl.DataFrame) -> list[pl.DataFrame]:
    statement = cg.group.at_least_one
    name = cg.group.list_name
    if statement is None or f"counted:{name}" not in decided.columns:
        return []
    rows = decided.filter(pl.col(known_col(name)) & (pl.col(f"counted:{name}") == 0))
    if rows.height == 0:
        return []
    return [
        F.build(
            rows,
            "ineligible_applicant",
            rule=statement.id,
            article=statement.article,
            message_zh=statement.zh,
            message_en=statement.en,
            amount_at_stake=pl.col(AWARDED),
        )
    ]


def amount_findings(ctx: AuditContext, cp: CompiledProgram, d: pl.DataFrame) -> list[pl.DataFrame]:
    out: list[pl.DataFrame] = []
    award, program = cp.award, cp.program
    awarded = pl.col(AWARDED)
    step = award.plan.base
    fixed = to_fen(step.amount) if isinstance(step, Fixed) else None
    if isinstance(step, Fixed) and fixed is not None:
        name = step.param
        param = program.param(name)
        above = d.filter(awarded > fixed)
        if above.height:
            out.append(
                F.build(
                    above,
                    "above_fixed_amount",
                    rule=name,
                    article=param.article,
                    message_zh=pl.concat_str(
                        pl.lit("奖补金额"),
                        F.yuan(awarded),
                        pl.lit(f"元，超过固定金额{F.fen_text(fixed)}元：{param.zh}"),
                    ),
                    message_en=pl.concat_str(
                        pl.lit("Awarded "),
                        F.yuan(awarded),
                        pl.lit(f" yuan, above the fixed {F.fen_text(fixed)}: {param.en}"),
                    ),
                    amount_at_stake=awarded - fixed,
                )
            )
        below = d.filter((awarded < fixed) & pl.col(ELIGIBLE))
        if below.height:
            out.append(
                F.build(
                    below,
                    "below_fixed_amount",
                    rule=name,
                    article=param.article,
                    message_zh=pl.concat_str(
                        pl.lit("奖补金额"),
                        F.yuan(awarded),
                        pl.lit(f"元，低于固定金额{F.fen_text(fixed)}元：{param.zh}"),
                    ),
                    message_en=pl.concat_str(
                        pl.lit("Awarded "),
                        F.yuan(awarded),
                        pl.lit(f" yuan, below the fixed {F.fen_text(fixed)}: {param.en}"),
                    ),
                )
            )
    caps = award.caps_fen()
    if caps and fixed is None:
        name, cap = min(caps, key=lambda c: c[1])
        param = program.param(name)
        above = d.filter(awarded > cap)
        if above.height:
            out.append(
                F.build(
                    above,
                    "above_cap",
                    rule=name,
                    article=param.article,
                    message_zh=pl.concat_str(
                        pl.lit("奖补金额"),
                        F.yuan(awarded),
                        pl.lit(f"元，超过上限{F.fen_text(cap)}元：{param.zh}"),
                    ),
                    message_en=pl.concat_str(
                        pl.lit("Awarded "),
                        F.yuan(awarded),
                        pl.lit(f" yuan, above the cap of {F.fen_text(cap)}: {param.en}"),
                    ),
                    amount_at_stake=awarded - cap,
                )
            )
    over = d.filter(pl.col(ELIGIBLE) & (awarded > pl.col(ENTITLED)).fill_null(False))
    if over.height and fixed is None:
        out.append(
            F.build(
                over,
                "above_entitlement",
                rule="award",
                article=program.article,
                message_zh=pl.concat_str(
                    pl.lit("按规则重算应得"),
                    F.yuan(pl.col(ENTITLED)),
                    pl.lit("元，实际奖补"),
                    F.yuan(awarded),
                    pl.lit("元"),
                ),
                message_en=pl.concat_str(
                    pl.lit("Recomputed under the rules: "),
                    F.yuan(pl.col(ENTITLED)),
                    pl.lit(" yuan; awarded "),
                    F.yuan(awarded),
                ),
                amount_at_stake=awarded - pl.col(ENTITLED),
            )
        )
    out += _timing(ctx, d)
    return out


def tranche_findings(cp: CompiledProgram, d: pl.DataFrame) -> list[pl.DataFrame]:
    """A stage paid above the plan's tranche of the award (政策兑现方式: 60% in the year of
    approval, …; the first-year cap), where the file says what each stage paid."""
    plan = cp.program.disbursement
    if plan is None:
        return []
    out = []
    for stage in ("first_year", "mid_term", "acceptance"):
        paid, due = pl.col(f"{stage}_paid"), pl.col(tranche_col(stage))
        if f"{stage}_paid" not in d.columns:
            continue
        if tranche_col(stage) in d.columns:
            above = d.filter((paid > due.fill_null(0)).fill_null(False))
        else:  # no such stage in any of these awards' schedules
            above = d.filter(paid > 0).with_columns(
                pl.lit(0, dtype=pl.Int64).alias(tranche_col(stage))
            )
        if above.height == 0:
            continue
        out.append(
            F.build(
                above,
                "tranche_above_plan",
                rule=f"tranche-{stage.replace('_', '-')}",
                article=plan.article,
                message_zh=pl.concat_str(
                    pl.lit(f"{STAGE_ZH[stage]}拨付"), F.yuan(paid),
                    pl.lit("元，超过计划拨付"), F.yuan(due.fill_null(0)), pl.lit("元：" + plan.zh),
                ),
                message_en=pl.concat_str(
                    pl.lit(f"The {stage.replace('_', '-')} tranche paid "), F.yuan(paid),
                    pl.lit(" yuan, above the plan's "), F.yuan(due.fill_null(0)), pl.lit(": " + plan.en),
                ),
                amount_at_stake=paid - due.fill_null(0),
            )
        )  # fmt: skip
    return out


STAGE_ZH = {"first_year": "首期（立项当年）", "mid_term": "中期", "acceptance": "验收后"}


def _day(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.String).str.to_date("%Y%m%d", strict=False)


def _timing(ctx: AuditContext, d: pl.DataFrame) -> list[pl.DataFrame]:
    if "awarded_on" not in d.columns or "recognised_on" not in d.columns:
        return []
    limit = ctx.options.issue_within_days
    days = (_day("awarded_on") - _day("recognised_on")).dt.total_days()
    d = d.with_columns(days.alias("_days"))
    out = []
    late = d.filter(pl.col("_days") > limit)
    if late.height:
        out.append(
            F.build(
                late,
                "late_disbursement",
                rule="issue-within-days",
                article="时效指标：项目资金拨付及时性",
                message_zh=pl.concat_str(
                    pl.lit("认定后"),
                    pl.col("_days").cast(pl.String),
                    pl.lit(f"天才下达资金（应在{limit}天内）"),
                ),
                message_en=pl.concat_str(
                    pl.lit("Funds issued "),
                    pl.col("_days").cast(pl.String),
                    pl.lit(f" days after recognition (at most {limit})"),
                ),
                amount_at_stake=pl.col(AWARDED),
            )
        )
    early = d.filter(pl.col("_days") < 0)
    if early.height:
        out.append(
            F.build(
                early,
                "issued_before_recognition",
                rule="issue-after-recognition",
                article="时效指标：项目资金拨付及时性",
                message_zh=pl.lit("资金下达日期早于认定日期"),
                message_en=pl.lit("Funds were issued before the award was recognised"),
                amount_at_stake=pl.col(AWARDED),
            )
        )
    return out
