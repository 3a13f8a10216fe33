"""One audit run, streamed: chunks of rows read, typed, evaluated in batches of whole awards.

An award's conditions and amount need all its rows and items together. Two ways to get them:
- in award order (service.audit.ordered): files sorted by award id, as bureaus export them, are
  read side by side and cut into batches of whole awards, evaluated as they come;
- in partitions: otherwise every row goes to a partition on disk by a hash of its award, and
  each partition (whole awards with all their items) is evaluated once the files are read.
The first is tried; a file found out of order mid-way is audited again the second way.
Either way each batch is evaluated program by program (service.audit.evaluate), and what the
checks across awards need of it is gathered for the end (service.audit.across).

Small inputs keep their one partition in memory; large ones spill to a temporary folder, so
memory follows the chunk and partition size, not the file size.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Container, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from service.audit import checks
from service.audit import findings as F
from service.audit.across import Across, Cut, programs_schema, with_limits
from service.audit.columns import Column, Vocabulary, recognise
from service.audit.context import AuditContext, AuditOptions
from service.audit.evaluate import AWARDED, evaluate
from service.audit.ordered import Batch, NotInOrder, batches
from service.audit.readers import (
    InputTooLarge,
    Table,
    UnreadableInput,
    open_table,
    read_xlsx,
)
from service.audit.rows import Headers, Rows, read_rows
from service.audit.spill import Spill
from service.audit.summary import audit_summary, check_totals
from service.engine.polars_decide import REC
from service.rules.loader import RuleBook

Progress = Callable[[float, int], None]
# Reading (here), parsing and evaluating overlap; a third worker keeps two cores busy while a
# worker waits for polars' own threads, and two batches ahead keep a worker from idling while
# the next batch is read (the figures: bench/README.md).
WORKERS = 3
AHEAD = 2
NO_RECORDS = pl.DataFrame(schema={REC: pl.String(), "program_id": pl.String()})
NO_ITEMS = pl.DataFrame(schema={REC: pl.String()})


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


class AuditTooLong(InputTooLarge):
    """The audit ran past ``AuditOptions.max_seconds`` (HTTP 413, exit code 2)."""


@dataclass
class AuditResult:
    findings: pl.DataFrame
    programs: pl.DataFrame  # program_id, awards, units, awarded_amount, allowed, pool
    meta: dict[str, Any] = field(default_factory=dict)
    # The run's temporary files being removed in the background (``removed`` waits).
    removing: list[threading.Thread] = field(default_factory=list, repr=False)
    # The report's summary, made once (service.audit.report.summary_json): each output has it.
    summary: dict[str, Any] | None = field(default=None, repr=False)

    def removed(self) -> None:
        """Waits until the run's temporary files are gone (the command, before it ends)."""
        while self.removing:
            self.removing.pop().join()

    @property
    def exit_code(self) -> int:
        return 1 if self.findings.height else 0


@dataclass
class _Files:
    records: Table
    details: Table | None
    headers: Headers
    detail_headers: Headers | None
    summary: bool  # a program-summary file (one row per program)


class Runner:
    def __init__(
        self, ctx: AuditContext, progress: Progress | None = None, pool: Executor | None = None
    ) -> None:
        self.ctx = ctx
        self.pool = pool or _SERIAL
        report = progress or (lambda fraction, rows: None)
        limit, started = ctx.options.max_seconds, time.monotonic()

        def progressed(fraction: float, rows: int) -> None:
            if limit is not None and time.monotonic() - started > limit and fraction < 1.0:
                raise AuditTooLong(f"the audit takes longer than {limit:g} s (AUDIT_MAX_SECONDS)")
            report(fraction, rows)

        self.progress = progressed
        self.found: list[pl.DataFrame] = []
        self.removing: list[threading.Thread] = []
        self.closing: list[pl.DataFrame] = []  # 合计 rows (list.append is atomic)
        self.rows = 0

    def run(
        self, records: Table, details: Table | None = None, in_order: bool = True
    ) -> AuditResult:
        """Raises NotInOrder (``in_order``) when the files turn out not to be in award order."""
        started = time.perf_counter()
        files = self._files(records, details)
        size = records.size + (details.size if details else 0)
        parts = max(1, -(-size // self.ctx.options.partition_bytes))
        if files.summary:
            programs, layout = self._summary(files), "summary"
        else:
            across = Across(self.ctx)
            try:
                if in_order:
                    self._in_order(files, across)
                else:
                    self._partitioned(files, across, parts)
                found, programs = across.finish()
                self.found += found
                if self.closing:
                    closing = pl.concat(self.closing, how="diagonal_relaxed")
                    counted = {AWARDED: "奖补金额"}
                    self.found += check_totals(closing, programs, counted)
            finally:
                self.removing.append(across.close())
            layout = "award_order" if in_order else "partitions"
        self.found += files.headers.found + (
            files.detail_headers.found if files.detail_headers else []
        )
        self.progress(1.0, self.rows)
        kept = [f for f in self.found if f.height]
        findings = pl.concat(kept, how="vertical_relaxed") if kept else F.empty()
        # Sorted on every column: the same input gives the same file, whatever the timing.
        findings = findings.sort(F.COLUMNS, nulls_last=True)  # ties are equal rows
        meta = {
            "rules_version": self.ctx.book.version,
            "level": "program_summary" if files.summary else "records",
            "inputs": [t.name for t in (records, details) if t is not None],
            "rows_read": self.rows,
            "layout": layout,
            "partitions": parts if layout == "partitions" else 1,
            "seconds": round(time.perf_counter() - started, 3),
        }
        return AuditResult(findings, programs, meta, removing=self.removing)

    def _files(self, records: Table, details: Table | None) -> _Files:
        headers = Headers(self.ctx.book, records.name, self.ctx.vocabulary)
        keys = {c.key for c in headers.known(records.headers)}
        if "program_id" not in keys:
            raise UnreadableInput(f"{records.name}: no program column (program_id / 项目)")
        summary = details is None and "units" in keys and "total_paid" in keys
        detail_headers = None
        if details is not None:
            detail_headers = Headers(self.ctx.book, details.name, self.ctx.vocabulary)
            if "award_id" not in {c.key for c in detail_headers.known(details.headers)}:
                raise UnreadableInput(
                    f"{details.name}: detail rows need the award id (award_id / 奖补编号)"
                )
        for h in (headers, detail_headers):
            if h is not None:
                self._item_columns(h, list(h.columns))
        return _Files(records, details, headers, detail_headers, summary)

    def _item_columns(self, headers: Headers, names: list[str]) -> list[Column]:
        columns = headers.known([c for c in names if c != "row"])
        self.ctx.item_columns |= {c.key for c in columns if c.level == "item"}
        return columns

    # -- program-summary files --------------------------------------------------------------
    def _summary(self, files: _Files) -> pl.DataFrame:
        table, rows, closing = files.records, [], []
        for raw in table.chunks:
            columns = self._item_columns(files.headers, raw.columns)
            read = read_rows(self.ctx, table.name, raw, columns, summary=True)
            self.found += read.found
            if read.typed is not None:
                rows.append(read.typed)
            if read.totals is not None:
                closing.append(read.totals)
            self.rows += raw.height
            self.progress(0.9 * table.progress["done"], self.rows)
        if not rows:
            return programs_schema()
        frame = pl.concat(rows, how="diagonal_relaxed")
        if closing:
            counted = {"units": "支持数量", "total_paid": "金额"}
            self.found += check_totals(pl.concat(closing, how="diagonal_relaxed"), frame, counted)
        for name in ("program_id", "units", "total_paid"):
            missing = frame.filter(pl.col(name).is_null())
            if missing.height:
                self.found.append(
                    F.build(
                        missing,
                        "missing_value",
                        message_zh=pl.lit(f"缺少{name}"),
                        message_en=pl.lit(f"No {name}"),
                    )
                )
        found, allowed = audit_summary(self.ctx, frame)
        self.found += found
        # Columns that describe (认定部门, 备注) are kept: "认定部门：市知识产权局" per program.
        notes = [
            pl.concat_str(pl.lit(c.header + "："), pl.col(c.key))
            for c in files.headers.columns.values()
            if c is not None and c.level == "note" and c.key in frame.columns
        ]
        described = (
            pl.concat_str(notes, separator="；", ignore_nulls=True) if notes else pl.lit(None)
        )
        totals = (
            frame.with_columns(
                pl.Series("allowed", allowed, dtype=pl.Int64),
                described.cast(pl.String).alias("notes"),
            )
            .group_by("program_id")
            .agg(
                pl.len().alias("awards"),
                pl.col("units").sum().alias("units"),
                pl.col("total_paid").sum().alias(AWARDED),
                pl.col("allowed").sum().alias("allowed"),
                pl.col("notes").drop_nulls().unique(maintain_order=True).str.join("；"),
            )
            .filter(pl.col("program_id").is_not_null())
        )
        self.found.append(checks.pools(self.ctx, totals))
        return with_limits(self.ctx, totals)

    # -- files in award order ----------------------------------------------------------------
    def _in_order(self, files: _Files, across: Across) -> None:
        """Batches of whole awards, read side by side from both files, evaluated in the pool
        ``AHEAD`` at a time and added in file order (findings do not depend on timing)."""
        records, details = files.records, files.details
        item_columns = set(self.ctx.item_columns)

        def seen(headers: Headers) -> Callable[[pl.DataFrame], str | None]:
            def on_chunk(raw: pl.DataFrame) -> str | None:
                self._item_columns(headers, raw.columns)
                if self.ctx.item_columns != item_columns:
                    # An item column first seen mid-way (JSON Lines): awards already evaluated
                    # did not know it. Partitions see every column before evaluating.
                    raise NotInOrder("an item column appears after the first rows")
                self.rows += raw.height
                return headers.header_of("award_id")

            return on_chunk

        pending: deque[Future[Cut]] = deque()
        numbers = itertools.count()

        def take() -> None:
            self.found += across.add(pending.popleft().result())
            self.progress(0.9 * records.progress["done"], self.rows)

        detail_stream = None
        if details is not None and files.detail_headers is not None:
            detail_stream = (details.name, details.chunks, seen(files.detail_headers))
        stream = batches((records.name, records.chunks, seen(files.headers)), detail_stream)
        for batch in stream:
            pending.append(self.pool.submit(self._batch, files, batch, across, next(numbers)))
            while len(pending) > AHEAD:
                take()
        while pending:
            take()

    def _batch(self, files: _Files, batch: Batch, across: Across, number: int) -> Cut:
        rows = []
        if batch.records:
            rows.append(self._read(files.records, files.headers, _joined(batch.records)))
        if batch.items and files.details is not None and files.detail_headers is not None:
            rows.append(self._read(files.details, files.detail_headers, _joined(batch.items), True))
        batch.records.clear()  # the text is typed: let it go before evaluating
        batch.items.clear()
        records = next((r.records for r in rows if r.records is not None), None)
        items = [i for r in rows for i in r.items if i.height]
        result = evaluate(
            self.ctx,
            records if records is not None else NO_RECORDS,
            pl.concat(items, how="diagonal_relaxed") if items else NO_ITEMS,
        )
        cut = across.cut(result, number)
        cut.findings = [f for r in rows for f in r.found] + cut.findings
        self.closing += [r.totals for r in rows if r.totals is not None]
        return cut

    def _read(
        self, table: Table, headers: Headers, raw: pl.DataFrame, details: bool = False
    ) -> Rows:
        columns = [c for h in raw.columns if (c := headers.columns.get(h)) is not None]
        return read_rows(self.ctx, table.name, raw, columns, details)

    # -- files in any order ------------------------------------------------------------------
    def _partitioned(self, files: _Files, across: Across, parts: int) -> None:
        spill = Spill(parts)
        try:
            self._spill(files.records, files.headers, spill, False, (0.0, 0.45))
            if files.details is not None and files.detail_headers is not None:
                self._spill(files.details, files.detail_headers, spill, True, (0.45, 0.25))
            ahead: deque[Future[Cut | None]] = deque()
            for part in range(spill.parts):
                ahead.append(self.pool.submit(self._partition, spill, across, part))
                if len(ahead) >= AHEAD:  # a partition is larger than a batch: two at a time
                    self._take(ahead.popleft().result(), across)
                self.progress(0.7 + 0.2 * (part + 1) / spill.parts, self.rows)
            while ahead:
                self._take(ahead.popleft().result(), across)
        finally:
            spill.close()

    def _spill(
        self,
        table: Table,
        headers: Headers,
        spill: Spill,
        details: bool,
        share: tuple[float, float],
    ) -> None:
        """One file read: each chunk is typed and cut into partitions ``AHEAD`` at a time in
        the pool (polars works outside the GIL) and added to the spill here, in file order."""
        pending: deque[tuple[int, Future[tuple[list[pl.DataFrame], list[Any]]]]] = deque()

        def take() -> None:
            height, job = pending.popleft()
            found, pieces = job.result()
            self.found += found
            self.rows += height
            for kind, piece in pieces:
                spill.add(kind, piece)
            start, width = share
            self.progress(start + width * table.progress["done"], self.rows)

        for raw in table.chunks:
            columns = self._item_columns(headers, raw.columns)
            job = self.pool.submit(self._cut, table.name, raw, columns, spill, details)
            pending.append((raw.height, job))
            if len(pending) > AHEAD:
                take()
        while pending:
            take()

    def _cut(
        self, name: str, raw: pl.DataFrame, columns: list[Column], spill: Spill, details: bool
    ) -> tuple[list[pl.DataFrame], list[Any]]:
        rows = read_rows(self.ctx, name, raw, columns, details)
        if rows.totals is not None:
            self.closing.append(rows.totals)
        pieces = [("items", spill.pieces(i, [REC])) for i in rows.items]
        if rows.records is not None:
            pieces.append(("records", spill.pieces(rows.records, [REC])))
        return rows.found, pieces

    def _partition(self, spill: Spill, across: Across, part: int) -> Cut | None:
        records = spill.get("records", part)
        items = spill.get("items", part)
        if records is None and items is None:
            return None
        result = evaluate(
            self.ctx,
            records if records is not None else NO_RECORDS,
            items if items is not None else NO_ITEMS,
        )
        return across.cut(result, part)

    def _take(self, cut: Cut | None, across: Across) -> None:
        if cut is not None:
            self.found += across.add(cut)


def _joined(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal")


def run_audit(
    book: RuleBook,
    records: Path,
    details: Path | None = None,
    disqualified: Container[str] = frozenset(),
    options: AuditOptions | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit one file of past awards (and optionally a file of their items): in award order
    when the files are (``options.layout`` "auto"), in partitions otherwise."""
    options = options or AuditOptions()
    ctx = AuditContext(book, disqualified, options)

    notes: list[pl.DataFrame] = []

    temporary: list[Path] = []  # re-encoded copies (GB18030, UTF-16), removed at the end

    def tables() -> Iterator[Table | None]:
        table = open_table(records, options.chunk_rows, options.limits, temporary)
        if len(table.sheets) > 1 and details is None:
            notes.clear()
            yield from _sheets(book, records, table, options, notes)
            return
        yield table
        if details is None:
            yield None
        else:
            yield open_table(details, options.chunk_rows, options.limits, temporary)

    try:
        return _run(ctx, tables, notes, progress)
    finally:
        for path in temporary:
            path.unlink(missing_ok=True)


def _run(
    ctx: AuditContext,
    tables: Callable[[], Iterator[Table | None]],
    notes: list[pl.DataFrame],
    progress: Progress | None,
) -> AuditResult:
    options = ctx.options
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="audit") as pool:
        if options.layout == "auto":
            try:
                table, detail_table = tables()
                assert table is not None
                runner = Runner(ctx, progress, pool)
                runner.found += notes
                return runner.run(table, detail_table, in_order=True)
            except NotInOrder:
                ctx.item_columns = set()
        table, detail_table = tables()
        assert table is not None
        runner = Runner(ctx, progress, pool)
        runner.found += notes
        return runner.run(table, detail_table, in_order=False)


def _sheets(
    book: RuleBook, path: Path, first: Table, options: AuditOptions, notes: list[pl.DataFrame]
) -> Iterator[Table | None]:
    """A workbook's sheets: the first of awards (a program column) and the first of details
    (an award id and item columns, no program); every other sheet is named as not audited."""
    records: Table | None = None
    details: Table | None = None
    for index, title in enumerate(first.sheets):
        try:
            table = (
                first if index == 0 else read_xlsx(path, options.chunk_rows, index, options.limits)
            )
        except InputTooLarge:
            raise
        except UnreadableInput:
            notes.append(_not_audited(path.name, title, "空表或无表头", "empty, or no header row"))
            continue
        words = Vocabulary.of(book)
        keys = {
            c.key: c.level for h in table.headers if (c := recognise(h, book, words)) is not None
        }
        if "program_id" in keys and records is None:
            records = table
        elif "award_id" in keys and "item" in keys.values() and details is None:
            details = table
        else:
            what = (
                ("另一张奖补记录表", "another sheet of awards")
                if "program_id" in keys
                else ("既非奖补记录也非明细", "neither awards nor their details")
            )
            notes.append(_not_audited(path.name, title, *what))
    yield records or first
    yield details


def _not_audited(name: str, title: str, zh: str, en: str) -> pl.DataFrame:
    row = {"source": name, "item": title, "message_zh": f"工作表“{title}”未审核：{zh}",
           "message_en": f"Worksheet '{title}' not audited: {en}"}  # fmt: skip
    return F.build(pl.DataFrame([row]), "sheet_not_audited")
