"""One settings object, read from the environment (nothing else reads os.environ)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    rules_dir: Path = PROJECT_ROOT / "rules"
    # SQLite file by default; PostgreSQL in production: postgresql+psycopg://user@host/db
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'subsidy.db'}"
    # Run ``alembic upgrade head`` at start-up (the README's quick start). Production runs
    # ``alembic -c migrations/alembic.ini upgrade head`` explicitly and leaves this false.
    auto_migrate: bool = False
    # 第二十六条: a seed for the stored list: USCCs disqualified for fraud, one per line. At
    # start-up each one the database has never listed is added (an admin's removal stands).
    disqualified_file: Path | None = None
    # Which evaluator answers requests; "python" is the oracle, for comparison only.
    engine: Literal["durable_rules", "python"] = "durable_rules"
    # Request bodies above this size are refused with 413.
    max_body_bytes: int = 2_000_000
    # Logs: "json" (one object per line, with the request id) or "text" (uvicorn's own lines).
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    # POST /v1/audit uploads (award files) have their own limit.
    max_audit_bytes: int = 200_000_000
    # What an audit input may be, checked before memory grows with it (413 / exit code 2):
    # an .xlsx inflated, a cell's text (Excel's own limit), columns, a CSV record or JSON line.
    audit_max_uncompressed_bytes: int = 256_000_000
    audit_max_cell_chars: int = 32_767
    audit_max_columns: int = 1_000
    audit_max_line_bytes: int = 1_000_000
    # POST /v1/audit: audits running at once (more wait for none: 503), and seconds each may
    # take (413 past it). Each audit's memory is bounded by its batches (bench/README.md).
    audit_max_concurrent: int = 2
    audit_max_seconds: float = 600.0
    # Anonymous requests to the open routes (catalogue, check, calculate), per client address
    # and minute; 0 turns the limit off.
    anonymous_requests_per_minute: int = 3000
    # Requests made with one API key, per minute, by the key's role (every route); 0: no limit.
    portal_requests_per_minute: int = 6000
    reviewer_requests_per_minute: int = 6000
    auditor_requests_per_minute: int = 600
    admin_requests_per_minute: int = 600
    # Redis (redis://host:6379/0): the rate limits' counters, shared by every process. None:
    # each process counts in its own memory (one process, or limits per process).
    redis_url: str | None = None
    redis_key_prefix: str = "subsidy"
    # check / calculate bodies of at least this many bytes are evaluated in a worker process
    # (HEAVY_WORKERS of them per service process; 0: in threads), smaller ones in a thread.
    heavy_body_bytes: int = 100_000
    heavy_workers: int = 1
    # /metrics only for API keys of this role (e.g. admin); None: open, as for a scraper on a
    # private network.
    metrics_role: Literal["portal", "reviewer", "auditor", "admin"] | None = None
    # How often each process asks whether an API key or the 第二十六条 list changed elsewhere.
    cache_poll_seconds: float = 0.5
    # The proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated:
    # "10.0.0.5,10.1.0.0/16"). None by default: the client address is then the peer's, so that
    # no caller can pick another address (and bucket of the anonymous limit) by sending the
    # header. Run uvicorn with --no-proxy-headers: its own default trusts every local client.
    trusted_proxies: Annotated[list[str], NoDecode] = []

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # A portal's ``submitted_at`` may differ from the server's clock by at most this much; the
    # window conditions are judged on the time the service received the application.
    submitted_at_tolerance_minutes: int = 5


@lru_cache
def get_settings() -> Settings:
    return Settings()
