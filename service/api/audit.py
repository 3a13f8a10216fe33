"""POST /v1/audit: audit past awards (batch), the same engine as ``python -m service.audit``.

Send the awards file as a multipart upload (field ``file``: .csv, .xlsx or .jsonl; optional
``details``: their items), or JSON Lines as the body. The answer is the JSON report: totals,
per program awarded against allowed, and every finding. The route only moves bytes to a
temporary folder and back: the audit itself is service.audit.
"""

from __future__ import annotations

import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from service.api.deps import RuntimeDep
from service.audit.context import ISSUE_WITHIN_DAYS, AuditOptions
from service.audit.readers import UnreadableInput
from service.audit.report import report_json
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
        200: {"model": AuditReport, "description": "审计报告 / the audit report"},
        413: {"description": "文件过大 / file too large"},
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
) -> JSONResponse:
    options = AuditOptions(issue_within_days=issue_within_days, tier_amounts=_tiers(tier_amounts))
    with tempfile.TemporaryDirectory(prefix="audit-upload-") as tmp:
        records, details = await _inputs(request, Path(tmp), rt.settings.max_audit_bytes)
        try:
            result = await run_in_threadpool(
                run_audit, rt.book, records, details, rt.disqualified, options
            )
        except UnreadableInput as exc:
            raise UnreadableAudit(str(exc)) from exc
        except UnicodeDecodeError as exc:  # a binary file sent as CSV or JSON Lines
            raise UnreadableAudit(f"not text in any known encoding ({exc.reason})") from exc
        except RecursionError as exc:  # json's guard: a JSON Lines line nested ~1,000 deep
            raise UnreadableAudit("a line is nested too deeply") from exc
        except ValueError as exc:
            # Python's int-digits limit (4,300) while a JSON Lines line is decoded; any other
            # ValueError is a bug and stays a 500.
            if "integer string conversion" not in str(exc):
                raise
            raise UnreadableAudit("a number has too many digits") from exc
        report: dict[str, Any] = report_json(rt.book, result)
    return JSONResponse(report)
