"""The app: load and compile the rules once, wire routes and error handlers, serve docs offline."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from service.api import (
    admin,
    applications,
    audit,
    audit_log,
    health,
    keys,
    match,
    problems,
    programs,
    rounds,
    work,
)
from service.api.bodylimit import BodyLimit
from service.api.deps import Runtime
from service.api.openapi import TAGS, build_openapi, operation_id, program_examples
from service.api.performance import router as performance_router
from service.api.reports import router as reports_router
from service.api.strict import reject_unknown_query
from service.auth.ratelimit import RateLimiter
from service.config import Settings, get_settings
from service.db import Database, migrate
from service.db.cache import AccessCache
from service.db.disqualifications import StoredDisqualificationList, seed
from service.disqualification import DisqualificationList
from service.engine.base import Evaluator
from service.engine.durable_eval import DurableEvaluator
from service.engine.python_eval import PythonEvaluator
from service.evaluation import HeavyPolicy, WorkerPool
from service.observability import install as install_observability
from service.observability.canary import Canary
from service.rules.loader import load_rules

log = logging.getLogger("service")
SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"

DESCRIPTION = """
上海市知识产权运营与科技成果转移转化资助规则服务。每项条件与上限均注明条款。

Rules-as-code for Shanghai's IP and tech-transfer subsidy programs: eligibility, awards and
disbursement, each reason tied to its article. Amounts are CNY strings with two decimals.

项目目录、资格核验与金额计算无需密钥；其余接口需要API密钥：点击 Authorize，填入 X-API-Key。
错误均为 RFC 9457 问题详情（中英文）。 / The catalogue, check and calculate need no key; the
other operations need an API key: click Authorize and enter your X-API-Key. Errors are RFC 9457
problem details, in Chinese and English.
"""


def build_runtime(settings: Settings) -> Runtime:
    """Load, validate and compile every rule file; any problem stops start-up (RuleFileError)."""
    book = load_rules(settings.rules_dir)  # RuleFileError names the file and the line
    evaluator: Evaluator = (
        DurableEvaluator(book.programs, book.version)
        if settings.engine == "durable_rules"
        else PythonEvaluator()
    )
    log.info(
        "rules %s loaded: %d programs, engine %s", book.version, len(book.programs), evaluator.name
    )
    db = Database(settings.database_url)  # connects lazily: building the app needs no database
    limiter = RateLimiter(settings)
    access = AccessCache(db, settings.cache_poll_seconds)
    disqualified = StoredDisqualificationList(db, access)
    workers = WorkerPool(
        settings.rules_dir,
        settings.engine,
        HeavyPolicy(settings.heavy_body_bytes, settings.heavy_workers),
    )
    return Runtime(settings, book, evaluator, disqualified, db, limiter, access, workers)


def prepare_database(runtime: Runtime) -> None:
    """Start-up: migrate when AUTO_MIGRATE is set (production runs alembic itself), else refuse
    to start on a database below the migrations' head (every stored-data request would be a
    500); then add the DISQUALIFIED_FILE seed's entries to the stored 第二十六条 list. A database
    that does not answer yet does not stop start-up: /readyz says so until it does."""
    settings = runtime.settings
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    else:
        try:
            migrate.require_head(runtime.db.engine)
        except migrate.SchemaNotCurrent as exc:
            log.error("refusing to start: %s", exc)  # says what to run
            raise
        except SQLAlchemyError as exc:
            log.warning("database unreachable at start-up (see /readyz): %s", exc)
            return
    if settings.disqualified_file is not None:
        listed = DisqualificationList.from_file(settings.disqualified_file)
        added = seed(runtime.db, listed, settings.disqualified_file.name)
        log.info("第二十六条 list: %d entries added from %s", added, settings.disqualified_file)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = build_runtime(settings)  # at import/creation time: a broken rule file never serves

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_database(runtime)
        runtime.access.start()  # after the migrations: it reads the keys and the list
        try:
            yield
        finally:
            runtime.access.stop()
            runtime.workers.stop()
            runtime.db.dispose()

    app = FastAPI(
        title="上海知识产权与科技成果转化资助规则服务 / Shanghai IP subsidy rules",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        openapi_tags=TAGS,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.runtime = runtime
    app.state.canary = Canary.build(
        runtime.book, program_examples(runtime.book)
    )  # /readyz evaluates it
    app.include_router(health.router)
    app.include_router(programs.router)
    app.include_router(match.router)
    app.include_router(applications.router)
    app.include_router(rounds.router)
    app.include_router(admin.router)
    app.include_router(keys.router)
    app.include_router(audit_log.router)
    app.include_router(work.router)
    app.include_router(audit.router)
    app.include_router(performance_router)
    app.include_router(reports_router)
    problems.install(app)
    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, audit_limit=settings.max_audit_bytes
    )
    if settings.trusted_proxies:  # the client address (rate limit, logs) as those proxies say
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    _install_docs(app)
    install_observability(app)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


def _install_docs(app: FastAPI) -> None:
    """Swagger UI from the service's own assets: reviewers' networks may have no internet."""
    app.mount("/static/docs", StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="资助规则服务 / Subsidy rules — Swagger UI",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
            swagger_ui_parameters={"tryItOutEnabled": True, "displayRequestDuration": True},
        )


app = create_app()
