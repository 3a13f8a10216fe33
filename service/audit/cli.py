"""``python -m service.audit <input> [--details FILE] [--out DIR]``: audit past awards.

Exit codes: 0 clean, 1 findings, 2 the input cannot be read. A progress bar goes to stderr for
large files; the outputs go to ``--out`` (findings.csv, findings.xlsx, report.json,
summary.html) and a one-line summary to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Container
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from service.audit.columns import ALIASES, AUDIT_FIELDS
from service.audit.context import ISSUE_WITHIN_DAYS, AuditOptions
from service.audit.readers import UnreadableInput, limits_of
from service.audit.report import summary_json, write_all
from service.audit.run import run_audit
from service.config import get_settings
from service.disqualification import DisqualificationList
from service.rules.loader import RuleFileError, load_rules

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2
PROGRESS_FROM_BYTES = 2_000_000


class ProgressBar:
    """``[#####.....]  52%  520,000 rows  98,000 rows/s`` on one stderr line."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self.started = time.perf_counter()
        self.last = 0.0

    def __call__(self, fraction: float, rows: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and fraction < 1.0):
            return
        self.last = now
        filled = int(fraction * 30)
        rate = rows / max(now - self.started, 1e-6)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}  {rows:,} rows  {rate:,.0f} rows/s"
        )
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


def _tiers(text: str | None) -> dict[int, Decimal] | None:
    """``1=50000,2=30000,3=10000`` (第二十一条 tier amounts of the audited round)."""
    if not text:
        return None
    out: dict[int, Decimal] = {}
    try:
        for part in text.split(","):
            tier, _, amount = part.partition("=")
            out[int(tier)] = Decimal(amount.strip())
    except (ValueError, InvalidOperation) as exc:
        raise argparse.ArgumentTypeError(f"tier amounts: {text!r} ({exc})") from exc
    return out


def _columns_help() -> str:
    """The columns the audit understands (service/audit/columns.py), for --help."""
    names: dict[str, list[str]] = {name: [] for name in AUDIT_FIELDS}
    for alias, name in ALIASES.items():
        names[name].append(alias)
    lines = [
        f"  {name:<15} {'、'.join(a for a in aliases if not a.isascii()) or '-'}"
        for name, aliases in names.items()
    ]
    return (
        "columns / 列名 (English or Chinese; amounts in 元, or 万元 when the header says so):\n"
        + "\n".join(lines)
        + "\n  and every field of a program's form: its dotted path (applicant.entity_type,\n"
        "  requested_amount; an item's: patent_number, counterparty.is_sme) or its zh label\n"
        "  in the form files (专利号, 受让方名称). units + total_paid make a program summary."
    )


class UnreadableList(Exception):
    """The stored 第二十六条 list cannot be read (exit code 2)."""


def stored_list(url: str) -> frozenset[str]:
    """The 第二十六条 list ``POST /v1/audit`` reads: the service's database, read once."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.db.disqualifications import entries
    from service.db.session import Database

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise UnreadableList(
            f"第二十六条名单：没有数据库 / the 第二十六条 list: no database at {url} "
            "(set DATABASE_URL, or give --disqualified FILE)"
        )
    db = Database(url)
    try:
        with db.transaction(write=False) as session:
            return frozenset(e.uscc for e in entries(session, include_removed=False))
    except SQLAlchemyError as exc:
        raise UnreadableList(
            f"第二十六条名单无法从数据库读取 / cannot read the 第二十六条 list from {db.engine.url!r} "
            f"({type(exc).__name__}); run the migrations, or give --disqualified FILE"
        ) from exc
    finally:
        db.dispose()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m service.audit",
        description="审计过往奖补 / Audit past awards against the rule files in force.",
        epilog=_columns_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input", type=Path, help="awards: .csv, .xlsx or .jsonl (records or program summary)"
    )
    p.add_argument(
        "--details", type=Path, help="their items (patents, loans, contracts), keyed by award_id"
    )
    p.add_argument(
        "--out", type=Path, default=Path("audit-out"), help="output folder (default audit-out)"
    )
    p.add_argument("--rules", type=Path, help="the rule files in force (default: RULES_DIR)")
    p.add_argument(
        "--disqualified",
        type=Path,
        help="第二十六条 list, one USCC per line (default: the service's stored list, DATABASE_URL)",
    )
    p.add_argument("--issue-within-days", type=int, default=ISSUE_WITHIN_DAYS)
    p.add_argument(
        "--tier-amounts", help="第二十一条 tier amounts of the round: 1=50000,2=30000,3=10000"
    )
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto")
    return p


def main(
    argv: list[str] | None = None, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr
) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    try:
        book = load_rules(args.rules or settings.rules_dir)
    except RuleFileError as exc:
        stderr.write(f"rules: {exc}\n")
        return EXIT_UNREADABLE
    try:
        tiers = _tiers(args.tier_amounts)
        if args.disqualified is not None:
            disqualified: Container[str] = DisqualificationList.from_file(args.disqualified)
        else:
            disqualified = stored_list(settings.database_url)
    except (OSError, argparse.ArgumentTypeError, UnreadableList) as exc:
        stderr.write(f"{exc}\n")
        return EXIT_UNREADABLE
    size = sum(
        p.stat().st_size for p in (args.input, args.details) if p is not None and p.is_file()
    )
    show = args.progress == "on" or (args.progress == "auto" and size >= PROGRESS_FROM_BYTES)
    options = AuditOptions(
        issue_within_days=args.issue_within_days, tier_amounts=tiers, limits=limits_of(settings)
    )
    try:
        result = run_audit(
            book, args.input, args.details, disqualified, options, ProgressBar(stderr, show)
        )
    except (UnreadableInput, OSError, UnicodeError) as exc:
        stderr.write(f"无法读取输入 / cannot read the input: {exc}\n")
        return EXIT_UNREADABLE
    paths = write_all(book, result, args.out)
    result.removed()  # the run's temporary files, removed while the outputs were written
    s = summary_json(book, result)
    stdout.write(
        f"{s['rows_read']:,} rows, {s['finding_count']:,} findings, {s['amount_at_stake']} yuan at stake "
        f"({result.meta['seconds']} s) -> {', '.join(str(p) for p in paths.values())}\n"
    )
    return EXIT_FINDINGS if result.exit_code else EXIT_CLEAN
