"""Databases for the stored-data tests: a migrated SQLite file per module, and a fresh
PostgreSQL schema per module on the server named by TEST_POSTGRES_URL.

PostgreSQL tests never skip in CI (``.ci/run`` sets TEST_POSTGRES_URL and checks the server is
reachable first). Locally, without the variable, they use the default URL when a server answers
there and skip otherwise.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from service.schemas.identifiers import uscc_check_char
from tests.authsupport import authorise

RULES = Path(__file__).resolve().parent.parent / "rules"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"  # a database number of the tests' own
_USCC_DIGITS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(n: int, prefix: str = "91310000MA") -> str:
    """A valid USCC (right check character), different for every ``n``."""
    body = ""
    for _ in range(17 - len(prefix)):
        n, digit = divmod(n, len(_USCC_DIGITS))
        body = _USCC_DIGITS[digit] + body
    first17 = prefix + body
    return first17 + uscc_check_char(first17)


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'subsidy.db'}"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def postgres_url() -> str:
    """The server to test against; skips only when TEST_POSTGRES_URL is unset and none answers."""
    configured = os.environ.get("TEST_POSTGRES_URL")
    url = configured or DEFAULT_POSTGRES_URL
    if configured is None:
        try:
            psycopg.connect(_libpq(url), connect_timeout=3).close()
        except psycopg.OperationalError:
            pytest.skip("PostgreSQL not reachable and TEST_POSTGRES_URL not set (CI sets it)")
    return url


def redis_url() -> str:
    """The Redis to test against (TEST_REDIS_URL; .ci/run sets it and checks it answers);
    skips only when it is unset and none answers at the default URL."""
    import redis

    configured = os.environ.get("TEST_REDIS_URL")
    url = configured or DEFAULT_REDIS_URL
    if configured is None:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        except redis.RedisError:
            pytest.skip("Redis not reachable and TEST_REDIS_URL not set (CI sets it)")
    return url


def redis_prefix() -> str:
    """A key prefix no other test run uses (the counters of one test stay its own)."""
    return f"test-{uuid.uuid4().hex[:10]}"


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A fresh, empty schema; the URL it yields puts it first on the search_path."""
    base = postgres_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def settings_for(database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "rules_dir": RULES,
        "auto_migrate": True,
        "anonymous_requests_per_minute": 0,  # the rate limits have their own tests
        **{f"{role}_requests_per_minute": 0 for role in ("portal", "reviewer", "auditor", "admin")},
        **extra,
    }
    return Settings(database_url=database_url, **values)


@contextmanager
def client_for(database_url: str, **extra: Any) -> Iterator[TestClient]:
    """The app on this database, migrated at start-up (AUTO_MIGRATE), each request sent with
    the key of the role that does it (tests.authsupport)."""
    app = create_app(settings_for(database_url, **extra))
    with TestClient(app) as client:
        authorise(client, app)
        yield client


def example(program_id: str) -> dict[str, Any]:
    """A fresh copy of the program's Swagger example (rules/<policy>/examples)."""
    from tests.examples import examples

    return json.loads(json.dumps(examples()[program_id]["value"]))


def bank(
    n: int, entitlement: str, submitted_at: str = "2023-07-20T09:30:00+08:00"
) -> dict[str, Any]:
    """第二十条: a bank whose one pledge loan earns exactly ``entitlement`` (0.1% of it × 1000)."""
    body = example("ipa2022-art20")
    body["applicant"]["uscc"] = uscc(n)
    body["applicant"]["name"] = f"上海测试银行{n}"
    body["submitted_at"] = submitted_at
    loan = body["loans"][0]
    loan["loan_id"] = f"ZY-{n}"
    loan["disbursed_amount"] = str(Decimal(entitlement) * 1000)
    body["loans"] = [loan]
    return body


def agency(n: int, tier: int, submitted_at: str = "2023-03-01T10:00:00+08:00") -> dict[str, Any]:
    """第二十一条: a custody agency in ``tier``."""
    body = example("ipa2022-art21")
    body["applicant"]["uscc"] = uscc(n)
    body["performance_tier"] = tier
    body["submitted_at"] = submitted_at
    return body


def submit(
    client: TestClient,
    program_id: str,
    application: dict[str, Any],
    round_id: int | None = None,
    key: str | None = None,
) -> Any:
    body: dict[str, Any] = {"program_id": program_id, "application": application}
    if round_id is not None:
        body["round_id"] = round_id
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/applications", json=body, headers=headers)
