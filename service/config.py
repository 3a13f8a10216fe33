"""One settings object, read from the environment (nothing else reads os.environ)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    rules_dir: Path = PROJECT_ROOT / "rules"
    # SQLite file by default; PostgreSQL in production: postgresql+psycopg://user@host/db
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'subsidy.db'}"
    # 第二十六条: USCCs disqualified for fraud, one per line (optional until it is a table).
    disqualified_file: Path | None = None
    # Which evaluator answers requests; "python" is the oracle, for comparison only.
    engine: Literal["durable_rules", "python"] = "durable_rules"
    # Request bodies above this size are refused with 413.
    max_body_bytes: int = 2_000_000


@lru_cache
def get_settings() -> Settings:
    return Settings()
