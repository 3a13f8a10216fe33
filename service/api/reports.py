"""/v1/applications/{id}/reports: a stored project's mid-term and acceptance reports
(append-only), each evaluated against its program's targets under the rules in force and
stamped with their version; and where the project's tranches stand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import Session

from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import json_body
from service.api.performance import judge_report, reported_json
from service.api.strict import JSON_BODY, read_json
from service.auth.guard import require
from service.auth.roles import Principal, Role
from service.db import applications as applications_repo
from service.db import disqualifications
from service.db import reports as repo
from service.db.models import MAX_ID, Application
from service.errors import Conflict, NotFound
from service.performance.consistency import EarlierReport
from service.schemas.body import validate_body
from service.schemas.performance import ReportRequest, ReportsOut, StoredReport
from service.stage_reports import tranches

router = APIRouter(prefix="/v1/applications", tags=["applications"])
ApplicationId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="申报编号 / application id", examples=[1])
]
Reader = Annotated[Principal, Depends(require(Role.reviewer, Role.portal))]
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "未知申报 / unknown application"},
    409: {"description": "按现行表单已存内容无效 / the stored application is no longer valid"},
    422: {"description": "请求有误 / bad field"},
}


def _readable(session: Session, application_id: int, reader: Principal) -> Application:
    stored = applications_repo.get(session, application_id)
    if not reader.may_read(stored.applicant_uscc):
        raise NotFound("申报", "application", application_id)
    return stored


def _listing(rt: Runtime, application_id: int, reader: Principal) -> dict[str, Any]:
    with rt.db.transaction(write=False) as session:
        stored = _readable(session, application_id, reader)
        return {
            "application_id": application_id,
            "reports": [repo.view(r) for r in repo.of_application(session, application_id)],
            "tranches": tranches(session, stored),
        }


# They run on any stored application: ``reported`` names the program's targets by id (see
# ``targets`` in GET /v1/programs/{id}), e.g. {"results-listed": "56项"} for a 2023 概念验证中心.
REPORT_EXAMPLES = {
    "acceptance": {
        "summary": "验收报告（reported 按项目目标编号填写） / an acceptance report",
        "value": {
            "stage": "acceptance",
            "reported": {},
            "period_ends_on": "2026-12-31",
            "reported_on": "2027-03-15",
        },
    },
    "mid_term": {
        "summary": "中期报告 / a mid-term report",
        "value": {"stage": "mid_term", "reported": {}, "reported_on": "2025-12-20"},
    },
}


@router.post(
    "/{application_id}/reports",
    status_code=201,
    response_model=StoredReport,
    summary="提交阶段报告（中期、验收） / Submit a stage report (mid-term, acceptance)",
    description=(
        "按现行规则对照绩效目标评估并存储（只增不改，注明规则版本）；与此前报告不一致（累计数"
        "下降、同阶段数值改变）为警告。 / Evaluated against the program's targets under the "
        "rules in force and stored (append-only, with the rules version); a cumulative figure "
        "lower than an earlier report's, or a figure changed within a stage, is a warning."
    ),
    openapi_extra=json_body(ReportRequest, REPORT_EXAMPLES, "阶段报告 / the report"),
    responses={**RESPONSES, **JSON_BODY},
)
async def submit_report(
    application_id: ApplicationId, request: Request, rt: RuntimeDep, reader: Reader
) -> JSONResponse:
    body = validate_body(ReportRequest, await read_json(request, rt.settings.max_body_bytes))

    def work() -> dict[str, Any]:
        with rt.db.transaction() as session:
            stored = _readable(session, application_id, reader)
            program = rt.program(stored.program_id)
            try:
                application = program.form.model_validate(stored.request)
            except ValidationError as exc:
                raise Conflict(
                    "已存申报按现行表单无效，不能评估报告",
                    "The stored application is not valid under the current form",
                ) from exc
            earlier = [
                EarlierReport(r.id or 0, r.stage, r.reported)
                for r in repo.of_application(session, application_id)
            ]
            listed = disqualifications.is_disqualified(session, application.applicant.uscc)
            result = judge_report(rt, program, application, body, earlier, listed)
            row = repo.add(
                session,
                application_id,
                body.stage,
                reported_json(body),
                dict(body.task_book),
                body.reported_on,
                body.period_ends_on,
                rt.book.version,
                result["passed"],
                result,
                reader.key_id,
            )
            return repo.view(row)

    return JSONResponse(await run_in_threadpool(work), status_code=201)


@router.get(
    "/{application_id}/reports",
    response_model=ReportsOut,
    summary="阶段报告与各期拨款状态 / Stage reports and where the tranches stand",
    responses=RESPONSES,
)
def list_reports(application_id: ApplicationId, rt: RuntimeDep, reader: Reader) -> JSONResponse:
    return JSONResponse(_listing(rt, application_id, reader))
