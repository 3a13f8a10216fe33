"""One audit run, streamed: read in chunks, spill to partitions, evaluate partition by partition.

1. Each chunk of rows is parsed (bad cells become findings) and split into award records and
   item rows, both keyed by award (``rec``); the rows go to partitions by a hash of that key.
2. Each partition holds whole awards with all their items: it is evaluated at once, program by
   program (conditions, items, entitlement, caps, dates); what the checks across awards need
   is written to two more sets of partitions: item keys (by key) and units (by applicant).
3. Those are checked partition by partition (duplicates, once per applicant); what is left per
   program (units, totals) is small, and checked last (quotas, pools).

Small inputs keep their one partition in memory; large ones spill to a temporary folder, so
memory follows the partition size, not the file size.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Container
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from service.audit import checks
from service.audit import findings as F
from service.audit.applications import expand
from service.audit.columns import Column, recognise
from service.audit.context import AuditContext, AuditOptions
from service.audit.evaluate import AWARDED, KEY, evaluate
from service.audit.parse import parse
from service.audit.readers import Table, UnreadableInput, open_table
from service.audit.spill import Spill
from service.audit.summary import audit_summary
from service.engine.polars_decide import REC
from service.rules.loader import RuleBook

Progress = Callable[[float, int], None]
WORKERS = 2  # this machine's cores: parsing and reading overlap with the rest
AHEAD = 2  # chunks (pass 1) read and worked on ahead of the one being spilled


class _Serial(Executor):
    """Runs each task when it is submitted (an audit without a pool)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever asks for the result, as a pool does
            future.set_exception(exc)
        return future


_SERIAL = _Serial()
UNIT_BY = ["program_id", "applicant_uscc"]
QUOTA_BY = ["program_id", "round"]
RECORD_FIELDS = ("program_id", AWARDED, "applicant_uscc", "application", "awarded_on")


@dataclass
class AuditResult:
    findings: pl.DataFrame
    programs: pl.DataFrame  # program_id, awards, units, awarded_amount, allowed, pool
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.findings.height else 0


class _Headers:
    """Recognised columns of one file; unknown ones are reported once, on the header row."""

    def __init__(self, book: RuleBook, src: str) -> None:
        self.book, self.src = book, src
        self.columns: dict[str, Column | None] = {}
        self.found: list[pl.DataFrame] = []
        self.keys: set[str] = set()

    def known(self, headers: list[str]) -> list[Column]:
        for header in headers:
            if header == "row" or header in self.columns:
                continue
            column = recognise(header, self.book)
            if column is not None and column.key in self.keys:
                column = None  # a second column for the same thing: the first one is read
            self.columns[header] = column
            if column is None:
                self.found.append(_unknown_column(self.src, header))
            else:
                self.keys.add(column.key)
        return [c for h in headers if (c := self.columns.get(h)) is not None]


def _unknown_column(src: str, header: str) -> pl.DataFrame:
    if header == "__unreadable__":
        return F.empty()
    row = {
        "source": src,
        "row": 1,
        "item": header,
        "message_zh": f"无法识别的列“{header}”，已忽略",
        "message_en": f"Unknown column '{header}', ignored",
    }
    return F.build(pl.DataFrame([row]), "unknown_column")


def _problems(src: str, parsed_frame: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    if problems.height == 0:
        return F.empty()
    context = [
        c
        for c in ("program_id", "applicant_uscc", "applicant_name", "award_id")
        if c in parsed_frame.columns
    ]
    rows = problems.join(parsed_frame.select("row", *context), on="row", how="left")
    parts = []
    for (kind,), part in rows.group_by("problem"):
        parts.append(
            F.build(
                part,
                str(kind),
                source=src,
                item=pl.col("column"),
                message_zh=pl.concat_str(
                    pl.lit("“"),
                    pl.col("column"),
                    pl.lit("”列的值“"),
                    pl.col("value"),
                    pl.lit(f"”无法读取（{F.KINDS[str(kind)].zh}）"),
                ),
                message_en=pl.concat_str(
                    pl.lit("Column '"),
                    pl.col("column"),
                    pl.lit("': cannot read '"),
                    pl.col("value"),
                    pl.lit(f"' ({F.KINDS[str(kind)].en})"),
                ),
            )
        )
    return pl.concat(parts)


def _unreadable_rows(src: str, raw: pl.DataFrame) -> pl.DataFrame:
    if "__unreadable__" not in raw.columns:
        return F.empty()
    bad = raw.filter(pl.col("__unreadable__").is_not_null())
    return F.build(
        bad,
        "unreadable_row",
        source=src,
        message_zh=pl.lit("该行不是有效的 JSON 对象"),
        message_en=pl.lit("The line is not a JSON object"),
    )


class Runner:
    def __init__(
        self, ctx: AuditContext, progress: Progress | None = None, pool: Executor | None = None
    ) -> None:
        self.ctx = ctx
        self.pool = pool or _SERIAL
        self.progress = progress or (lambda fraction, rows: None)
        self.found: list[pl.DataFrame] = []
        self.rows = 0
        self.summary_rows: list[pl.DataFrame] = []

    def _chunks(
        self, table: Table, spill: Spill, details: bool, share: tuple[float, float]
    ) -> bool:
        """Pass 1 over one file. Returns whether it was a program-summary file."""
        headers = _Headers(self.ctx.book, table.name)
        first = headers.known(table.headers)
        keys = {c.key for c in first}
        summary = not details and "units" in keys and "total_paid" in keys
        if not details and "program_id" not in keys:
            raise UnreadableInput(f"{table.name}: no program column (program_id / 项目)")
        if details and "award_id" not in keys:
            raise UnreadableInput(
                f"{table.name}: detail rows need the award id (award_id / 奖补编号)"
            )
        self.ctx.item_columns |= {c.key for c in first if c.level == "item"}
        # Chunks are read here; each is parsed, split and cut into partitions AHEAD in the pool,
        # and its pieces are added to the spill here, in file order: polars works outside the
        # GIL, so reading, parsing and spilling share the cores.
        pending: deque[tuple[int, Future[_Chunk]]] = deque()

        def take() -> None:
            height, job = pending.popleft()
            chunk = job.result()
            self.found += chunk.found
            self.rows += height
            if chunk.summary is not None:
                self.summary_rows.append(chunk.summary)
            for kind, pieces in chunk.pieces:
                spill.add(kind, pieces)
            start, width = share
            self.progress(start + width * table.progress["done"], self.rows)

        for raw in table.chunks:
            columns = headers.known([c for c in raw.columns if c != "row"])
            self.ctx.item_columns |= {c.key for c in columns if c.level == "item"}
            job = self.pool.submit(self._chunk, table.name, raw, columns, spill, details, summary)
            pending.append((raw.height, job))
            if len(pending) > AHEAD:
                take()
        while pending:
            take()
        self.found += headers.found
        return summary

    def _chunk(
        self,
        name: str,
        raw: pl.DataFrame,
        columns: list[Column],
        spill: Spill,
        details: bool,
        summary: bool,
    ) -> _Chunk:
        """One chunk parsed, its problems found, its rows split and cut into partitions (no
        state is changed here: chunks are worked on side by side)."""
        parsed = parse(raw, columns)
        typed = parsed.frame.with_columns(pl.lit(name).alias("src"))
        out = _Chunk([_problems(name, typed, parsed.problems), _unreadable_rows(name, raw)])
        if summary:
            out.summary = typed
        else:
            for kind, frame in self._split(typed, columns, details, out.found):
                out.pieces.append((kind, spill.pieces(frame, [REC])))
        return out

    def _split(
        self,
        typed: pl.DataFrame,
        columns: list[Column],
        details: bool,
        found: list[pl.DataFrame],
    ) -> list[tuple[str, pl.DataFrame | None]]:
        by_row = pl.concat_str(
            pl.lit("#"), pl.col("src"), pl.lit(":"), pl.col("row").cast(pl.String)
        )
        if "award_id" not in typed.columns:
            rec = by_row
        elif typed["award_id"].null_count() == 0:
            rec = pl.col("award_id")
        else:
            rec = pl.coalesce(pl.col("award_id"), by_row)
        typed = typed.with_columns(rec.alias(REC))
        out: list[tuple[str, pl.DataFrame | None]] = []
        item_keys = [c.key for c in columns if c.level == "item"]
        if item_keys:
            is_item = pl.any_horizontal(*(pl.col(k).is_not_null() for k in item_keys))
            out.append(("items", typed.filter(is_item).select("src", "row", REC, *item_keys)))
        if details:
            return out
        present = [c for c in RECORD_FIELDS if c in typed.columns]
        if not present:
            return out
        records = typed.filter(pl.any_horizontal(*(pl.col(c).is_not_null() for c in present)))
        records = records.drop(item_keys)
        records, json_items, problems = expand(self.ctx, records)
        found.append(problems)
        out += [("records", records), ("items", json_items)]
        return out

    def run(self, records: Table, details: Table | None = None) -> AuditResult:
        started = time.perf_counter()
        size = records.size + (details.size if details else 0)
        parts = max(1, -(-size // self.ctx.options.partition_bytes))
        spill = Spill(parts)
        try:
            share = (0.0, 0.6 if details is None else 0.4)
            summary = self._chunks(records, spill, False, share)
            if details is not None and not summary:
                self._chunks(details, spill, True, (0.4, 0.2))
            programs = self._summary() if summary else self._awards(spill)
        finally:
            spill.close()
        self.progress(1.0, self.rows)
        findings = (
            pl.concat([f for f in self.found if f.height], how="vertical_relaxed")
            if any(f.height for f in self.found)
            else F.empty()
        )
        findings = findings.sort(["source", "row", "program_id"], nulls_last=True)
        meta = {
            "rules_version": self.ctx.book.version,
            "level": "program_summary" if summary else "records",
            "inputs": [t.name for t in (records, details) if t is not None],
            "rows_read": self.rows,
            "partitions": parts,
            "seconds": round(time.perf_counter() - started, 3),
        }
        return AuditResult(findings, programs, meta)

    def _summary(self) -> pl.DataFrame:
        if not self.summary_rows:
            return _programs_schema()
        rows = pl.concat(self.summary_rows, how="diagonal_relaxed")
        for name in ("program_id", "units", "total_paid"):
            missing = rows.filter(pl.col(name).is_null())
            if missing.height:
                self.found.append(
                    F.build(
                        missing,
                        "missing_value",
                        message_zh=pl.lit(f"缺少{name}"),
                        message_en=pl.lit(f"No {name}"),
                    )
                )
        found, allowed = audit_summary(self.ctx, rows)
        self.found += found
        totals = (
            rows.with_columns(pl.Series("allowed", allowed, dtype=pl.Int64))
            .group_by("program_id")
            .agg(
                pl.len().alias("awards"),
                pl.col("units").sum().alias("units"),
                pl.col("total_paid").sum().alias(AWARDED),
                pl.col("allowed").sum().alias("allowed"),
            )
            .filter(pl.col("program_id").is_not_null())
        )
        self.found.append(checks.pools(self.ctx, totals))
        return self._with_limits(totals)

    def _awards(self, spill: Spill) -> pl.DataFrame:
        second = Spill(spill.parts)
        totals: list[pl.DataFrame] = []
        units: list[pl.DataFrame] = []
        try:
            # Two partitions are read and evaluated at once in the pool (the cores); their
            # results are taken in order, so the findings do not depend on the timing.
            ahead: deque[Future[_Partition | None]] = deque()
            for part in range(spill.parts):
                ahead.append(self.pool.submit(self._partition, spill, second, part))
                if len(ahead) < WORKERS and part + 1 < spill.parts:
                    continue
                self._take(ahead.popleft().result(), second, totals)
                self.progress(0.6 + 0.3 * (part + 1) / spill.parts, self.rows)
            while ahead:
                self._take(ahead.popleft().result(), second, totals)
            across: deque[Future[tuple[list[pl.DataFrame], pl.DataFrame | None]]] = deque()
            for part in range(second.parts):
                across.append(self.pool.submit(self._across, second, part))
                if len(across) >= WORKERS:
                    self._take_across(across.popleft().result(), units)
            while across:
                self._take_across(across.popleft().result(), units)
        finally:
            second.close()
        if not totals or not units:
            return _programs_schema()
        counted = (
            pl.concat(units, how="vertical_relaxed")
            .group_by("program_id")
            .agg(pl.col("units").sum().cast(pl.UInt32))
        )
        summed = (
            pl.concat(totals, how="vertical_relaxed")
            .group_by("program_id")
            .agg(
                pl.col("awards").sum().cast(pl.UInt32),
                pl.col(AWARDED).sum(),
                pl.col("allowed").sum(),
            )
            .join(counted, on="program_id", how="left", nulls_equal=True)
            .select("program_id", "awards", "units", AWARDED, "allowed")
            .filter(pl.col("program_id").is_not_null())
        )
        self.found.append(checks.pools(self.ctx, summed))
        return self._with_limits(summed)

    def _partition(self, spill: Spill, second: Spill, part: int) -> _Partition | None:
        """One partition evaluated, and what the checks across awards need of it, cut into the
        second partitions: whole groups each (once-per-applicant awards by applicant, those of
        programs with a quota by round, (program, applicant) pairs by applicant for the units,
        item keys by key for duplicates)."""
        records = spill.get("records", part)
        items = spill.get("items", part)
        if records is None and items is None:
            return None
        result = evaluate(
            self.ctx,
            records
            if records is not None
            else pl.DataFrame(schema={REC: pl.String(), "program_id": pl.String()}),
            items if items is not None else pl.DataFrame(schema={REC: pl.String()}),
        )
        units = result.units
        return _Partition(
            result.findings,
            checks.program_totals(units) if units.height else None,
            [
                ("units", second.pieces(checks.once_units(self.ctx, units), UNIT_BY)),
                ("quota", second.pieces(checks.quota_units(self.ctx, units), QUOTA_BY)),
                ("pairs", second.pieces(checks.unit_pairs(units), ["applicant_uscc"])),
                ("keys", second.pieces(result.keys, [KEY])),
            ],
        )

    def _take(self, done: _Partition | None, second: Spill, totals: list[pl.DataFrame]) -> None:
        # Partitions are taken in order: findings and spilled rows do not depend on timing.
        if done is None:
            return
        self.found += done.findings
        if done.totals is not None:
            totals.append(done.totals)
        for kind, pieces in done.pieces:
            second.add(kind, pieces)

    def _across(self, second: Spill, part: int) -> tuple[list[pl.DataFrame], pl.DataFrame | None]:
        """The checks across awards on one second partition (whole groups): findings, and the
        units (distinct applicants) per program."""
        found = []
        keys = second.get("keys", part)
        if keys is not None:
            found.append(checks.duplicates(self.ctx, keys))
        awards = second.get("units", part)
        if awards is not None:
            found.append(checks.funded_twice(self.ctx, awards))
        quota = second.get("quota", part)
        if quota is not None:
            found.append(checks.quotas(self.ctx, checks.units_of(quota)))
        pairs = second.get("pairs", part)
        return found, None if pairs is None else checks.unit_counts(pairs)

    def _take_across(
        self, done: tuple[list[pl.DataFrame], pl.DataFrame | None], units: list[pl.DataFrame]
    ) -> None:
        found, counted = done
        self.found += found
        if counted is not None:
            units.append(counted)

    def _with_limits(self, totals: pl.DataFrame) -> pl.DataFrame:
        known = set(self.ctx.book.programs)
        pools = {p: checks.pool_fen(self.ctx, p) for p in totals["program_id"].to_list()}
        out = totals.with_columns(
            pl.col("program_id")
            .replace_strict(pools, default=None, return_dtype=pl.Int64)
            .alias("pool"),
            pl.col("program_id").is_in(list(known)).alias("known"),
        )
        allowed = (
            pl.when(~pl.col("known")).then(pl.lit(0, dtype=pl.Int64)).otherwise(pl.col("allowed"))
        )
        allowed = (
            pl.when(pl.col("pool").is_not_null() & allowed.is_not_null())
            .then(pl.min_horizontal(allowed, pl.col("pool")))
            .otherwise(allowed)
        )
        return out.with_columns(allowed.alias("allowed")).sort("program_id")


@dataclass
class _Chunk:
    found: list[pl.DataFrame]
    summary: pl.DataFrame | None = None  # the rows of a program-summary file
    pieces: list[tuple[str, list[tuple[int, pl.DataFrame]]]] = field(default_factory=list)


@dataclass
class _Partition:
    findings: list[pl.DataFrame]
    totals: pl.DataFrame | None
    pieces: list[tuple[str, list[tuple[int, pl.DataFrame]]]]


def _programs_schema() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "program_id": pl.String(),
            "awards": pl.UInt32(),
            "units": pl.UInt32(),
            AWARDED: pl.Int64(),
            "allowed": pl.Int64(),
            "pool": pl.Int64(),
            "known": pl.Boolean(),
        }
    )


def run_audit(
    book: RuleBook,
    records: Path,
    details: Path | None = None,
    disqualified: Container[str] = frozenset(),
    options: AuditOptions | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit one file of past awards (and optionally a file of their items)."""
    options = options or AuditOptions()
    ctx = AuditContext(book, disqualified, options)
    table = open_table(records, options.chunk_rows)
    detail_table = open_table(details, options.chunk_rows) if details is not None else None
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="audit") as pool:
        return Runner(ctx, progress, pool).run(table, detail_table)
