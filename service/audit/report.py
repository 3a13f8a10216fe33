"""The audit's outputs: findings as CSV and .xlsx, a JSON report, a one-page HTML summary.

Amounts leave as yuan text with two decimals (``"1500.00"``), computed from integer fen; the CSV
has a byte-order mark so that Excel opens its Chinese correctly. The HTML page needs nothing
but a browser: inline CSS and one inline SVG chart per program (awarded against allowed).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from service.audit import findings as F
from service.audit import xlsx
from service.audit.run import AuditResult
from service.money import from_fen
from service.rules.loader import RuleBook

HEADERS_ZH = {
    "source": "文件", "row": "行号", "program_id": "项目", "applicant_uscc": "统一社会信用代码",
    "applicant_name": "单位名称", "award_id": "奖补编号", "item": "明细", "kind": "类型",
    "severity": "严重程度", "rule": "规则", "article": "条款", "message_zh": "说明",
    "message_en": "Message", "amount_at_stake": "涉及金额（元）",
}  # fmt: skip
log = logging.getLogger("service.audit")


def _money(fen: int | None) -> str | None:
    return None if fen is None else str(from_fen(fen))


def at_stake_total(findings: pl.DataFrame, programs: pl.DataFrame | None = None) -> int:
    """Money at stake, never counted twice. An award's findings are readings of one payment:
    it counts with its largest (an award above its cap and ineligible is its amount, not the
    amount and the excess); its items' findings are the award's (by its id). A program's
    findings about its total (the pool) add to its awards', and a program counts at most what
    it paid; the whole at most the total paid."""
    if findings.height == 0:
        return 0
    stake = pl.col("amount_at_stake").fill_null(0)
    award = pl.coalesce(
        pl.col("award_id"),
        pl.concat_str(pl.lit("#"), pl.col("source"), pl.lit(":"), pl.col("row").cast(pl.String)),
    )
    rows = findings.filter(pl.col("row").is_not_null() & (pl.col("row") > 1))
    per_award = rows.group_by("program_id", award.alias("_award")).agg(stake.max().alias("s"))
    whole = findings.filter(pl.col("row").is_null() | (pl.col("row") <= 1)).select(
        "program_id", stake.alias("s")
    )
    per_program = (
        pl.concat([per_award.drop("_award"), whole]).group_by("program_id").agg(pl.col("s").sum())
    )
    if programs is None or programs.height == 0:
        return int(per_program["s"].sum() or 0)
    paid = programs.select("program_id", pl.col("awarded_amount").alias("paid"))
    capped = per_program.join(paid, on="program_id", how="left", nulls_equal=True).select(
        pl.when(pl.col("paid").is_not_null())
        .then(pl.min_horizontal("s", "paid"))
        .otherwise(pl.col("s"))
    )
    total_paid = int(programs["awarded_amount"].sum() or 0)
    return min(int(capped.to_series().sum() or 0), total_paid)


def programs_json(book: RuleBook, result: AuditResult) -> list[dict[str, Any]]:
    counts = dict(
        result.findings.group_by("program_id").len().iter_rows() if result.findings.height else []
    )
    out = []
    for row in result.programs.iter_rows(named=True):
        program = book.get(row["program_id"]) or book.families.get(row["program_id"])
        out.append(
            {
                "program_id": row["program_id"],
                "known": program is not None,
                "title_zh": program.title_zh if program else None,
                "title_en": program.title_en if program else None,
                "article": program.article if program else None,
                "awards": row["awards"],
                "units": row["units"],
                "awarded": _money(row["awarded_amount"]),
                "allowed": _money(row["allowed"]),
                "pool": _money(row["pool"]),
                "findings": counts.get(row["program_id"], 0),
                "notes": row.get("notes") or None,  # a published table's 认定部门, 备注 …
            }
        )
    return out


def summary_json(book: RuleBook, result: AuditResult) -> dict[str, Any]:
    """Counts, money at stake and per-program totals: made once per result (each output has
    them); a copy is returned."""
    if result.summary is None:
        result.summary = _summary(book, result)
    return dict(result.summary)


def _summary(book: RuleBook, result: AuditResult) -> dict[str, Any]:
    f = result.findings
    by = (
        (lambda col: dict(sorted(f.group_by(col).len().iter_rows())))
        if f.height
        else (lambda col: {})
    )
    return {
        **result.meta,
        "clean": f.height == 0,
        "finding_count": f.height,
        "by_severity": by("severity"),
        "by_kind": by("kind"),
        "amount_at_stake": _money(at_stake_total(f, result.programs)),
        "programs": programs_json(book, result),
    }


def finding_dicts(findings: pl.DataFrame) -> Iterator[dict[str, Any]]:
    for chunk in findings.iter_slices(50_000):
        for row in chunk.iter_rows(named=True):
            row["amount_at_stake"] = _money(row["amount_at_stake"])
            yield row


def report_json(book: RuleBook, result: AuditResult) -> dict[str, Any]:
    return {**summary_json(book, result), "findings": list(finding_dicts(result.findings))}


def write_json(book: RuleBook, result: AuditResult, path: Path) -> None:
    """The JSON report; the findings are serialised by polars, one object per line."""
    head = summary_json(book, result)
    findings = _export(result.findings)
    with path.open("wb") as out:
        out.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2].encode())
        out.write(b',\n "findings": [\n')
        for start in range(0, findings.height, 20_000):
            objects = findings.slice(start, 20_000).select(pl.struct(pl.all()).struct.json_encode())
            if start:
                out.write(b",\n")
            # Joined and encoded by polars, outside the GIL (the outputs are written side by side).
            out.write(objects.to_series().str.join(",\n").cast(pl.Binary).item())
        out.write(b"\n ]\n}\n")


def _export(findings: pl.DataFrame) -> pl.DataFrame:
    amount = pl.col("amount_at_stake")
    text = pl.when(amount.is_null()).then(None).otherwise(F.yuan(amount))
    return findings.with_columns(text.alias("amount_at_stake"))


def write_csv(result: AuditResult, path: Path) -> None:
    _export(result.findings).write_csv(path, include_bom=True)


FINDING_COLUMNS = [
    xlsx.Column("source", "文件", "source"),
    xlsx.Column("row", "行号", "row", "int", 8),
    xlsx.Column("program_id", "项目", "program_id"),
    xlsx.Column("applicant_uscc", "统一社会信用代码", "applicant_uscc", width=22),
    xlsx.Column("applicant_name", "单位名称", "applicant_name"),
    xlsx.Column("award_id", "奖补编号", "award_id"),
    xlsx.Column("item", "明细", "item"),
    xlsx.Column("kind_zh", "类型", "kind (zh)"),
    xlsx.Column("kind", "类型代码", "kind"),
    xlsx.Column("severity_zh", "严重程度", "severity", width=10),
    xlsx.Column("rule", "规则", "rule"),
    xlsx.Column("article", "条款", "article"),
    xlsx.Column("message_zh", "说明", "message_zh", width=60),
    xlsx.Column("message_en", "英文说明", "message_en", width=60),
    xlsx.Column("amount_at_stake", "涉及金额（元）", "amount at stake (yuan)", "money", 16),
]
PROGRAM_COLUMNS = [
    xlsx.Column("program_id", "项目", "program_id"),
    xlsx.Column("title_zh", "项目名称", "title"),
    xlsx.Column("article", "条款", "article"),
    xlsx.Column("awards", "笔数", "awards", "int"),
    xlsx.Column("units", "单位数", "units", "int"),
    xlsx.Column("awarded_amount", "已发金额（元）", "awarded (yuan)", "money", 16),
    xlsx.Column("allowed", "应得金额（元）", "allowed (yuan)", "money", 16),
    xlsx.Column("pool", "资金上限（元）", "pool (yuan)", "money", 16),
    xlsx.Column("findings", "问题数", "findings", "int"),
    xlsx.Column("notes", "备注（表中说明列）", "notes (the table's describing columns)"),
]


def kind_zh(kind: pl.Expr) -> pl.Expr:
    return kind.replace_strict({k: v.zh for k, v in F.KINDS.items()}, default=kind)


def write_xlsx(book: RuleBook, result: AuditResult, path: Path) -> None:
    findings = result.findings.with_columns(
        kind_zh(pl.col("kind")).alias("kind_zh"),
        pl.col("severity")
        .replace_strict(xlsx.SEVERITY_ZH, default=pl.col("severity"))
        .alias("severity_zh"),
    )
    listed = {p["program_id"]: p for p in summary_json(book, result)["programs"]}
    programs = result.programs.select(
        "program_id", "awards", "units", "awarded_amount", "allowed", "pool"
    ).with_columns(
        pl.col("program_id")
        .replace_strict({k: p["title_zh"] for k, p in listed.items()}, default=None)
        .alias("title_zh"),
        pl.col("program_id")
        .replace_strict({k: p["article"] for k, p in listed.items()}, default=None)
        .alias("article"),
        pl.col("program_id")
        .replace_strict({k: p["findings"] for k, p in listed.items()}, default=0)
        .cast(pl.Int64)
        .alias("findings"),
        pl.col("program_id")
        .replace_strict(
            {k: p["notes"] for k, p in listed.items()}, default=None, return_dtype=pl.String
        )
        .alias("notes"),
    )
    written = xlsx.write_workbook(
        path,
        [
            ("发现 findings", FINDING_COLUMNS, findings),
            ("项目 programs", PROGRAM_COLUMNS, programs),
        ],
    )
    if written < findings.height:  # Excel's row limit: the CSV has them all
        log.warning(
            "findings.xlsx holds %d of %d findings; all are in the CSV", written, findings.height
        )


# -- HTML ------------------------------------------------------------------------------------
def _bar_chart(p: dict[str, Any]) -> str:
    awarded = Decimal(p["awarded"] or 0)
    allowed = Decimal(p["allowed"] or 0)
    pool = Decimal(p["pool"]) if p["pool"] else None
    # Scaled to the larger bar; the pool is drawn when it is on that scale, else only named.
    top = max(awarded, allowed, Decimal(1))
    on_scale = pool is not None and pool <= 2 * top
    if pool is not None and on_scale:
        top = max(top, pool)
    width = 420

    def w(v: Decimal) -> int:
        return int(v / top * width)

    over = awarded > allowed
    bars = [
        f'<rect x="90" y="6" width="{w(awarded)}" height="16" fill="{"#c0392b" if over else "#2e86c1"}"/>',
        f'<text x="4" y="19">已发 awarded</text><text x="{96 + w(awarded)}" y="19">{awarded:,.2f}</text>',
        f'<rect x="90" y="30" width="{w(allowed)}" height="16" fill="#27ae60"/>',
        f'<text x="4" y="43">应得 allowed</text><text x="{96 + w(allowed)}" y="43">{allowed:,.2f}</text>',
    ]
    if pool is not None and on_scale:
        x = 90 + w(pool)
        bars.append(
            f'<line x1="{x}" y1="2" x2="{x}" y2="50" stroke="#555" stroke-dasharray="4 2"/>'
        )
        bars.append(f'<text x="{x + 3}" y="60" fill="#555">上限 pool {pool:,.2f}</text>')
    elif pool is not None:
        bars.append(
            f'<text x="90" y="60" fill="#555">上限 pool {pool:,.2f}（不在比例内 / off scale）</text>'
        )
    title = html.escape(f"{p['program_id']} awarded {awarded:,.2f}, allowed {allowed:,.2f}")
    return (
        f'<svg role="img" aria-label="{title}" width="640" height="64" '
        f'font-size="11" font-family="sans-serif">{"".join(bars)}</svg>'
    )


CSS = """body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:24px}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
.num{text-align:right}.error{color:#c0392b}.warning{color:#b9770e}.clean{color:#27ae60}
.prog{margin:6px 0 14px}"""


def render_html(book: RuleBook, result: AuditResult, limit: int = 60) -> str:
    s = summary_json(book, result)
    e = html.escape
    status = (
        '<p class="clean">未发现问题 / No findings.</p>'
        if s["clean"]
        else f'<p class="error">发现 {s["finding_count"]} 项问题，涉及金额 {e(str(s["amount_at_stake"]))} 元 / '
        f"{s['finding_count']} findings, {e(str(s['amount_at_stake']))} yuan at stake.</p>"
    )
    kinds = "".join(
        f"<tr><td>{e(k)}</td><td>{e(F.KINDS[k].zh) if k in F.KINDS else ''}</td>"
        f'<td class="num">{n}</td></tr>'
        for k, n in s["by_kind"].items()
    )
    charts = "".join(
        f'<div class="prog"><b>{e(p["program_id"])}</b> {e(p["title_zh"] or "规则中没有该项目")} '
        f"（{p['awards']} 笔，{p['units']} 家，{p['findings']} 项问题）<br>{_bar_chart(p)}</div>"
        for p in s["programs"]
    )
    rows = "".join(
        f'<tr><td>{e(str(r["source"] or ""))}</td><td class="num">{r["row"] or ""}</td>'
        f"<td>{e(r['program_id'] or '')}</td><td>{e(r['applicant_name'] or r['applicant_uscc'] or '')}</td>"
        f'<td class="{e(r["severity"])}">{e(F.KINDS[r["kind"]].zh if r["kind"] in F.KINDS else r["kind"])}'
        f"<br><small>{e(r['kind'])}</small></td><td>{e(r['article'] or '')}</td>"
        f"<td>{e(r['message_zh'] or '')}<br><small>{e(r['message_en'] or '')}</small></td>"
        f'<td class="num">{e(r["amount_at_stake"] or "")}</td></tr>'
        for r in finding_dicts(result.findings.head(limit))
    )
    more = (
        f"<p>仅列出前 {limit} 项，完整清单见 CSV / XLSX。Only the first {limit} are listed; "
        "see the CSV or XLSX for all.</p>"
        if result.findings.height > limit
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>审计结果 / Audit summary</title>
<style>{CSS}</style></head><body>
<h1>奖补审计结果 / Audit of past awards</h1>
<p>输入 / input: {e(", ".join(s["inputs"]))} · 读取 {s["rows_read"]} 行 · 规则版本 rules {e(s["rules_version"])}
· {e(s["level"])}</p>
{status}
<h2>各项目：已发与应得 / Per program: awarded against allowed</h2>{charts}
<h2>问题类型 / Findings by kind</h2><table><tr><th>kind</th><th>类型</th><th>n</th></tr>{kinds}</table>
<h2>问题清单 / Findings</h2>{more}
<table><tr><th>文件</th><th>行</th><th>项目</th><th>单位</th><th>类型</th><th>条款</th><th>说明</th><th>金额</th></tr>{rows}</table>
</body></html>
"""


def write_all(book: RuleBook, result: AuditResult, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": folder / "findings.csv",
        "xlsx": folder / "findings.xlsx",
        "json": folder / "report.json",
        "html": folder / "summary.html",
    }
    # Four files, written side by side (polars writes outside the GIL; the .xlsx is mostly
    # Python): a failure in one is raised here.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="audit-out") as pool:
        html_text = render_html(book, result)
        jobs: list[Future[Any]] = [
            pool.submit(write_xlsx, book, result, paths["xlsx"]),
            pool.submit(write_csv, result, paths["csv"]),
            pool.submit(write_json, book, result, paths["json"]),
            pool.submit(paths["html"].write_text, html_text, encoding="utf-8"),
        ]
        for job in jobs:
            job.result()
    return paths
