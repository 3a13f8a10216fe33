"""Operations: structured logs with a request id, metrics, readiness (installed by service.main)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Wire logging, request ids and metrics into ``app`` (called once by create_app)."""
