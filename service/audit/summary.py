"""Program-summary files: one row per program (and round) with the number of units and the
total paid. What the rules allow of such a row: no more units than a hard quota, no more than
the pool (checked on the totals, service.audit.checks.pools), and a total that can be made of the program's per-unit amounts — exactly units ×
the fixed amount (第十条), a whole number of per-item amounts (第十九条, 第二十二条), at most units ×
the cap, or a sum of the round's tier amounts (第二十一条)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from service.audit import findings as F
from service.audit.context import AuditContext
from service.engine.polars_decide import CompiledProgram
from service.money import to_fen


def _row(frame: dict[str, object], **extra: object) -> dict[str, object]:
    return {**frame, **extra}


def _tier_sums(tiers: dict[int, Decimal], units: int, total: int) -> bool:
    """Whether ``total`` is a sum of ``units`` tier amounts (small: three tiers)."""
    values = sorted({to_fen(v) for v in tiers.values()})
    if units > 2000 or len(values) > 3:
        return True  # too many combinations to decide here: not reported
    values += [values[-1]] * (3 - len(values)) if values else [0, 0, 0]
    a, b, c = values[:3]
    for i in range(units + 1):
        for j in range(units - i + 1):
            if a * i + b * j + c * (units - i - j) == total:
                return True
    return False


def _composable(cp: CompiledProgram, units: int, total: int) -> tuple[bool, int | None, str]:
    """(ok, amount at stake, what the per-unit rule is) for one summary row."""
    award = cp.award
    if units == 0:
        return total == 0, total, "0"
    fixed = award.fixed_fen()
    if fixed is not None:
        return (
            total == units * fixed,
            max(0, total - units * fixed),
            f"{units} × {F.fen_text(fixed)}",
        )
    cap = award.cap_fen()
    if cap is not None and total > units * cap:
        return False, total - units * cap, f"{units} × {F.fen_text(cap)}"
    per_item = award.per_item_fen()
    if per_item is not None and total % per_item != 0:
        return False, total % per_item, f"n × {F.fen_text(per_item)}"
    if (
        award.kind == "tier"
        and award.tiers is not None
        and not _tier_sums(award.tiers, units, total)
    ):
        return False, None, "tiers"
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
            unit_max = cp.award.fixed_fen() or cp.award.cap_fen()
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
