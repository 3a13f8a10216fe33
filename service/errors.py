"""Errors are types: each carries its HTTP status and a message in Chinese and English, and
one set of handlers (service.api.problems) renders them all as RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

PROBLEM_TYPE = "https://subsidy-rules.invalid/problems/{code}"
PROBLEM_JSON = "application/problem+json"
# RFC 9457 ``title``: one per kind of problem, never per occurrence (``detail`` says what happened).
STATUS_TITLES = {
    400: "请求有误 / Bad request",
    401: "需要API密钥 / Authentication required",
    403: "无权执行该操作 / Forbidden",
    404: "未找到 / Not found",
    405: "不支持该方法 / Method not allowed",
    409: "与已存内容冲突 / Conflict",
    413: "请求内容过大 / Request body too large",
    415: "不支持的内容类型 / Unsupported media type",
    422: "请求内容有误 / Unprocessable request",
    429: "请求过于频繁 / Too many requests",
    500: "服务内部错误 / Internal error",
    503: "服务暂不可用 / Service unavailable",
}


class ServiceError(Exception):
    """Rendered as RFC 9457 problem details: ``type``, ``title``, ``status``, ``detail`` (plus
    ``instance``, set by the handler), and our extension members ``code``, ``message_zh`` and
    ``message_en`` and whatever the error adds (``limit``, ``program_id`` ...)."""

    status_code = 500
    code = "internal_error"
    message_zh = "服务内部错误"
    message_en = "Internal error"

    def __init__(self, message_zh: str | None = None, message_en: str | None = None, **extra: Any):
        super().__init__(message_en or self.message_en)
        if message_zh:
            self.message_zh = message_zh
        if message_en:
            self.message_en = message_en
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE.format(code=self.code),
            "title": STATUS_TITLES.get(self.status_code, STATUS_TITLES[500]),
            "status": self.status_code,
            "detail": f"{self.message_zh} / {self.message_en}",
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            **self.extra,
        }

    def headers(self) -> dict[str, str]:
        return {}


class UnknownProgram(ServiceError):
    status_code = 404
    code = "unknown_program"

    def __init__(self, program_id: str) -> None:
        super().__init__(
            f"未知项目：{program_id}", f"Unknown program: {program_id}", program_id=program_id
        )


class InvalidRequest(ServiceError):
    """422: the body is not a well-formed application; ``detail`` names each bad field."""

    status_code = 422
    code = "invalid_request"
    message_zh = "请求内容有误，请按 detail 中列出的字段修改"
    message_en = "The request is malformed; see detail for each bad field"

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail=detail)


class BodyTooLarge(ServiceError):
    status_code = 413
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"请求内容超过 {limit} 字节上限",
            f"The request body exceeds the {limit}-byte limit",
            limit=limit,
        )


class DatabaseUnavailable(ServiceError):
    """503: the database does not answer (or not usably): the request may be retried; it is
    the outage /readyz reports, not a fault in the request or the code."""

    status_code = 503
    code = "database_unavailable"
    message_zh = "数据库暂不可用，请稍后重试"
    message_en = "The database is unavailable; please retry later"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class UnsupportedMediaType(ServiceError):
    """415: a body whose Content-Type is not one the route reads (never guessed at)."""

    status_code = 415
    code = "unsupported_media_type"

    def __init__(self, content_type: str | None, accepted: list[str]) -> None:
        sent = content_type or "无 / none"
        super().__init__(
            f"不支持的内容类型：{sent}；请发送 {'、'.join(accepted)}",
            f"Unsupported Content-Type: {content_type or 'none'}; send {', '.join(accepted)}",
            content_type=content_type,
            accepted=accepted,
        )


class EvaluationFailed(ServiceError):
    """The engine could not answer: never shown as a partial or guessed decision."""

    status_code = 500
    code = "evaluation_failed"
    message_zh = "规则引擎未能给出可靠结果，请稍后重试"
    message_en = "The rules engine could not produce a reliable answer; please retry"


class NotFound(ServiceError):
    """404: a stored record (application, round, list entry) that does not exist."""

    status_code = 404
    code = "not_found"

    def __init__(self, what_zh: str, what_en: str, record_id: int | str) -> None:
        super().__init__(
            f"未找到{what_zh}：{record_id}",
            f"{what_en[:1].upper()}{what_en[1:]} {record_id} not found",
            resource=what_en,
            id=record_id,
        )


class Conflict(ServiceError):
    """409: the request contradicts what is already stored."""

    status_code = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"

    def __init__(self, key: str, application_id: int) -> None:
        super().__init__(
            "该幂等键已用于内容不同的申报；重试时请发送完全相同的请求，新申报请使用新的键",
            "This Idempotency-Key was used for a different request body; retry with the same "
            "body, or use a new key for a new application",
            idempotency_key=key,
            application_id=application_id,
        )


class QuotaExceeded(Conflict):
    """A hard quota (不超过N, 各区1家) would be exceeded: the reviewers choose, never the service."""

    code = "quota_exceeded"


class Unauthenticated(ServiceError):
    """401: no API key, or one that is unknown or revoked."""

    status_code = 401
    code = "unauthenticated"
    message_zh = "需要有效的API密钥（请求头 X-API-Key）"
    message_en = "A valid API key is required (header X-API-Key)"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}


class Forbidden(ServiceError):
    """403: the key is valid but its role may not do this."""

    status_code = 403
    code = "forbidden"

    def __init__(self, role: str, allowed: list[str]) -> None:
        super().__init__(
            f"角色 {role} 无权执行该操作（需要：{'、'.join(allowed)}）",
            f"The role {role} may not do this (needs: {', '.join(allowed)})",
            role=role,
            allowed_roles=allowed,
        )


class RateLimited(ServiceError):
    """429: an anonymous client, or one API key, asked more often than its limit allows."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: int, keyed: bool = False) -> None:
        if keyed:
            zh = f"该API密钥的请求过于频繁，请 {retry_after_s} 秒后重试"
            en = f"Too many requests with this API key; retry in {retry_after_s} s"
        else:
            zh = f"匿名请求过于频繁，请 {retry_after_s} 秒后重试，或使用API密钥"
            en = f"Too many anonymous requests; retry in {retry_after_s} s, or use an API key"
        super().__init__(zh, en, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class HttpProblem(ServiceError):
    """What the router itself refuses: an unknown path (404), a wrong method (405) ..."""

    MESSAGES: ClassVar[dict[int, tuple[str, str]]] = {
        404: ("没有这个地址", "No such path"),
        405: ("该地址不支持此方法", "This path does not support the method"),
    }

    def __init__(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status
        self.code = {404: "no_such_path", 405: "method_not_allowed"}.get(status, f"http_{status}")
        title_zh, _, title_en = STATUS_TITLES.get(status, " / ").partition(" / ")
        zh, en = self.MESSAGES.get(status, (title_zh, title_en or HTTPStatus(status).phrase))
        super().__init__(zh, en)
        self._headers = dict(headers or {})

    def headers(self) -> dict[str, str]:
        return self._headers


class NotBound(ServiceError):
    """403: a portal submitting for an applicant it is not bound to."""

    status_code = 403
    code = "not_bound_to_applicant"

    def __init__(self, uscc: str) -> None:
        super().__init__(
            f"该API密钥未绑定申报单位 {uscc}，不能为其提交申报",
            f"This API key is not bound to the applicant {uscc} and cannot submit for it",
            uscc=uscc,
        )
