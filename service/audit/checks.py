"""Checks across awards: the same item claimed twice or by two applicants, the same applicant
funded twice where once is the limit, program totals against the pool, units against quotas."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from service import quotas as Q
from service.audit import findings as F
from service.audit.context import AuditContext
from service.audit.evaluate import AWARDED, ITEM, KEY
from service.engine.polars_decide import ENTITLED, REC, SEQ, SHARE
from service.money import to_fen
from service.rules.model import Statement
from service.rules.program import Program

UNIT_KEYS = ["program_id", "round", "applicant_uscc"]


def duplicates(ctx: AuditContext, keys: pl.DataFrame) -> pl.DataFrame:
    """Items whose ``distinct_by`` value appears in more than one award of a program: the first
    claim (file order) stands; each later one is a finding. Another applicant claiming the same
    patent or loan is a 第二十六条 red flag (编造虚假交易)."""
    keys = keys.filter(pl.col(KEY).is_duplicated())  # a cheap pass first: repeats are rare
    keys = keys.filter(pl.struct("program_id", KEY).is_duplicated())
    if keys.height == 0:
        return F.empty()
    keys = keys.sort(["src", "row"])
    first = keys.group_by(["program_id", KEY], maintain_order=True).agg(
        pl.col(REC).first().alias("_rec"),
        pl.col("row").first().alias("_row"),
        pl.col("src").first().alias("_src"),
        pl.col("applicant_uscc").first().alias("_uscc"),
        pl.col("applicant_name").first().alias("_name"),
        pl.col(REC).n_unique().alias("_n"),
    )
    first = first.filter(pl.col("_n") > 1)
    if first.height == 0:
        return F.empty()
    later = keys.join(first, on=["program_id", KEY]).filter(pl.col(REC) != pl.col("_rec"))
    later = later.with_columns(_item_label(ctx, later).alias(ITEM))
    other = (pl.col("applicant_uscc") != pl.col("_uscc")).fill_null(False)
    where_zh = pl.concat_str(
        pl.col(ITEM),
        pl.lit(" 已在"),
        pl.col("_src"),
        pl.lit("第"),
        pl.col("_row").cast(pl.String),
        pl.lit("行由"),
        pl.col("_name").fill_null(pl.col("_uscc").fill_null("?")),
        pl.lit("申报"),
    )
    where_en = pl.concat_str(
        pl.col(ITEM),
        pl.lit(" was already claimed in "),
        pl.col("_src"),
        pl.lit(" row "),
        pl.col("_row").cast(pl.String),
        pl.lit(" by "),
        pl.col("_name").fill_null(pl.col("_uscc").fill_null("?")),
    )
    out = []
    two = later.filter(other)
    if two.height:
        out.append(_claims(ctx, two, "claimed_by_two_applicants", where_zh, where_en))
    same = later.filter(~other)
    if same.height:
        out.append(_claims(ctx, same, "claimed_twice", where_zh, where_en))
    return pl.concat(out)


def _item_label(ctx: AuditContext, keys: pl.DataFrame) -> pl.Expr:
    """``patents[2] ZL…``: the item's list and place in its award, and its key (as
    ``award_findings.item_label`` labels the items of one award)."""
    lists: dict[str, str] = {}
    for program_id in keys["program_id"].unique().drop_nulls().to_list():
        cp = ctx.compiled(str(program_id))
        group = cp.main_group if cp is not None else None
        lists[str(program_id)] = group.group.list_name if group is not None else ""
    name = pl.col("program_id").replace_strict(lists, default="", return_dtype=pl.String)
    return pl.concat_str(
        name, pl.lit("["), pl.col(SEQ).cast(pl.String), pl.lit("] "), pl.col(KEY).fill_null("")
    )


def _claims(
    ctx: AuditContext, rows: pl.DataFrame, kind: str, where_zh: pl.Expr, where_en: pl.Expr
) -> pl.DataFrame:
    parts = []
    for (program_id,), part in rows.group_by("program_id"):
        program = ctx.book.get(str(program_id))
        if program is None:
            continue
        group = next((g for g in program.item_groups if g.distinct_by), None)
        statement = group.duplicate if group else None
        fraud = next((c for c in program.conditions if c.id == "not-disqualified"), None)
        if kind == "claimed_by_two_applicants" and fraud is not None:
            rule, article, zh, en = fraud.id, fraud.article, fraud.zh, fraud.en
        elif statement is not None:
            rule, article, zh, en = statement.id, statement.article, statement.zh, statement.en
        else:
            rule, article, zh, en = kind, program.article, "", ""
        parts.append(
            F.build(
                part,
                kind,
                rule=rule,
                article=article,
                message_zh=pl.concat_str(where_zh, pl.lit("；" + zh)),
                message_en=pl.concat_str(where_en, pl.lit("; " + en)),
                amount_at_stake=pl.col(SHARE),
            )
        )
    return pl.concat(parts) if parts else F.empty()


def _once(program: Program) -> Statement | None:
    """What funds a unit once: 一次性予以每家 (第六条–第十八条), or one application per
    organisation and guide year (表注4)."""
    return program.once_per_unit or program.once_per_applicant


def funded_twice(ctx: AuditContext, units: pl.DataFrame) -> pl.DataFrame:
    """A second award to the same applicant in a program that funds a unit once (一次性予以每家)
    or allows one per organisation and guide year (表注4), whatever the round: the later
    awards (by date, then file order)."""
    # One application per organisation and guide year counts every program of that year
    # (表注4); a one-off award counts its own program's.
    groups = {p.id: g for p in ctx.book.programs.values() if (g := p.funded_once_per)}
    repeat = units.filter(
        pl.col("program_id").is_in(list(groups)) & pl.col("applicant_uscc").is_not_null()
    )
    if repeat.height == 0:
        return F.empty()
    repeat = repeat.with_columns(
        pl.col("program_id").replace_strict(groups, return_dtype=pl.String).alias("_once")
    ).sort(["awarded_on", "src", "row"], nulls_last=True)
    repeat = repeat.filter(pl.int_range(pl.len()).over(["_once", "applicant_uscc"]) > 0)
    found = []
    for (program_id,), part in repeat.group_by("program_id"):
        program = ctx.book.get(str(program_id))
        s = _once(program) if program is not None else None
        assert s is not None
        found.append(
            F.build(
                part,
                "funded_twice",
                rule=s.id,
                article=s.article,
                message_zh=pl.lit("同一单位在本项目中再次获得资助：" + s.zh),
                message_en=pl.lit("The same applicant is funded again in this program: " + s.en),
                amount_at_stake=pl.col(AWARDED),
            )
        )
    return pl.concat(found) if found else F.empty()


def quota_units(ctx: AuditContext, awards: pl.DataFrame) -> pl.DataFrame:
    """The awards of programs with a quota (all that quotas need of them)."""
    quota = [p.id for p in ctx.book.programs.values() if p.quota is not None]
    keep = ["program_id", "round", "applicant_uscc", "applicant_name", "district", "src", "row",
            "awarded_on", "submitted_at", AWARDED]  # fmt: skip
    return awards.filter(
        pl.col("program_id").is_in(quota) & pl.col("applicant_uscc").is_not_null()
    ).select(keep)


def units_of(awards: pl.DataFrame) -> pl.DataFrame:
    """One row per unit (applicant) per program and round, first award first."""
    if awards.height == 0:
        return _unit_schema()
    awards = awards.sort(["awarded_on", "src", "row"], nulls_last=True)
    return awards.group_by(UNIT_KEYS, maintain_order=True).agg(
        pl.col("src").first(),
        pl.col("row").first(),
        pl.col("applicant_name").first(),
        pl.col("district").drop_nulls().first(),
        pl.col("awarded_on").first(),
        pl.col("submitted_at").min(),  # the unit's first application received in the round
        pl.col(AWARDED).sum().alias(AWARDED),
        pl.len().alias("awards"),
    )


def _unit_schema() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "program_id": pl.String(),
            "round": pl.String(),
            "applicant_uscc": pl.String(),
            "src": pl.String(),
            "row": pl.Int64(),
            "applicant_name": pl.String(),
            "district": pl.String(),
            "awarded_on": pl.Int64(),
            "submitted_at": pl.Int64(),
            AWARDED: pl.Int64(),
            "awards": pl.UInt32(),
        }
    )


def quotas(ctx: AuditContext, units: pl.DataFrame) -> pl.DataFrame:
    """More units than a quota allows in one round: the units placed after the first N (in
    ``service.quotas``' ordering: when the unit's application was received, where the file says,
    then the date of its first award in the round, then the file and row of that award) are
    findings; a soft quota (N家左右) is one warning per round."""
    limits = {p.id: p.quota for p in ctx.book.programs.values() if p.quota is not None}
    placed = Q.places(units, limits, tie=["src", "row"])
    excess = placed.filter(pl.col(Q.PLACE) > pl.col(Q.LIMIT))
    if excess.height == 0:
        return F.empty()
    found = []
    for (program_id,), part in excess.group_by("program_id"):
        q = limits[str(program_id)]
        if q.kind == "soft":
            first = part.group_by(["round"]).agg(pl.all().first(), pl.len().alias("_n"))
            found.append(
                F.build(
                    first.with_columns(pl.lit(None, dtype=pl.Int64).alias("row")),
                    "soft_quota_exceeded",
                    rule="quota",
                    article=q.article,
                    applicant_uscc=pl.lit(None, pl.String),
                    applicant_name=pl.lit(None, pl.String),
                    message_zh=pl.concat_str(
                        pl.lit(f"支持单位数超过计划的{q.limit}家左右（多"),
                        pl.col("_n").cast(pl.String),
                        pl.lit(f"家）：{q.zh}"),
                    ),
                    message_en=pl.concat_str(
                        pl.lit(f"More units than the planned about {q.limit} ("),
                        pl.col("_n").cast(pl.String),
                        pl.lit(f" more): {q.en}"),
                    ),
                )
            )
            continue
        found.append(
            F.build(
                part,
                "quota_exceeded",
                rule="quota",
                article=q.article,
                message_zh=pl.concat_str(
                    pl.lit("本轮第"),
                    pl.col(Q.PLACE).cast(pl.String),
                    pl.lit(f"家获资助单位，超过名额{q.limit}家：{q.zh}"),
                ),
                message_en=pl.concat_str(
                    pl.lit("Unit no. "),
                    pl.col(Q.PLACE).cast(pl.String),
                    pl.lit(f" funded in the round, above the quota of {q.limit}: {q.en}"),
                ),
                amount_at_stake=pl.col(AWARDED),
            )
        )
    return pl.concat(found) if found else F.empty()


def pool_fen(ctx: AuditContext, program_id: str, name: str = "pool") -> int | None:
    program = ctx.book.get(program_id)
    if program is None or name not in program.parameters:
        return None
    value = program.param(name).value
    return to_fen(value) if isinstance(value, Decimal) else None


def pools(ctx: AuditContext, totals: pl.DataFrame) -> pl.DataFrame:
    """``totals``: program_id, awarded_amount (sum). A program's total above its pool
    (本项目奖补总额不超过…); a policy's total above its fund (第三条 专项资金共…)."""
    found = []
    funds: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for program_id, total in totals.select("program_id", AWARDED).iter_rows():
        program = ctx.book.get(program_id)
        if program is None or total is None:
            continue
        pool = pool_fen(ctx, program_id)
        if pool is not None and total > pool:
            p = program.param("pool")
            found.append(_pool(program_id, p.name, p.article, p.zh, p.en, total, pool))
        fund = pool_fen(ctx, program_id, "fund_total")
        if fund is not None:
            funds.setdefault((program.policy, fund), []).append((program_id, total))
    for (policy, fund), members in funds.items():
        total = sum(t for _, t in members)
        if total > fund:
            program = ctx.book.get(members[0][0])
            assert program is not None
            p = program.param("fund_total")
            found.append(_pool(policy, p.name, p.article, p.zh, p.en, total, fund))
    return pl.concat(found) if found else F.empty()


def _pool(
    program_id: str, rule: str, article: str, zh: str, en: str, total: int, pool: int
) -> pl.DataFrame:
    row = {
        "program_id": program_id,
        "rule": rule,
        "article": article,
        "message_zh": f"奖补合计{F.fen_text(total)}元，超过{F.fen_text(pool)}元：{zh}",
        "message_en": f"Awards total {F.fen_text(total)} yuan, above {F.fen_text(pool)}: {en}",
        "amount_at_stake": total - pool,
    }
    return F.build(pl.DataFrame([row]), "pool_exceeded")


def program_totals(units: pl.DataFrame) -> pl.DataFrame:
    """Per program: awards, total awarded and total allowed (recomputed, or capped). Sums, so
    that the totals of partitions add up; units (distinct applicants) are counted apart."""
    allowed = pl.coalesce(
        pl.col(ENTITLED),
        pl.min_horizontal(pl.col(AWARDED), pl.col("cap")),
        pl.col(AWARDED),
    )
    return units.group_by("program_id").agg(
        pl.len().alias("awards"),
        pl.col(AWARDED).sum().alias(AWARDED),
        allowed.sum().alias("allowed"),
    )


def unit_pairs(units: pl.DataFrame) -> pl.DataFrame:
    """The distinct (program, applicant) pairs of some awards; an unknown applicant is one."""
    return units.select("program_id", "applicant_uscc").unique()


def unit_counts(pairs: pl.DataFrame) -> pl.DataFrame:
    """Units per program from pairs that hold every award of their applicants."""
    return (
        pairs.unique()
        .group_by("program_id")
        .agg(pl.col("applicant_uscc").n_unique().cast(pl.Int64).alias("units"))
    )


def once_units(ctx: AuditContext, units: pl.DataFrame) -> pl.DataFrame:
    """The awards of programs that fund an applicant once (all ``funded_twice`` reads)."""
    once = [p.id for p in ctx.book.programs.values() if _once(p) is not None]
    return units.filter(pl.col("program_id").is_in(once) & pl.col("applicant_uscc").is_not_null())
