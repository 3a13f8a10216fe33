"""Errors are types: each carries its HTTP status and a message in Chinese and English, and
one handler (service.main) renders them all."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
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
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            **self.extra,
        }


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
            f"{what_en.capitalize()} {record_id} not found",
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
