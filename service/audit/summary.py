"""Program-summary files: one row per program (and round) with the number of units and the
total paid. What the rules allow of such a row: no more units than a hard quota, no more than
the pool (checked on the totals, service.audit.checks.pools), and a total that can be made of
the amounts one unit can be paid under the program's award plan — exactly units × the fixed
amount (第十条), a whole number of per-item amounts (第十九条, 第二十二条), at most units × the cap,
or a sum of units of the round's tier amounts, however many tiers (第二十一条)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import polars as pl

from service import quotas
from service.audit import findings as F
from service.audit.context import AuditContext
from service.audit.evaluate import unknown_message
from service.engine.polars_decide import CompiledProgram
from service.rules.award_plan import sum_of
from service.rules.model import FamilySpec


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
        base = {k: record.get(k) for k in ("src", "row", "program_id")}
        family = ctx.book.families.get(program_id)
        if family is not None:
            found += _family(ctx, family, base, units, total, allowed)
            continue
        cp = ctx.compiled(program_id)
        if cp is None:
            zh, en = unknown_message(ctx, program_id)
            found.append(_finding(base, "unknown_program", None, None, zh, en, total))
            continue
        program = cp.program
        ok, stake, rule = _composable(cp, units, total)
        allowed[-1] = total - (stake or 0) if not ok else total
        if not ok:
            found.append(
                _finding(
                    base, "summary_not_composable", "award", program.article,
                    f"{units}家合计{F.fen_text(total)}元，无法由单项金额构成（{rule}）",
                    f"{units} units totalling {F.fen_text(total)} cannot be made of the per-unit amounts ({rule})",
                    stake,
                )
            )  # fmt: skip
        q = program.quota
        over = quotas.counted(q, units)
        if q is None or over is None:
            continue
        if isinstance(over, quotas.QuotaWarning):
            found.append(
                _finding(
                    base, "soft_quota_exceeded", "quota", q.article,
                    f"支持{units}家，超过计划名额（{q.limit}家左右）：{q.zh}",
                    f"{units} units, above the planned number (about {q.limit}): {q.en}", None,
                )
            )  # fmt: skip
            continue
        unit_max = cp.award.plan.unit_amounts().at_most
        stake = None if unit_max is None else max(0, total - q.limit * unit_max)
        if stake is not None and allowed[-1] is not None:
            allowed[-1] = min(allowed[-1], total - stake)
        found.append(
            _finding(
                base, "quota_exceeded", "quota", q.article,
                f"支持{units}家，超过名额{q.limit}家：{q.zh}",
                f"{units} units, above the quota of {q.limit}: {q.en}", stake,
            )
        )  # fmt: skip
    return found, allowed


def _finding(
    base: dict[str, object], kind: str, rule: str | None, article: str | None,
    zh: str, en: str, stake: int | None,
) -> pl.DataFrame:  # fmt: skip
    row = {**base, "rule": rule, "article": article, "message_zh": zh, "message_en": en,
           "amount_at_stake": stake}  # fmt: skip
    return F.build(pl.DataFrame([row], schema_overrides={"amount_at_stake": pl.Int64}), kind)


@dataclass(frozen=True)
class _Member:
    id: str
    values: tuple[int, ...] | None  # the amounts one unit can be paid, when they are few
    at_most: int | None  # the most one unit can be paid
    limit: int | None  # a hard quota; None: no limit (none, or a soft one)
    soft: int  # the planned number of a soft quota, the hard limit, or 0 for none


def _members(ctx: AuditContext, family: FamilySpec) -> list[_Member]:
    out = []
    for program_id in family.members:
        cp = ctx.compiled(program_id)
        assert cp is not None  # the loader checked the members
        unit, q = cp.award.plan.unit_amounts(), cp.program.quota
        hard = q.limit if q is not None and q.kind == "hard" else None
        out.append(_Member(program_id, unit.values, unit.at_most, hard, q.limit if q else 0))
    return out


def most_paid(members: list[_Member], units: int) -> tuple[int | None, int]:
    """The most ``units`` units can be paid under any mix of the members (the highest per-unit
    amounts first, each program up to its hard quota), and how many units no program can take
    (above every hard quota). None: a member has no per-unit bound."""
    if any(m.at_most is None for m in members):
        return None, 0
    left, most = units, 0
    for m in sorted(members, key=lambda m: -(m.at_most or 0)):
        take = left if m.limit is None else min(left, m.limit)
        most += take * (m.at_most or 0)
        left -= take
    return most, left


def makeable(members: list[_Member], units: int, total: int, budget: int = 100_000) -> bool | None:
    """Whether ``total`` is paid to ``units`` units by some mix of members that each pay one of
    a few amounts (第十条's fixed amounts), within their hard quotas. None: not decided (a
    member pays any amount up to its cap, or too many mixes to try)."""
    if any(m.values is None for m in members):
        return None
    counts = [range(0, min(units, m.limit if m.limit is not None else units) + 1) for m in members]
    tried = 0
    for mix in itertools.product(*counts):
        tried += 1
        if tried > budget:
            return None
        if sum(mix) != units:
            continue
        for each in itertools.product(*(m.values or () for m in members)):
            if sum(n * v for n, v in zip(mix, each, strict=True)) == total:
                return True
    return False


def _family(
    ctx: AuditContext, family: FamilySpec, base: dict[str, object], units: int, total: int,
    allowed: list[int | None],
) -> list[pl.DataFrame]:  # fmt: skip
    """A row for a whole article (知识产权金融创新中心 = 第九条（一）–（三）)."""
    members = _members(ctx, family)
    names = "、".join(m.id for m in members)
    found = []
    most, homeless = most_paid(members, units)
    allowed[-1] = total if most is None else min(total, most)
    if homeless:
        limits = "+".join(str(m.limit) for m in members)
        found.append(
            _finding(
                base, "quota_exceeded", "quota", family.article,
                f"{family.title_zh}支持{units}家，超过各项目名额之和（{limits}）",
                f"{family.title_en}: {units} units, above the sum of its programs' quotas ({limits})",
                None if most is None else max(0, total - most),
            )
        )  # fmt: skip
    elif most is not None and total > most:
        found.append(
            _finding(
                base, "summary_not_composable", "award", family.article,
                f"{family.title_zh}{units}家合计{F.fen_text(total)}元，超过各项目（{names}）"
                f"任意组合所能支付的最多金额{F.fen_text(most)}元",
                f"{family.title_en}: {units} units totalling {F.fen_text(total)}, above the most "
                f"any mix of its programs ({names}) can pay: {F.fen_text(most)}",
                total - most,
            )
        )  # fmt: skip
    elif makeable(members, units, total) is False:
        amounts = "、".join(F.fen_text(v) for m in members for v in (m.values or ()))
        found.append(
            _finding(
                base, "summary_not_composable", "award", family.article,
                f"{family.title_zh}{units}家合计{F.fen_text(total)}元，无法由各项目（{names}）"
                f"的固定金额（{amounts}）在名额内组合而成",
                f"{family.title_en}: {units} units totalling {F.fen_text(total)} cannot be made "
                f"of its programs' fixed amounts ({amounts}) within their quotas",
                None,
            )
        )  # fmt: skip
        allowed[-1] = None
    planned = sum(m.soft for m in members)
    if not homeless and all(m.soft for m in members) and units > planned:
        found.append(
            _finding(
                base, "soft_quota_exceeded", "quota", family.article,
                f"{family.title_zh}支持{units}家，明显超过各项目计划名额之和（约{planned}家）",
                f"{family.title_en}: {units} units, well above its programs' planned numbers "
                f"(about {planned})",
                None,
            )
        )  # fmt: skip
    return found


def check_totals(
    totals: pl.DataFrame, rows: pl.DataFrame, counted: dict[str, str]
) -> list[pl.DataFrame]:
    """合计 rows against the sum of the rows they close: a mismatch is a finding.
    ``counted``: the columns a 合计 row adds up and how a message names them."""
    found = []
    for record in totals.iter_rows(named=True):
        base = {"src": record.get("src"), "row": record.get("row"), "program_id": None}
        for column, label in counted.items():
            stated = record.get(column)
            if stated is None or column not in rows.columns:
                continue
            summed = int(rows[column].sum() or 0)
            if stated == summed:
                continue
            money = column != "units"
            shown = (F.fen_text(stated), F.fen_text(summed)) if money else (stated, summed)
            found.append(
                _finding(
                    base, "total_mismatch", None, None,
                    f"合计行的{label}为{shown[0]}，各行之和为{shown[1]}",
                    f"The total row's {column} is {shown[0]}; the rows add up to {shown[1]}",
                    abs(stated - summed) if money else None,
                )
            )  # fmt: skip
    return found
