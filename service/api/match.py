"""/v1/match: every program in force on a date, for an organisation described by the facts
known so far (政策计算器): eligible, ineligible with the failed conditions, or what it needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ValidationError

from service.api.deps import Runtime, RuntimeDep
from service.api.openapi import json_body
from service.auth.guard import open_access
from service.engine.facts import SHANGHAI
from service.errors import InvalidRequest
from service.match import in_force, match, partial_facts
from service.schemas.body import decode_json, error_detail, path_of, validate_body
from service.schemas.match import MatchRequest, MatchResult, render_match
from service.schemas.partial import field_paths, partial_model

router = APIRouter(prefix="/v1", tags=["match"], dependencies=[Depends(open_access)])

EXAMPLES = {
    "university": {
        "summary": "一所高校，只知单位信息 / a university, only its profile known",
        "value": {
            "applicant": {
                "entity_type": "university",
                "registered_in_shanghai": True,
                "operating_status": "normal",
                "credit_status": "good",
            },
            "on": "2023-03-01",
        },
    }
}


@router.post(
    "/match",
    response_model=MatchResult,
    summary="可申报项目匹配 / Which programs an organisation can apply to",
    description=(
        "按已知信息逐项判断：eligible（条件均满足）、ineligible（无论缺失信息为何均不满足，附条款）、"
        "needs（列出尚缺的信息）；附最高可得金额与申报时间。 / For each program in force on `on`: "
        "eligible, ineligible (with the failed conditions and articles) or needs (the facts "
        "still missing), with the most it can pay and its application window."
    ),
    openapi_extra=json_body(MatchRequest, EXAMPLES, "已知信息，均可缺 / whatever is known"),
)
async def match_programs(request: Request, rt: RuntimeDep) -> dict[str, Any]:
    query = validate_body(
        MatchRequest, decode_json(await request.body(), rt.settings.max_body_bytes)
    )
    on = query.on or datetime.now(SHANGHAI).date()
    partials = _partials(rt, query)
    # Every form's applicant is the same model: any partial form gives the validated USCC.
    applicant = getattr(next(iter(partials.values()), None), "applicant", None)
    uscc = getattr(applicant, "uscc", None)
    disqualified = None if uscc is None else uscc in rt.disqualified
    matches = []
    for program in rt.book.programs.values():
        if not (query.include_closed or in_force(program, on)):
            continue
        facts = partial_facts(program, partials[program.form_name], on, disqualified)
        matches.append(match(program, facts, on))
    return render_match(matches, on, rt.book.version, rt.book.forms)


def _partials(rt: Runtime, query: MatchRequest) -> dict[str, BaseModel]:
    """The body read as a partial form of each family; a field no form has, or a value its
    form refuses, is a 422 naming it."""
    forms = rt.book.forms.forms
    known: dict[str, bool] = {}
    for form in forms.values():
        known.update(field_paths(form))
    detail = _unknown(query.applicant, "applicant.", ("applicant",), known)
    detail += _unknown(query.facts, "", ("facts",), known)
    body = {**query.facts, "applicant": query.applicant}
    out: dict[str, BaseModel] = {}
    seen: set[str] = set()
    for form_id, form in forms.items():
        try:
            out[form_id] = partial_model(form).model_validate(body)
        except ValidationError as exc:
            for item in error_detail(exc, (), partial_model(form)):
                where = () if item["loc"][:1] == ["applicant"] else ("facts",)
                item["loc"] = ["body", *where, *item["loc"]]
                item["path"] = ".".join((*where, item["path"]))
                if item["path"] not in seen:
                    seen.add(item["path"])
                    detail.append(item)
    if detail:
        raise InvalidRequest(detail)
    return out


def _unknown(
    data: Any, prefix: str, loc: tuple[str | int, ...], known: dict[str, bool]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(data, dict):
        return out
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path not in known:
            out.append(
                {
                    "loc": ["body", *loc, key],
                    "path": path_of((*loc, key)),
                    "type": "extra_forbidden",
                    "msg": "没有这个字段 / Extra inputs are not permitted",
                    "message_zh": "没有这个字段（所有申报表均无此字段）",
                    "message_en": "No such field (no program's form has it)",
                }
            )
        elif known[path] and isinstance(value, list):
            for index, item in enumerate(value):
                out += _unknown(item, f"{path}.", (*loc, key, index), known)
        elif known[path]:
            out += _unknown(value, f"{path}.", (*loc, key), known)
    return out
