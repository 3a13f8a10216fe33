"""OpenAPI: the request forms as components, a runnable Chinese example per program, stable
operation ids (so the committed openapi.yaml diffs stay readable).

The forms and examples are the loaded rules' (``rules/**/_forms.yaml``, ``rules/*/examples``):
routes declared at import time write a placeholder (``FORMS`` / ``PROGRAM_EXAMPLES``) that
``build_openapi`` replaces with those of the app's rule book.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.rules.loader import RuleBook

REF = "#/components/schemas/{model}"
PLACEHOLDER = "x-from-rules"
FORMS: dict[str, Any] = {PLACEHOLDER: "forms"}  # becomes {"oneOf": [every form]}
PROGRAM_EXAMPLES: dict[str, Any] = {PLACEHOLDER: "examples"}  # becomes each program's example
# Other placeholders (``{PLACEHOLDER: name}``): name -> how to build it from the rule book.
FILLERS: dict[str, Callable[[RuleBook], Any]] = {}


def forms_one_of(book: RuleBook) -> dict[str, Any]:
    return {"oneOf": [{"$ref": REF.format(model=m.__name__)} for m in book.forms.forms.values()]}


def program_examples(book: RuleBook) -> dict[str, dict[str, Any]]:
    """program id -> {"summary", "value"}: requests a reviewer can run from Swagger UI as they are."""
    return {pid: e.openapi() for pid, e in sorted(book.examples.items())}


def with_failing_examples(book: RuleBook) -> dict[str, dict[str, Any]]:
    """Each program's passing example, and beside it the failing one (``<id>-failing``)."""
    out: dict[str, dict[str, Any]] = {}
    for pid, e in sorted(book.examples.items()):
        out[pid] = e.openapi()
        if e.failing is not None:
            out[f"{pid}-failing"] = e.failing.openapi()
    return out


FILLERS["forms"] = forms_one_of
FILLERS["examples"] = with_failing_examples


def _fill(node: Any, book: RuleBook) -> Any:
    if isinstance(node, dict):
        if set(node) == {PLACEHOLDER}:
            return FILLERS[node[PLACEHOLDER]](book)
        if PLACEHOLDER in node:  # a placeholder beside other keys (a description)
            rest = {k: _fill(v, book) for k, v in node.items() if k != PLACEHOLDER}
            return {**rest, **FILLERS[node[PLACEHOLDER]](book)}
        return {k: _fill(v, book) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, book) for v in node]
    return node


def application_body() -> dict[str, Any]:
    """The request body of check / calculate: one form per family, chosen by the program id."""
    return {
        "requestBody": {
            "required": True,
            "description": "申报材料，字段随项目所属表单而定 / the application; its form depends on the program",
            "content": {
                "application/json": {
                    "schema": dict(FORMS),
                    "examples": dict(PROGRAM_EXAMPLES),
                }
            },
        }
    }


# Request models of bodies read with decode_json (exact decimals): their schemas are added to
# the components by build_openapi.
BODY_MODELS: list[type[BaseModel]] = []


def json_body(model: type[BaseModel], examples: dict[str, Any], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a body validated by ``validate_body(model, ...)`` in the route."""
    if model not in BODY_MODELS:
        BODY_MODELS.append(model)
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model=model.__name__)},
                    "examples": examples,
                }
            },
        }
    }


def operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    book: RuleBook = app.state.runtime.book
    models = [*book.forms.forms.values(), *BODY_MODELS]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in defs.get("$defs", {}).items():
        components.setdefault(name, definition)
    components["Problem"] = PROBLEM_SCHEMA
    for context in routing.iter_route_contexts(app.routes):
        route: Any = context  # an APIRoute as mounted (prefix and router dependencies applied)
        if isinstance(context.original_route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                operation = schema["paths"][route.path_format][method.lower()]
                _document_access(operation, _roles(route.dependant))
                _document_problems(operation)
    schema = _fill(schema, book)
    app.openapi_schema = schema
    return schema


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": (
        "RFC 9457 问题详情，中英文 / RFC 9457 problem details, in Chinese and English. For 422, "
        "``detail`` lists each bad field with its ``path`` (``transactions[2].patent_number``)."
    ),
    "required": ["type", "title", "status", "code", "message_zh", "message_en"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "instance": {"type": "string"},
        "code": {"type": "string", "examples": ["unknown_program"]},
        "message_zh": {"type": "string"},
        "message_en": {"type": "string"},
    },
    "additionalProperties": True,
}
PROBLEMS = {
    "401": "缺少或无效的API密钥 / no valid API key",
    "403": "该角色无权执行 / the key's role may not do this",
    "404": "未找到 / not found",
    "413": "请求内容过大 / body too large",
    "422": "请求有误，detail 逐项列出字段路径 / bad input, each field by its path",
    "429": "匿名请求过于频繁 / too many anonymous requests",
    "500": "服务内部错误 / internal error",
}


OPEN_NOTE = (
    "\n\n开放接口，无需API密钥；匿名请求限流，带密钥（X-API-Key）不限流。 / Open: no API key "
    "needed; anonymous calls are rate-limited, calls with a key (X-API-Key) are not."
)
# Swagger UI groups operations by tag: each tag's Chinese and English name and what it holds.
TAGS = [
    {
        "name": "programs",
        "description": "项目目录、资格审查与金额计算 / Programs: catalogue, check, calculate",
    },
    {
        "name": "match",
        "description": "可申报项目匹配（政策计算器） / Which programs an organisation can apply to",
    },
    {
        "name": "applications",
        "description": "申报的提交、评估与审批 / Stored applications, evaluations, approvals",
    },
    {"name": "rounds", "description": "评审轮次与资金分配 / Funding rounds and allocation"},
    {
        "name": "performance",
        "description": "绩效目标与绩效评价 / Performance targets and evaluation score sheets",
    },
    {"name": "audit", "description": "批量审计 / Batch audit of spreadsheets"},
    {
        "name": "admin",
        "description": "管理：取消资格名单、API密钥与审计日志 / Administration: disqualification "
        "list, API keys, audit log",
    },
    {"name": "health", "description": "运行状态 / Liveness and readiness"},
]


def _roles(dependant: Any) -> list[str] | None:
    """The roles a route's guard admits (service.auth.guard.require), or None if it is open."""
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "allowed_roles", None)
        if roles is not None:
            return list(roles)
        found = _roles(dep)
        if found is not None:
            return found
    return None


def _document_access(operation: dict[str, Any], roles: list[str] | None) -> None:
    responses = operation.setdefault("responses", {})
    if roles is None:
        if "security" in operation:  # open, rate-limited for anonymous callers; a key is optional
            # No lock in Swagger UI: nothing is needed to call it (a key only lifts the limit).
            del operation["security"]
            operation["description"] = (operation.get("description", "") + OPEN_NOTE).strip()
            responses.setdefault("429", {"description": PROBLEMS["429"]})
        return
    operation["x-roles"] = roles
    operation["description"] = (
        operation.get("description", "") + f"\n\n角色 / roles: {', '.join(roles)}"
    ).strip()
    responses.setdefault("401", {"description": PROBLEMS["401"]})
    responses.setdefault("403", {"description": PROBLEMS["403"]})


def _document_problems(operation: dict[str, Any]) -> None:
    """Every 4xx and 5xx answer is a Problem; each operation may be refused as too large or
    malformed, and any may fail."""
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation:
        responses.setdefault("413", {"description": PROBLEMS["413"]})
    if operation.get("parameters") or "requestBody" in operation:
        responses.setdefault("422", {"description": PROBLEMS["422"]})
    responses.setdefault("500", {"description": PROBLEMS["500"]})
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {
                "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
            }
