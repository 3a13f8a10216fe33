"""/v1/programs: the catalogue, and check / calculate for one application."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import application_body
from service.decision import decide
from service.engine.base import EngineError
from service.engine.facts import Context
from service.errors import EvaluationFailed
from service.schemas.body import decode_json, validate_body
from service.schemas.programs import ProgramDetail, ProgramSummary, program_detail
from service.schemas.results import CalculateResult, CheckResult, render

router = APIRouter(prefix="/v1/programs", tags=["programs"])
ProgramId = Annotated[
    str, Path(description="项目编号 / program id", examples=["ipa2022-art19"], max_length=100)
]


@router.get("", response_model=list[ProgramSummary], summary="列出项目 / List programs")
async def list_programs(rt: RuntimeDep) -> list[dict[str, Any]]:
    return [p.summary() for p in rt.book.programs.values()]


@router.get(
    "/{program_id}",
    response_model=ProgramDetail,
    summary="项目详情：参数与条件 / One program: parameters and conditions",
    responses={404: {"description": "未知项目 / unknown program"}},
)
async def get_program(program_id: ProgramId, rt: RuntimeDep) -> dict[str, Any]:
    return program_detail(rt.program(program_id))


async def _evaluate(
    program_id: str, request: Request, rt: Runtime, with_award: bool
) -> JSONResponse:
    program = rt.program(program_id)
    application = validate_body(
        program.form, decode_json(await request.body(), rt.settings.max_body_bytes)
    )
    context = Context(disqualified=application.applicant.uscc in rt.disqualified)
    try:
        decision = decide(program, application, rt.evaluator, rt.book.version, context)
    except EngineError as exc:
        raise EvaluationFailed() from exc
    return JSONResponse(render(decision, with_award))


@router.post(
    "/{program_id}/check",
    response_model=CheckResult,
    summary="资格审查 / Eligibility only",
    openapi_extra=application_body(),
    responses={
        404: {"description": "未知项目 / unknown program"},
        422: {"description": "请求有误 / bad field"},
    },
)
async def check(program_id: ProgramId, request: Request, rt: RuntimeDep) -> JSONResponse:
    return await _evaluate(program_id, request, rt, with_award=False)


@router.post(
    "/{program_id}/calculate",
    response_model=CalculateResult,
    summary="资格、奖补金额与拨付计划 / Eligibility, award and disbursement",
    openapi_extra=application_body(),
    responses={
        404: {"description": "未知项目 / unknown program"},
        422: {"description": "请求有误 / bad field"},
    },
)
async def calculate(program_id: ProgramId, request: Request, rt: RuntimeDep) -> JSONResponse:
    return await _evaluate(program_id, request, rt, with_award=True)
