"""POST /v1/audit: audit past awards (batch), the same engine as ``python -m service.audit``.

Send the awards file as a multipart upload (field ``file``: .csv, .xlsx or .jsonl; optional
``details``: their items), or JSON Lines as the body. The answer is the JSON report: totals,
per program awarded against allowed, and every finding. The route only moves bytes to a
temporary folder and back: the audit itself is service.audit.
"""

from __future__ import annotations

import tempfile
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from service.api.deps import RuntimeDep
from service.audit.context import ISSUE_WITHIN_DAYS, AuditOptions
from service.audit.readers import InputTooLarge, UnreadableInput, limits_of
from service.audit.report import render_html, report_json, write_xlsx
from service.audit.run import run_audit
from service.auth.guard import require
from service.auth.roles import Role
from service.errors import BodyTooLarge, ServiceError

router = APIRouter(prefix="/v1", tags=["audit"], dependencies=[Depends(require(Role.auditor))])
SUFFIXES = {".csv", ".xlsx", ".xlsm", ".jsonl", ".ndjson", ".json", ".txt", ".tsv"}


class UnreadableAudit(ServiceError):
    """422: the uploaded file cannot be read as an audit file at all."""

    status_code = 422
    code = "unreadable_audit_input"

    def __init__(self, reason: str) -> None:
        super().__init__(f"无法读取审计文件：{reason}", f"Cannot read the audit file: {reason}")


class AuditInputTooLarge(ServiceError):
    """413: the uploaded file is past a limit on audit inputs (AUDIT_MAX_…)."""

    status_code = 413
    code = "audit_input_too_large"

    def __init__(self, reason: str) -> None:
        super().__init__(f"审计文件超过限制：{reason}", f"The audit file is past a limit: {reason}")


class AuditsBusy(ServiceError):
    """503: as many audits as AUDIT_MAX_CONCURRENT are running."""

    status_code = 503
    code = "audits_busy"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"已有{limit}个审计正在进行，请稍后再试",
            f"{limit} audits are running; try again shortly",
            limit=limit,
        )


class AuditFinding(BaseModel):
    source: str | None = Field(description="文件名 / file name")
    row: int | None = Field(description="行号（表头为第1行）/ row number (the header is row 1)")
    program_id: str | None
    applicant_uscc: str | None
    applicant_name: str | None
    award_id: str | None
    item: str | None = Field(description="明细（如 transactions[2] 专利号）/ the item, if any")
    kind: str = Field(examples=["above_entitlement"])
    severity: str = Field(examples=["error"])
    rule: str | None
    article: str | None = Field(examples=["第十九条"])
    message_zh: str
    message_en: str
    amount_at_stake: str | None = Field(examples=["1500.00"])


class AuditProgram(BaseModel):
    program_id: str
    known: bool
    title_zh: str | None
    title_en: str | None
    article: str | None
    awards: int
    units: int | None
    awarded: str | None
    allowed: str | None = Field(
        description="按规则重算（或封顶）的应得合计 / total the rules allow"
    )
    pool: str | None
    findings: int
    notes: str | None = Field(
        default=None, description="表中说明列（认定部门、备注）/ the table's describing columns"
    )


class AuditReport(BaseModel):
    rules_version: str
    level: str = Field(description="records | program_summary")
    inputs: list[str]
    rows_read: int
    layout: str = Field(
        description="award_order: 文件按奖补编号排序，逐批读取 / files in award order, read side "
        "by side | partitions: 按奖补分区落盘 / rows partitioned by award on disk | summary"
    )
    partitions: int
    seconds: float
    clean: bool
    finding_count: int
    by_severity: dict[str, int]
    by_kind: dict[str, int]
    amount_at_stake: str
    programs: list[AuditProgram]
    findings: list[AuditFinding]


EXAMPLE_JSONL = (
    '{"award_id": "A1", "program_id": "ipa2022-art10-1", "applicant_uscc": "123100004250061179", '
    '"applicant_name": "上海某某大学", "awarded_amount": "350000.00", "awarded_on": "2023-03-20", '
    '"recognised_on": "2023-03-01"}\n'
)


def _tiers(text: str | None) -> dict[int, Decimal] | None:
    if not text:
        return None
    try:
        return {int(t): Decimal(a) for t, _, a in (part.partition("=") for part in text.split(","))}
    except (ValueError, InvalidOperation) as exc:
        raise UnreadableAudit(f"tier_amounts '{text}'") from exc


async def _save(upload: UploadFile, folder: Path, default: str, limit: int) -> Path:
    """Saved under the upload's own name (findings and the report name it), in a folder of
    its own: only the last part of the name is kept, and a name without a known suffix gets
    the default's."""
    name = Path((upload.filename or "").replace("\\", "/")).name.strip() or default
    if Path(name).suffix.lower() not in SUFFIXES:
        name += Path(default).suffix
    own = folder / Path(default).stem
    own.mkdir()
    path = own / name[-200:]
    size = 0
    with path.open("wb") as out:
        while block := await upload.read(1 << 20):
            size += len(block)
            if size > limit:
                raise BodyTooLarge(limit)
            out.write(block)
    return path


async def _inputs(request: Request, folder: Path, limit: int) -> tuple[Path, Path | None]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=2, max_part_size=limit)
        upload, details = form.get("file"), form.get("details")
        if not isinstance(upload, UploadFile):
            raise UnreadableAudit("no file in the form field 'file'")
        path = await _save(upload, folder, "awards.csv", limit)
        return path, await _save(details, folder, "details.csv", limit) if isinstance(
            details, UploadFile
        ) else None
    suffix = ".csv" if "csv" in ctype else ".jsonl"
    path = folder / f"awards{suffix}"
    size = 0
    with path.open("wb") as out:
        async for block in request.stream():
            size += len(block)
            if size > limit:
                raise BodyTooLarge(limit)
            out.write(block)
    return path, None


@router.post(
    "/audit",
    summary="审计过往奖补（批量）/ Audit past awards (batch)",
    description=(
        "上传奖补记录（CSV、Excel .xlsx 或 JSON Lines；中文或英文列名；“万元”列自动换算），"
        "可附明细文件（专利号、贷款、合同）。返回审计报告：每项发现注明行号、条款、中英文说明与涉及金额。"
        " / Upload past awards (CSV, .xlsx or JSON Lines; English or Chinese headers; 万元 columns "
        "scaled) with an optional detail file; returns the audit report: each finding with its "
        "row, article, message in Chinese and English, and the amount at stake."
    ),
    responses={
        200: {
            "model": AuditReport,
            "description": "审计报告（按 Accept：JSON、findings.xlsx 或 HTML 摘要）/ the audit "
            "report: JSON, or findings.xlsx or the HTML summary by Accept",
            "content": {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                "text/html": {},
            },
        },
        413: {"description": "文件过大或超过审计限制 / file too large, or past a limit"},
        503: {"description": "审计并发已满 / as many audits as allowed are running"},
        422: {"description": "文件无法读取 / the file cannot be read"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "details": {"type": "string", "format": "binary"},
                        },
                    }
                },
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": EXAMPLE_JSONL,
                },
            }
        }
    },
)
async def audit(
    request: Request,
    rt: RuntimeDep,
    tier_amounts: Annotated[
        str | None,
        Query(description="第二十一条 本轮各等次金额 / tier amounts: 1=50000,2=30000,3=10000"),
    ] = None,
    issue_within_days: Annotated[
        int, Query(ge=0, le=3650, description="认定后应在几天内下达资金 / days to issue funds")
    ] = ISSUE_WITHIN_DAYS,
) -> Response:
    settings = rt.settings
    options = AuditOptions(
        issue_within_days=issue_within_days,
        tier_amounts=_tiers(tier_amounts),
        limits=limits_of(settings),
        max_seconds=settings.audit_max_seconds,
    )
    slots = _slots(request, settings.audit_max_concurrent)
    if not slots.acquire(blocking=False):
        raise AuditsBusy(settings.audit_max_concurrent)
    try:
        with tempfile.TemporaryDirectory(prefix="audit-upload-") as tmp:
            records, details = await _inputs(request, Path(tmp), settings.max_audit_bytes)
            try:
                result = await run_in_threadpool(
                    run_audit, rt.book, records, details, rt.disqualified, options
                )
            except InputTooLarge as exc:
                raise AuditInputTooLarge(str(exc)) from exc
            except UnreadableInput as exc:
                raise UnreadableAudit(str(exc)) from exc
            wanted = _wanted(request.headers.get("accept", ""))
            if wanted == XLSX:
                path = Path(tmp) / "findings.xlsx"
                await run_in_threadpool(write_xlsx, rt.book, result, path)
                return Response(
                    path.read_bytes(),
                    media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="findings.xlsx"'},
                )
            if wanted == "text/html":
                page = await run_in_threadpool(render_html, rt.book, result)
                return HTMLResponse(page)
            report: dict[str, Any] = report_json(rt.book, result)
    finally:
        slots.release()
    return JSONResponse(report)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _wanted(accept: str) -> str:
    """The report's form the caller asks for first: the .xlsx, the HTML page or JSON."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in (XLSX, "text/html", "application/json"):
            return media
    return "application/json"


def _slots(request: Request, size: int) -> threading.BoundedSemaphore:
    """The app's audit slots (AUDIT_MAX_CONCURRENT), made on the first audit (in the event
    loop's thread, with no await between the look and the making: made once)."""
    state = request.app.state
    if getattr(state, "audit_slots", None) is None:
        state.audit_slots = threading.BoundedSemaphore(size)
    slots: threading.BoundedSemaphore = state.audit_slots
    return slots
