"""Program-summary files: one row per program (and round) with the number of units and the
total paid. What the rules allow of such a row: no more units than a hard quota, no more than
the pool (checked on the totals, service.audit.checks.pools), and a total that can be made of
the amounts one unit can be paid under the program's award plan — exactly units × the fixed
amount (第十条), a whole number of per-item amounts (第十九条, 第二十二条), at most units × the cap,
or a sum of units of the round's tier amounts, however many tiers (第二十一条)."""

from __future__ import annotations

import polars as pl

from service.audit import findings as F
from service.audit.context import AuditContext
from service.engine.polars_decide import CompiledProgram
from service.rules.award_plan import sum_of


def _row(frame: dict[str, object], **extra: object) -> dict[str, object]:
    return {**frame, **extra}


def _composable(cp: CompiledProgram, units: int, total: int) -> tuple[bool, int | None, str]:
    """(ok, amount at stake, what the per-unit rule is) for one summary row, from what one
    unit can be paid under the program's award plan (``AwardPlan.unit_amounts``)."""
    unit = cp.award.plan.unit_amounts()
    if units == 0:
        return total == 0, total, "0"
    if unit.values is not None and len(unit.values) == 1:
        (each,) = unit.values
        return (
            total == units * each,
            max(0, total - units * each),
            f"{units} × {F.fen_text(each)}",
        )
    if unit.at_most is not None and total > units * unit.at_most:
        return False, total - units * unit.at_most, f"{units} × {F.fen_text(unit.at_most)}"
    if total % unit.multiple_of != 0:
        return False, total % unit.multiple_of, f"n × {F.fen_text(unit.multiple_of)}"
    if unit.values is not None and sum_of(unit.values, units, total) is False:
        amounts = "、".join(F.fen_text(v) for v in unit.values)
        return False, None, f"{units} × ({amounts})"
    return True, None, ""


def audit_summary(
    ctx: AuditContext, rows: pl.DataFrame
) -> tuple[list[pl.DataFrame], list[int | None]]:
    """Findings, and per row the total the rules allow (the paid total less what is at stake)."""
    found: list[pl.DataFrame] = []
    allowed: list[int | None] = []
    for record in rows.iter_rows(named=True):
        program_id, units, total = record["program_id"], record["units"], record["total_paid"]
        allowed.append(None)
        if program_id is None or units is None or total is None:
            continue
        cp = ctx.compiled(program_id)
        base = {k: record.get(k) for k in ("src", "row", "program_id")}
        if cp is None:
            found.append(
                F.build(
                    pl.DataFrame(
                        [
                            _row(
                                base,
                                message_zh=f"规则文件中没有项目{program_id}",
                                message_en=f"The rule files have no program {program_id}",
                                amount_at_stake=total,
                            )
                        ]
                    ),
                    "unknown_program",
                )
            )
            continue
        program = cp.program
        ok, stake, rule = _composable(cp, units, total)
        allowed[-1] = total - (stake or 0) if not ok else total
        if not ok:
            article = program.article
            found.append(
                F.build(
                    pl.DataFrame(
                        [
                            _row(
                                base,
                                rule="award",
                                article=article,
                                message_zh=f"{units}家合计{F.fen_text(total)}元，无法由单项金额构成（{rule}）",
                                message_en=f"{units} units totalling {F.fen_text(total)} cannot be made of the per-unit amounts ({rule})",
                                amount_at_stake=stake,
                            )
                        ]
                    ),
                    "summary_not_composable",
                )
            )
        q = program.quota
        if q is not None and q.kind != "soft" and q.kind != "per_district" and units > q.limit:
            unit_max = cp.award.plan.unit_amounts().at_most
            stake = None if unit_max is None else max(0, total - q.limit * unit_max)
            if stake is not None and allowed[-1] is not None:
                allowed[-1] = min(allowed[-1], total - stake)
            found.append(
                F.build(
                    pl.DataFrame(
                        [
                            _row(
                                base,
                                rule="quota",
                                article=q.article,
                                message_zh=f"支持{units}家，超过名额{q.limit}家：{q.zh}",
                                message_en=f"{units} units, above the quota of {q.limit}: {q.en}",
                                amount_at_stake=stake,
                            )
                        ]
                    ),
                    "quota_exceeded",
                )
            )
    return found, allowed
