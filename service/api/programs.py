"""/v1/programs: the catalogue, and check / calculate for one application."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from service import awards
from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import application_body
from service.api.strict import JSON_BODY, read_body, read_json
from service.auth.guard import open_access
from service.errors import EvaluationFailed
from service.evaluation import BrokenProcessPool, Cancelled, evaluate
from service.money import fmt
from service.observability import count_evaluation
from service.schemas.body import validate_body
from service.schemas.programs import ProgramDetail, ProgramSummary, program_detail
from service.schemas.results import CalculateResult, CheckResult
from service.schemas.types import Money

router = APIRouter(prefix="/v1/programs", tags=["programs"], dependencies=[Depends(open_access)])
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


async def _evaluate(program_id: str, request: Request, rt: Runtime, with_award: bool) -> Response:
    """The loop reads the body and writes the answer; the rest (service.evaluation) runs in a
    worker thread, or for a large body in a worker process, so that a 5,000-item application
    never holds up other requests (``/healthz`` among them)."""
    program = rt.program(program_id)
    raw = await read_body(request)
    limit = rt.settings.max_body_bytes
    snapshot = rt.access.current()
    if snapshot is not None and rt.workers.takes(raw):
        future = rt.workers.submit(program.id, raw, snapshot.disqualified, with_award, limit)
        try:
            answer = await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            rt.workers.broken()
            raise EvaluationFailed() from exc
        except asyncio.CancelledError:
            if not future.cancelled():
                raise  # the request itself was cancelled (the client hung up)
            raise Cancelled() from None  # an admin cancelled it (/v1/admin/work)
        eligible, body = rt.workers.outcome(answer)
    else:
        eligible, body = await run_in_threadpool(
            evaluate,
            program,
            raw,
            rt.disqualified,
            rt.evaluator,
            rt.book.version,
            with_award,
            limit,
        )
    count_evaluation(request.app, program.id, eligible)
    return Response(body, media_type="application/json")


@router.post(
    "/{program_id}/check",
    response_model=CheckResult,
    summary="资格审查 / Eligibility only",
    openapi_extra=application_body(),
    responses={
        **JSON_BODY,
        404: {"description": "未知项目 / unknown program"},
        422: {"description": "请求有误 / bad field"},
    },
)
async def check(program_id: ProgramId, request: Request, rt: RuntimeDep) -> Response:
    return await _evaluate(program_id, request, rt, with_award=False)


@router.post(
    "/{program_id}/calculate",
    response_model=CalculateResult,
    summary="资格、奖补金额与拨付计划 / Eligibility, award and disbursement",
    openapi_extra=application_body(),
    responses={
        **JSON_BODY,
        404: {"description": "未知项目 / unknown program"},
        422: {"description": "请求有误 / bad field"},
    },
)
async def calculate(program_id: ProgramId, request: Request, rt: RuntimeDep) -> Response:
    return await _evaluate(program_id, request, rt, with_award=True)


class RequirementsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requested_amount: Money = Field(
        description="希望获得的市级支持金额 / the amount the applicant wants"
    )


class Need(BaseModel):
    name: str = Field(examples=["min_self_funds"])
    article: str
    message_zh: str
    message_en: str
    minimum: str = Field(examples=["4000000.00"])


class RequirementsResult(BaseModel):
    program_id: str
    rules_version: str
    requested_amount: str
    award: str = Field(description="封顶后的金额 / the amount after the cap")
    needs: list[Need]


@router.post(
    "/{program_id}/requirements",
    response_model=RequirementsResult,
    summary="反推：申请某金额所需的最低自筹与区级配套 / What a wanted amount needs",
    description=(
        "给定希望申请的金额，返回所需的最低自筹经费（按自筹比例）与区级配套资金（不低于市级支持额度）。"
        " / For a wanted amount: the minimum own funds (by the self-funding ratio) and district "
        "matching funds (at least the municipal support) it needs."
    ),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "examples": {
                        "stcsm2022-concept-verification": {
                            "summary": "stcsm2022-concept-verification：申请200万元",
                            "value": {"requested_amount": "2000000.00"},
                        }
                    }
                }
            }
        }
    },
    responses={
        **JSON_BODY,
        404: {"description": "未知项目 / unknown program"},
        422: {"description": "请求有误 / bad field"},
    },
)
async def requirements(program_id: ProgramId, request: Request, rt: RuntimeDep) -> dict[str, Any]:
    program = rt.program(program_id)
    query = validate_body(RequirementsQuery, await read_json(request, rt.settings.max_body_bytes))
    result = awards.requirements(program, query.requested_amount)
    return {
        "program_id": program.id,
        "rules_version": rt.book.version,
        "requested_amount": fmt(result["requested_amount"]),
        "award": fmt(result["award"]),
        "needs": [
            {
                "name": n["name"],
                "article": n["article"],
                "message_zh": n["zh"],
                "message_en": n["en"],
                "minimum": fmt(n["minimum"]),
            }
            for n in result["needs"]
        ],
    }
